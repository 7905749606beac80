//! JUnit XML for CI, written with quick-junit as nextest does: `junit.xml` in each run's
//! directory (a test case per checker), and `run --junit FILE` for a whole plan set (a test
//! case per plan, its failure message the failing checkers' explanations).

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::Input;
use check::{Outcome, Verdict};

/// One run: a test suite named after the plan, a test case per checker; an incomplete run
/// adds an error case saying why.
pub fn for_run(input: &Input) -> Report {
    let mut suite = TestSuite::new(input.plan_name.as_str());
    let times = || input.history.recs.iter().map(|r| r.time);
    let span = times().max().unwrap_or(0) - times().min().unwrap_or(0);
    suite.set_time(Duration::from_nanos(span));
    if let Some(verdict) = &input.verdict {
        for j in &verdict.checkers {
            let mut case = TestCase::new(
                j.result.checker.as_str(),
                status(j.outcome, &j.result.explanation),
            );
            case.set_classname(input.plan_name.as_str());
            suite.add_test_case(case);
        }
    }
    let complete = input.status.as_ref().is_some_and(|s| s.complete);
    if !complete || input.verdict.is_none() {
        let why = input
            .status
            .as_ref()
            .and_then(|s| s.error.clone())
            .unwrap_or_else(|| "the run was interrupted".into());
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_type("incomplete")
            .set_message(format!("run did not complete: {why}"));
        let mut case = TestCase::new("run", st);
        case.set_classname(input.plan_name.as_str());
        suite.add_test_case(case);
    }
    suite.set_system_out(format!("results: {}", input.run_name));
    let mut report = Report::new("smbchaos");
    report.add_test_suite(suite);
    report
}

/// `fail` is a failure; `unknown` is one too (nothing proved the plan's expectation), typed
/// so CI can tell them apart.
fn status(outcome: Outcome, message: &str) -> TestCaseStatus {
    match outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Fail | Outcome::Unknown => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_type(if outcome == Outcome::Fail {
                "fail"
            } else {
                "unknown"
            })
            .set_message(message);
            st
        }
    }
}

/// The failing checkers' explanations, one per line.
pub fn failure_message(verdict: &Verdict) -> String {
    verdict
        .checkers
        .iter()
        .filter(|j| j.outcome != Outcome::Pass)
        .map(|j| format!("{}: {}", j.result.checker, j.result.explanation))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The plan set of one `smbchaos run`: a test case per plan, in the order they ran.
pub struct PlanSet {
    suite: TestSuite,
    total: Duration,
}

impl Default for PlanSet {
    fn default() -> Self {
        PlanSet {
            suite: TestSuite::new("plans"),
            total: Duration::ZERO,
        }
    }
}

impl PlanSet {
    fn add(
        &mut self,
        plan: &Path,
        name: &str,
        status: TestCaseStatus,
        took: Duration,
        out: Option<String>,
    ) {
        let mut case = TestCase::new(plan.display().to_string(), status);
        case.set_classname(name).set_time(took);
        if let Some(out) = out {
            case.set_system_out(out);
        }
        self.total += took;
        self.suite.add_test_case(case);
    }

    pub fn judged(
        &mut self,
        plan: &Path,
        name: &str,
        verdict: &Verdict,
        results: &Path,
        took: Duration,
    ) {
        let status = status(verdict.outcome, &failure_message(verdict));
        self.add(
            plan,
            name,
            status,
            took,
            Some(format!("results: {}", results.display())),
        );
    }

    /// The harness could not judge the plan (lab, results or history trouble).
    pub fn errored(&mut self, plan: &Path, name: &str, error: &str, took: Duration) {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_type("error").set_message(error);
        self.add(plan, name, st, took, None);
    }

    /// Plans a signal kept from running.
    pub fn skipped(&mut self, plan: &Path, name: &str, why: &str) {
        let mut st = TestCaseStatus::skipped();
        st.set_message(why);
        self.add(plan, name, st, Duration::ZERO, None);
    }

    pub fn to_xml(&self) -> String {
        let mut suite = self.suite.clone();
        suite.set_time(self.total);
        let mut report = Report::new("smbchaos");
        report.set_time(self.total).add_test_suite(suite);
        report
            .to_string()
            .expect("JUnit XML of plain strings serializes")
    }

    pub fn write(&self, file: &Path) -> std::io::Result<()> {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(file, self.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use check::Judged;
    use check::{CheckResult, Validity};

    fn verdict(outcome: Outcome) -> Verdict {
        Verdict {
            outcome,
            checkers: vec![Judged {
                result: CheckResult {
                    checker: "exec".into(),
                    valid: if outcome == Outcome::Pass {
                        Validity::True
                    } else {
                        Validity::False
                    },
                    explanation: "1 of 2 exec steps failed: op 1 exit 1, expected 0".into(),
                    ops: vec![1],
                    preconditions: Vec::new(),
                },
                expected: "expected_exit".into(),
                outcome,
            }],
        }
    }

    #[test]
    fn a_plan_set_has_a_case_per_plan_with_the_checkers_explanations() {
        let mut set = PlanSet::default();
        set.judged(
            Path::new("plans/a.yaml"),
            "a",
            &verdict(Outcome::Pass),
            Path::new("r/a"),
            Duration::from_secs(1),
        );
        set.judged(
            Path::new("plans/b.yaml"),
            "b",
            &verdict(Outcome::Fail),
            Path::new("r/b"),
            Duration::from_secs(2),
        );
        set.errored(
            Path::new("plans/c.yaml"),
            "c",
            "lab: no smbd",
            Duration::ZERO,
        );
        set.skipped(Path::new("plans/d.yaml"), "d", "interrupted by SIGINT");
        let xml = set.to_xml();
        assert!(
            xml.contains(
                r#"<testsuite name="plans" tests="4" skipped="1" errors="1" failures="1""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="plans/b.yaml" classname="b""#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"message="exec: 1 of 2 exec steps failed: op 1 exit 1, expected 0" type="fail""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<skipped message="interrupted by SIGINT"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn a_run_has_a_case_per_checker_and_flags_an_incomplete_run() {
        let input = Input {
            plan_name: "smoke".into(),
            run_name: "20260101T000000.000Z".into(),
            history: check::History::default(),
            history_path: None,
            verdict: Some(verdict(Outcome::Fail)),
            status: Some(history::results::Status {
                complete: false,
                outcome: None,
                error: Some("lab: boom".into()),
                run_id: "x".into(),
            }),
            plan_text: None,
            environment: None,
            files: vec![],
        };
        let xml = for_run(&input).to_string().unwrap();
        assert!(
            xml.contains(r#"<testcase name="exec" classname="smoke">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<error message="run did not complete: lab: boom" type="incomplete"/>"#),
            "{xml}"
        );
    }
}
