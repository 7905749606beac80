//! Link impairments in userspace (this kernel has no sch_netem): latency with jitter and a
//! distribution, loss (optionally correlated), duplication, reordering, corruption and a rate
//! cap. One `Shaper` per link direction, each with its own seeded RNG, so a plan's seed fixes
//! every random decision for a given frame order.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What one direction of one link does to frames: the plan's own impairment type
/// (probabilities as fractions), so a plan's `impair` fault reaches the wire unchanged.
pub use plan::{DelayDistribution as Distribution, ImpairSpec as Impairment};

/// Frames queued behind a rate cap for longer than this are dropped (a tail drop, like TBF).
const RATE_QUEUE_LIMIT: Duration = Duration::from_millis(500);

pub struct Shaper {
    pub config: Impairment,
    rng: ChaCha8Rng,
    last_loss_draw: f64,
    /// When the rate cap's "transmitter" is next free.
    next_free: Instant,
}

/// What happened to one frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fate {
    /// Release times of the copies to deliver (none: dropped; two: duplicated).
    pub copies: Vec<Instant>,
    pub corrupted: bool,
}

impl Shaper {
    pub fn new(config: Impairment, seed: u64) -> Shaper {
        Shaper {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            last_loss_draw: 0.0,
            next_free: Instant::now(),
        }
    }

    /// Decide the fate of a frame arriving at `arrival`; may flip a bit of `frame`.
    pub fn process(&mut self, arrival: Instant, frame: &mut [u8]) -> Fate {
        let c = self.config.clone();
        let mut fate = Fate::default();
        if c.loss > 0.0 {
            let fresh: f64 = self.rng.random();
            let draw =
                c.loss_correlation * self.last_loss_draw + (1.0 - c.loss_correlation) * fresh;
            self.last_loss_draw = draw;
            if draw < c.loss {
                return fate;
            }
        }
        if c.corrupt > 0.0 && frame.len() > 14 && self.rng.random::<f64>() < c.corrupt {
            // Past the Ethernet header, so the frame still reaches its node and the damage
            // is found where a real one would be: by IP/TCP checksums.
            let byte = self.rng.random_range(14..frame.len());
            frame[byte] ^= 1 << self.rng.random_range(0..8);
            fate.corrupted = true;
        }
        let mut depart = arrival;
        let bit_ns = (frame.len() as u64 * 8).saturating_mul(1_000_000_000);
        if let Some(tx_ns) = bit_ns.checked_div(c.rate_bps) {
            let start = self.next_free.max(arrival);
            if start.duration_since(arrival) > RATE_QUEUE_LIMIT {
                return fate;
            }
            self.next_free = start + Duration::from_nanos(tx_ns);
            depart = self.next_free;
        }
        let mut delay = self.sample_delay();
        if c.reorder > 0.0 && self.rng.random::<f64>() < c.reorder {
            delay += c.reorder_gap;
        }
        fate.copies.push(depart + delay);
        if c.duplicate > 0.0 && self.rng.random::<f64>() < c.duplicate {
            fate.copies.push(depart + delay);
        }
        fate
    }

    fn sample_delay(&mut self) -> Duration {
        let c = &self.config;
        if c.jitter.is_zero() {
            return c.latency;
        }
        let mean = c.latency.as_secs_f64();
        let spread = c.jitter.as_secs_f64();
        let secs = match c.distribution {
            Distribution::Uniform => mean + self.rng.random_range(-spread..=spread),
            Distribution::Normal => {
                // Box–Muller.
                let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
                let u2: f64 = self.rng.random();
                mean + spread * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            }
        };
        Duration::from_secs_f64(secs.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: Impairment, n: usize) -> Vec<Fate> {
        let mut s = Shaper::new(config, 7);
        let t0 = Instant::now();
        (0..n).map(|_| s.process(t0, &mut [0u8; 100])).collect()
    }

    /// Fates as offsets from the arrival, comparable across runs.
    fn offsets(config: Impairment, n: usize) -> Vec<Vec<Duration>> {
        let mut s = Shaper::new(config, 7);
        let t0 = Instant::now();
        (0..n)
            .map(|_| {
                s.process(t0, &mut [0u8; 100])
                    .copies
                    .iter()
                    .map(|t| *t - t0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn loss_rate_is_close_to_the_configured_one() {
        let fates = run(
            Impairment {
                loss: 0.1,
                ..Default::default()
            },
            20_000,
        );
        let lost = fates.iter().filter(|f| f.copies.is_empty()).count() as f64 / 20_000.0;
        assert!((0.09..0.11).contains(&lost), "{lost}");
    }

    #[test]
    fn same_seed_same_decisions() {
        let c = Impairment {
            loss: 0.3,
            duplicate: 0.2,
            jitter: Duration::from_millis(5),
            latency: Duration::from_millis(10),
            ..Default::default()
        };
        assert_eq!(offsets(c.clone(), 500), offsets(c, 500));
    }

    #[test]
    fn rate_cap_spaces_frames_by_their_transmit_time() {
        // 100-byte frames at 800 kbit/s: 1 ms each.
        let fates = run(
            Impairment {
                rate_bps: 800_000,
                ..Default::default()
            },
            3,
        );
        let t: Vec<_> = fates.iter().map(|f| f.copies[0]).collect();
        assert_eq!(t[1] - t[0], Duration::from_millis(1));
        assert_eq!(t[2] - t[1], Duration::from_millis(1));
    }

    #[test]
    fn uniform_jitter_stays_in_its_window() {
        let c = Impairment {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(10),
            ..Default::default()
        };
        let mut s = Shaper::new(c, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            let d = s.process(t0, &mut [0u8; 60]).copies[0] - t0;
            assert!(
                d >= Duration::from_millis(90) && d <= Duration::from_millis(110),
                "{d:?}"
            );
        }
    }
}
