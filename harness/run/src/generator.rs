//! Generators, Jepsen's way: what a workload client does next and when, drawn from the plan's
//! seed, apart from how the client does it. A [`Mix`] is a weighted choice of [`Intent`]s, a
//! [`Slots`] picks the byte range, a [`Pacer`] spaces ops at the plan's rate, and [`Phases`]
//! runs mixes and rates one after another (a warm-up, the chaos, a quiet recovery). A new
//! workload composes these rather than writing its own `match` over random numbers.

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
        Pacer::starting(rate, Instant::now())
    }

    /// Paced from `at` (the first op due one gap after it).
    pub fn starting(rate: Option<f64>, at: Instant) -> Pacer {
        Pacer {
            gap: rate
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: at,
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

/// One phase: `mix` at `rate` for `length` (None: to the workload's end).
#[derive(Debug, Clone)]
pub struct Phase {
    pub length: Option<Duration>,
    pub mix: Mix,
    pub rate: Option<f64>,
}

/// Phases one after another from `start` (Jepsen's `phases`). Entering a phase starts its
/// pacing afresh, and a wait never runs past the phase's end, so a slow phase does not
/// delay the next one's first op.
#[derive(Debug)]
pub struct Phases {
    phases: Vec<Phase>,
    /// When each phase begins.
    begins: Vec<Instant>,
    current: usize,
    pacer: Pacer,
}

impl Phases {
    pub fn new(phases: Vec<Phase>, start: Instant) -> Phases {
        let mut at = start;
        let mut begins = Vec::with_capacity(phases.len());
        for p in &phases {
            begins.push(at);
            // A phase without a length runs to the end: nothing after it begins.
            at += p.length.unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
        }
        let pacer = Pacer::starting(phases.first().and_then(|p| p.rate), start);
        Phases {
            phases,
            begins,
            current: 0,
            pacer,
        }
    }

    /// A client entry's generator: the workload's `phases`, each absent `mix` or `rate` the
    /// entry's own; no phases: one phase of the entry's.
    pub fn from_plan(
        workload: &plan::Workload,
        entry: &plan::SmbClients,
        start: Instant,
    ) -> Phases {
        let own = || Phase {
            length: None,
            mix: Mix::from_plan(&entry.mix),
            rate: entry.rate,
        };
        let phases = if workload.phases.is_empty() {
            vec![own()]
        } else {
            workload
                .phases
                .iter()
                .map(|p| Phase {
                    length: p.value.length.map(|l| l.as_duration()),
                    mix: Mix::from_plan(p.value.mix.as_ref().unwrap_or(&entry.mix)),
                    rate: p.value.rate.or(entry.rate),
                })
                .collect()
        };
        Phases::new(phases, start)
    }

    /// The phase in force at `now` (its index), entering it if the last one is over.
    pub fn phase(&mut self, now: Instant) -> usize {
        let mut at = self.current;
        while self.begins.get(at + 1).is_some_and(|b| *b <= now) {
            at += 1;
        }
        if at != self.current {
            self.current = at;
            self.pacer = Pacer::starting(self.phases[at].rate, self.begins[at]);
        }
        at
    }

    /// When phase `i` begins.
    pub fn begins(&self, i: usize) -> Option<Instant> {
        self.begins.get(i).copied()
    }

    pub fn len(&self) -> usize {
        self.phases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phases.is_empty()
    }

    /// The next op of the phase in force at `now`.
    pub fn next(&mut self, rng: &mut impl Rng, now: Instant) -> Option<Intent> {
        let i = self.phase(now);
        self.phases[i].mix.next(rng)
    }

    /// When the next op is due, `now` being the end of the last one: by the pace of the
    /// phase in force, and never after that phase's end (None: unpaced, now).
    pub fn due(&mut self, now: Instant) -> Option<Instant> {
        let i = self.phase(now);
        let due = self.pacer.due(now)?;
        Some(self.begins.get(i + 1).map_or(due, |end| due.min(*end)))
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
    fn phases_run_in_turn_each_at_its_rate() {
        let start = Instant::now();
        let phase = |secs: Option<u64>, op, rate| Phase {
            length: secs.map(Duration::from_secs),
            mix: Mix::new(vec![(op, 1)]),
            rate: Some(rate),
        };
        let mut phases = Phases::new(
            vec![
                phase(Some(2), Intent::Read, 10.0),
                phase(Some(1), Intent::Flush, 100.0),
                phase(None, Intent::Read, 5.0),
            ],
            start,
        );
        let deadline = start + Duration::from_secs(5);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut drawn: Vec<(usize, Intent)> = Vec::new();
        // Ops that take no time: each starts when the last one's pacing says.
        let mut now = start;
        while now < deadline {
            let op = phases.next(&mut rng, now).unwrap();
            drawn.push((phases.phase(now), op));
            now = phases.due(now).unwrap();
        }
        let count = |p| drawn.iter().filter(|(i, _)| *i == p).count();
        // 2 s at 10/s, 1 s at 100/s, 2 s at 5/s (each phase's first op at its start).
        assert_eq!((count(0), count(1), count(2)), (20, 100, 10), "{drawn:?}");
        assert_eq!(phases.begins(2), Some(start + Duration::from_secs(3)));
        assert!(drawn
            .iter()
            .all(|(i, op)| (*i == 1) == (*op == Intent::Flush)));
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
