//! Generators, Jepsen's way: what a workload client does next and when, drawn from the plan's
//! seed, apart from how the client does it. A [`Mix`] is a weighted choice of [`Intent`]s, a
//! [`Slots`] picks the byte range, a [`Pacer`] spaces ops at the plan's rate. A new workload
//! composes these rather than writing its own `match` over random numbers.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// What a workload client is asked to do next (recorded as one or more history ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Write {
        write_through: bool,
    },
    Flush,
    Read,
    /// Close the handle and open the file again.
    Reopen,
    /// Lock then unlock a byte range.
    Lock,
}

/// A weighted choice of ops.
#[derive(Debug, Clone)]
pub struct Mix {
    weights: Vec<(Intent, u32)>,
    total: u32,
}

impl Mix {
    pub fn new(weights: Vec<(Intent, u32)>) -> Mix {
        let total = weights.iter().map(|(_, w)| w).sum();
        Mix { weights, total }
    }

    /// The plan's `mix:`, in the plan's order (which keeps a seed's op sequence stable).
    pub fn from_plan(m: &plan::Mix) -> Mix {
        Mix::new(vec![
            (
                Intent::Write {
                    write_through: false,
                },
                m.write,
            ),
            (
                Intent::Write {
                    write_through: true,
                },
                m.write_through,
            ),
            (Intent::Flush, m.flush),
            (Intent::Read, m.read),
            (Intent::Reopen, m.reopen),
            (Intent::Lock, m.lock),
        ])
    }

    /// Nothing to draw: every weight is zero.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The next op, or None when the mix is empty.
    pub fn next(&self, rng: &mut impl Rng) -> Option<Intent> {
        if self.is_empty() {
            return None;
        }
        let mut pick = rng.random_range(0..self.total);
        for &(op, weight) in &self.weights {
            if pick < weight {
                return Some(op);
            }
            pick -= weight;
        }
        None
    }
}

/// Byte ranges of a file cut into equal slots (a file of `file_size` in `slot`-byte ranges).
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    pub count: u64,
    pub size: u64,
}

impl Slots {
    pub fn new(file_size: u64, slot: u64) -> Slots {
        let size = slot.max(1);
        Slots {
            count: (file_size / size).max(1),
            size,
        }
    }

    /// A slot's offset, uniformly.
    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        rng.random_range(0..self.count) * self.size
    }
}

/// Ops at a fixed rate. After a stall (a fault, a slow server) the schedule restarts from
/// now: the ops a stall cost are not made up with a burst, which would show as a recovery
/// throughput the client never asked for.
#[derive(Debug)]
pub struct Pacer {
    gap: Option<Duration>,
    next: Instant,
}

impl Pacer {
    /// `rate` ops per second; None or 0: as fast as the server answers.
    pub fn new(rate: Option<f64>) -> Pacer {
        Pacer {
            gap: rate
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Instant::now(),
        }
    }

    /// When the next op is due, `now` being the end of the last one.
    pub fn due(&mut self, now: Instant) -> Option<Instant> {
        let gap = self.gap?;
        self.next = (self.next + gap).max(now);
        Some(self.next)
    }

    /// Sleep until the next op is due (never past `deadline`).
    pub async fn wait(&mut self, deadline: Instant) {
        if let Some(at) = self.due(Instant::now()) {
            tokio::time::sleep_until(at.min(deadline)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_mix_draws_in_proportion_and_never_a_zero_weight() {
        let mix = Mix::new(vec![
            (Intent::Read, 3),
            (Intent::Flush, 1),
            (Intent::Lock, 0),
        ]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut reads = 0;
        for _ in 0..4000 {
            match mix.next(&mut rng) {
                Some(Intent::Read) => reads += 1,
                Some(Intent::Flush) => {}
                other => panic!("drew {other:?}"),
            }
        }
        assert!((2800..3200).contains(&reads), "{reads} reads of 4000");
        assert_eq!(Mix::new(vec![(Intent::Read, 0)]).next(&mut rng), None);
    }

    #[test]
    fn the_same_seed_draws_the_same_ops() {
        let mix = Mix::from_plan(&plan::Mix::default());
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50).map(|_| mix.next(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn slots_cover_the_file_in_slot_steps() {
        let slots = Slots::new(65536, 4096);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let o = slots.next(&mut rng);
            assert!(o.is_multiple_of(4096) && o < 65536, "{o}");
        }
        assert_eq!(Slots::new(100, 4096).count, 1);
    }

    #[test]
    fn a_stall_is_not_made_up_with_a_burst() {
        let start = Instant::now();
        let mut pacer = Pacer {
            gap: Some(Duration::from_millis(10)),
            next: start,
        };
        assert_eq!(pacer.due(start), Some(start + Duration::from_millis(10)));
        // The op took a second (a fault): the next is due now, not 99 slots ago.
        let late = start + Duration::from_secs(1);
        assert_eq!(pacer.due(late), Some(late));
        assert_eq!(pacer.due(late), Some(late + Duration::from_millis(10)));
        assert_eq!(Pacer::new(None).due(late), None);
        assert_eq!(Pacer::new(Some(0.0)).due(late), None);
    }
}
