//! Each checker on hand-written histories: it fails on a history that breaks its invariant
//! and passes on a clean one.

mod availability;
mod durability;
mod grants;
mod h;
mod leases;
mod reads;
mod resume;
mod verdict;

use check::{Anomaly, Checked, Validity};

#[track_caller]
pub fn assert_valid(c: &Checked) {
    assert_eq!(c.result.valid, Validity::True, "{}", c.result.explanation);
    assert!(c.anomalies.is_empty());
}

/// False, for exactly these kinds, citing at least `ops`.
#[track_caller]
pub fn assert_invalid(c: &Checked, kinds: &[Anomaly], ops: &[u64]) {
    assert_eq!(c.result.valid, Validity::False, "{}", c.result.explanation);
    assert_eq!(c.anomalies, kinds, "{}", c.result.explanation);
    for op in ops {
        assert!(
            c.result.ops.contains(op),
            "op {op} cited in {:?}: {}",
            c.result.ops,
            c.result.explanation
        );
    }
}
