//! `fault-effects`: what each fault occurrence did to the lab (connections reset, processes
//! killed or frozen, frames dropped or shaped: the nemesis records it as `detail.effect`).
//! A fault the plan requires to land (`require_effect`) that did nothing makes the run fail,
//! named: a plan whose fault missed did not test what it says it tests.

use crate::faults::Fault;
use crate::{Anomaly, Checked, Findings};

pub const NAME: &str = "fault-effects";

pub(crate) fn check(faults: &[Fault]) -> Checked {
    let mut found = Findings::default();
    let mut idle = Vec::new();
    let mut landed = 0;
    for f in faults {
        match f.landed {
            Some(true) => landed += 1,
            Some(false) => {
                idle.push(f.label());
                if f.require_effect {
                    found.violation(Anomaly::FaultMissed, &f.steps, || {
                        format!(
                            "{} had no effect (nothing reset, killed, frozen, dropped or shaped), and the plan requires it to (require_effect)",
                            f.label()
                        )
                    });
                }
            }
            None if f.require_effect => found.unknown(&f.steps, || {
                format!(
                    "{}: the history records no effect for it, so whether it landed cannot be told",
                    f.label()
                )
            }),
            None => {}
        }
    }
    if faults.is_empty() {
        return found.finish(NAME, "nothing to check: no faults".into());
    }
    let mut summary = format!(
        "{} fault occurrence(s), {landed} with an effect",
        faults.len()
    );
    if !idle.is_empty() {
        summary.push_str(&format!(", no effect: {}", idle.join(", ")));
    }
    found.finish(NAME, summary)
}
