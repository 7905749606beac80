//! `exec`: every exec step ended with the exit status its plan asked for. A step that timed
//! out or was cut off (`info`) leaves the result unknown.

use history::{OpType, Record};

use crate::compact::{History, F};
use crate::{CheckResult, Validity};

pub fn exec(history: &[Record]) -> CheckResult {
    check(&History::from_records(history))
}

pub(crate) fn check(h: &History) -> CheckResult {
    let (mut total, mut failed, mut unknown) = (0, Vec::new(), Vec::new());
    for r in h
        .recs
        .iter()
        .filter(|r| r.f == F::Exec && r.kind != OpType::Invoke)
    {
        total += 1;
        match r.kind {
            OpType::Fail => failed.push(r),
            OpType::Info => unknown.push(r.index),
            _ => {}
        }
    }
    let (valid, ops, explanation) = if !failed.is_empty() {
        let why = failed
            .iter()
            .map(|r| match h.name(r.status) {
                "" => format!("op {} failed", r.index),
                status => format!("op {} {status}", r.index),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let ops = failed.iter().map(|r| r.index).collect();
        (
            Validity::False,
            ops,
            format!("{} of {total} exec steps failed: {why}", failed.len()),
        )
    } else if !unknown.is_empty() {
        let why = format!(
            "{} of {total} exec steps ended with unknown outcome",
            unknown.len()
        );
        (Validity::Unknown, unknown, why)
    } else {
        (
            Validity::True,
            Vec::new(),
            format!("all {total} exec steps ended as expected"),
        )
    };
    CheckResult {
        checker: "exec".into(),
        valid,
        explanation,
        ops,
        preconditions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::Process;

    fn rec(index: u64, kind: OpType, status: Option<&str>) -> Record {
        Record {
            index,
            time_ns: index * 10,
            process: Process::Worker(0),
            kind,
            f: "exec".into(),
            node: Some("c1".into()),
            value: history::Value::None,
            status: status.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn passes_a_clean_history() {
        let h = [rec(0, OpType::Invoke, None), rec(1, OpType::Ok, None)];
        assert_eq!(exec(&h).valid, Validity::True);
    }

    #[test]
    fn catches_a_failed_step_and_names_it() {
        let h = [
            rec(0, OpType::Invoke, None),
            rec(1, OpType::Ok, None),
            rec(2, OpType::Invoke, None),
            rec(3, OpType::Fail, Some("exit 1, expected 0")),
        ];
        let r = exec(&h);
        assert_eq!(r.valid, Validity::False);
        assert_eq!(r.ops, vec![3]);
        assert_eq!(
            r.explanation,
            "1 of 2 exec steps failed: op 3 exit 1, expected 0"
        );
    }

    #[test]
    fn an_unknown_outcome_is_unknown_not_true() {
        let h = [
            rec(0, OpType::Invoke, None),
            rec(1, OpType::Info, Some("timed out")),
        ];
        assert_eq!(exec(&h).valid, Validity::Unknown);
    }

    #[test]
    fn composition_false_beats_unknown_beats_true() {
        use Validity::*;
        assert_eq!(True.and(Unknown), Unknown);
        assert_eq!(Unknown.and(False), False);
        assert_eq!(True.and(True), True);
    }
}
