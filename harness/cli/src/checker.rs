//! Checkers live in the `check` crate (they know nothing of the lab, so `smbchaos check` can
//! re-judge a stored run); re-exported here for the report and JUnit renderers.

pub use check::{exec, Anomaly, CheckResult, Checked, Validity};
