//! The verdict: each checker's result compared with what the plan expects of it.

use serde::{Deserialize, Serialize};

use crate::checker::{self, CheckResult, Validity};
use crate::history::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Unknown,
}

impl Outcome {
    /// Process exit code: 0 pass, 1 fail, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Unknown => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    #[serde(flatten)]
    pub result: CheckResult,
    /// What the plan expects of this checker.
    pub expected: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub checkers: Vec<Judged>,
}

/// Run every checker on the history and compare with the plan's expectations.
pub fn judge(history: &[Record], expect: &plan::Expect) -> Verdict {
    let exec = checker::exec(history);
    let exec_judged = match expect.exec {
        plan::ExecExpectation::ExpectedExit => {
            let outcome = match exec.valid {
                Validity::True => Outcome::Pass,
                Validity::False => Outcome::Fail,
                Validity::Unknown => Outcome::Unknown,
            };
            Judged { result: exec, expected: "expected_exit".into(), outcome }
        }
        plan::ExecExpectation::Any => Judged { result: exec, expected: "any".into(), outcome: Outcome::Pass },
    };
    let checkers = vec![exec_judged];
    let outcome = checkers.iter().fold(Outcome::Pass, |acc, j| match (acc, j.outcome) {
        (Outcome::Fail, _) | (_, Outcome::Fail) => Outcome::Fail,
        (Outcome::Unknown, _) | (_, Outcome::Unknown) => Outcome::Unknown,
        _ => Outcome::Pass,
    });
    Verdict { outcome, checkers }
}
