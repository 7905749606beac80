//! Reporters for a run's events (the run loop never prints): a progress bar on a terminal,
//! plain log lines otherwise (CI logs, pipes), nothing with `-q`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use history::OpType;
use run::events::{Event, Phase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Plain,
    Terminal,
}

impl Mode {
    /// The bar only when a person watches both streams: a redirected stdout or stderr gets
    /// plain lines that read well in a log.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

/// The bar on screen, if any, so log lines can be written around it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn set_active(bar: Option<&ProgressBar>) {
    if let Ok(mut active) = ACTIVE.lock() {
        *active = bar.cloned();
    }
}

/// Stderr for the log (`tracing`): while a bar is drawn, it steps aside for each line
/// instead of being torn by it.
pub struct LogWriter;

pub fn log_writer() -> LogWriter {
    LogWriter
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE.lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// What the events said so far about one plan's run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub plan: String,
    pub results: Option<PathBuf>,
    pub phase: Option<Phase>,
    pub planned: Duration,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Faults started and not yet healed, as `kind node`.
    pub active: Vec<String>,
    /// Fault kinds that act once and have no heal (reset, restart): never "active".
    pub one_shot: Vec<String>,
}

impl Tally {
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Started {
                plan,
                results,
                planned,
            } => {
                self.plan = plan.clone();
                self.results = Some(results.clone());
                self.planned = *planned;
            }
            Event::Phase(p) => {
                self.phase = Some(*p);
                // Past the workload every fault has been healed (and the heal verified).
                if *p != Phase::LabUp && *p != Phase::Workload {
                    self.active.clear();
                }
            }
            Event::Op { kind, .. } => match kind {
                OpType::Ok => self.ok += 1,
                OpType::Fail => self.fail += 1,
                OpType::Info => self.info += 1,
                OpType::Invoke => {}
            },
            Event::Fault {
                f, node, healed, ..
            } => {
                let name = format!("{f} {node}");
                if *healed {
                    if let Some(i) = self.active.iter().position(|a| *a == name) {
                        self.active.remove(i);
                    }
                } else if !self.one_shot.contains(f) {
                    self.active.push(name);
                }
            }
            Event::LabReady { .. } | Event::Finished { .. } => {}
        }
    }

    /// The status line: phase, elapsed and planned time, op counts, active faults.
    pub fn line(&self, elapsed: Duration) -> String {
        let phase = match self.phase {
            None | Some(Phase::LabUp) => "lab up",
            Some(Phase::Workload) => "workload",
            Some(Phase::Heal) => "heal",
            Some(Phase::LabDown) => "lab down",
            Some(Phase::Check) => "check",
        };
        let mut line = format!("{phase:<8} {:>6.1}s", elapsed.as_secs_f64());
        if !self.planned.is_zero() {
            line.push_str(&format!(" of {:.1}s planned", self.planned.as_secs_f64()));
        }
        line.push_str(&format!(
            " · ok {} · fail {} · info {}",
            self.ok, self.fail, self.info
        ));
        if !self.active.is_empty() {
            line.push_str(&format!(" · faults: {}", self.active.join(", ")));
        }
        line
    }
}

/// The plan's fault kinds that have no heal, as the nemesis names them in its events.
pub fn one_shot_kinds(plan: &plan::Plan) -> Vec<String> {
    let mut kinds: Vec<String> = plan::schedule(plan)
        .iter()
        .filter(|occ| !occ.action.heals())
        .map(|occ| occ.action.kind().to_string())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Render events until the run drops its sender; returns the run's results directory, so
/// the caller can still report on a run it had to interrupt.
pub async fn render(
    mut rx: UnboundedReceiver<Event>,
    mode: Mode,
    one_shot: Vec<String>,
) -> Option<PathBuf> {
    let mut tally = Tally {
        one_shot,
        ..Tally::default()
    };
    let mut bar: Option<ProgressBar> = None;
    let mut started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let event = tokio::select! {
            e = rx.recv() => match e {
                Some(e) => e,
                None => break,
            },
            _ = tick.tick(), if bar.is_some() => {
                if let Some(b) = &bar {
                    update(b, &tally, started.elapsed());
                }
                continue;
            }
        };
        tally.apply(&event);
        match mode {
            Mode::Quiet => {}
            Mode::Plain => plain(&event),
            Mode::Terminal => {
                if let Event::Started { plan, .. } = &event {
                    started = Instant::now();
                    bar = Some(new_bar(plan, tally.planned));
                    set_active(bar.as_ref());
                }
                if let Some(b) = &bar {
                    if let Some(line) = notable(&event) {
                        b.println(line);
                    }
                    update(b, &tally, started.elapsed());
                    if matches!(event, Event::Finished { .. }) {
                        b.finish_and_clear();
                        set_active(None);
                        say(&format!(
                            "[{}] {}",
                            tally.plan,
                            tally.line(started.elapsed())
                        ));
                        bar = None;
                    }
                }
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
        set_active(None);
    }
    tally.results
}

fn new_bar(plan: &str, planned: Duration) -> ProgressBar {
    let template = if planned.is_zero() {
        "{spinner:.green} {prefix:.bold} {msg}"
    } else {
        "{spinner:.green} {prefix:.bold} [{bar:20.cyan/blue}] {msg}"
    };
    let bar = ProgressBar::with_draw_target(
        Some(planned.as_millis().max(1) as u64),
        ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(plan.to_string());
    bar
}

fn update(bar: &ProgressBar, tally: &Tally, elapsed: Duration) {
    bar.set_position((elapsed.as_millis() as u64).min(bar.length().unwrap_or(0)));
    bar.set_message(tally.line(elapsed));
    bar.tick();
}

/// Lines worth keeping above the bar: failures, unknown outcomes and faults.
fn notable(event: &Event) -> Option<String> {
    match event {
        Event::Started { plan, results, .. } => {
            Some(format!("[{plan}] results in {}", results.display()))
        }
        Event::Op {
            kind: OpType::Fail | OpType::Info,
            ..
        }
        | Event::Fault { .. } => plain_line(event),
        _ => None,
    }
}

fn plain(event: &Event) {
    if let Some(line) = plain_line(event) {
        say(&line);
    }
}

/// The plain reporter's line for an event.
pub fn plain_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Started { plan, results, .. } => {
            format!("[{plan}] results in {}", results.display())
        }
        Event::Phase(Phase::LabUp) => "  bringing the lab up".into(),
        Event::Phase(p) => format!("  phase {p:?}"),
        Event::LabReady { run_id, took } => {
            format!("  lab {run_id} ready in {:.2} s", took.as_secs_f64())
        }
        Event::Op {
            process,
            f,
            node,
            kind,
            status,
        } => format!(
            "  op p{process} {f} on {node}: {kind:?}{}",
            status
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
        Event::Fault {
            f,
            node,
            healed,
            effect,
        } => format!(
            "  fault {f} {node} {}{}",
            if *healed { "healed" } else { "started" },
            effect
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        Event::Finished { .. } => return None,
    })
}

/// A closed stderr (the reader went away) is no reason to stop a run.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_ops_and_tracks_active_faults() {
        let mut t = Tally::default();
        let events = [
            Event::Started {
                plan: "smoke".into(),
                results: "r".into(),
                planned: Duration::from_secs(30),
            },
            Event::Phase(Phase::Workload),
            Event::Fault {
                f: "pause".into(),
                node: "fs1".into(),
                healed: false,
                effect: None,
            },
            Event::Op {
                process: 0,
                f: "exec".into(),
                node: "c1".into(),
                kind: OpType::Ok,
                status: None,
            },
            Event::Op {
                process: 1,
                f: "exec".into(),
                node: "c1".into(),
                kind: OpType::Fail,
                status: Some("exit 1".into()),
            },
        ];
        for e in &events {
            t.apply(e);
        }
        assert_eq!(
            t.line(Duration::from_millis(12_300)),
            "workload   12.3s of 30.0s planned · ok 1 · fail 1 · info 0 · faults: pause fs1"
        );
        t.apply(&Event::Fault {
            f: "pause".into(),
            node: "fs1".into(),
            healed: true,
            effect: None,
        });
        assert!(t.active.is_empty());
        assert_eq!(t.results, Some(PathBuf::from("r")));
        t.one_shot = vec!["reset".into()];
        t.apply(&Event::Fault {
            f: "reset".into(),
            node: "fs1".into(),
            healed: false,
            effect: None,
        });
        assert!(t.active.is_empty(), "a reset is over as soon as it started");
        t.apply(&Event::Fault {
            f: "kill".into(),
            node: "fs1".into(),
            healed: false,
            effect: None,
        });
        t.apply(&Event::Phase(Phase::Heal));
        assert!(t.active.is_empty(), "nothing is active after the workload");
    }

    #[test]
    fn plain_lines_match_the_log_format() {
        let e = Event::Op {
            process: 1,
            f: "exec".into(),
            node: "c1".into(),
            kind: OpType::Fail,
            status: Some("exit 1".into()),
        };
        assert_eq!(plain_line(&e).unwrap(), "  op p1 exec on c1: Fail (exit 1)");
        assert_eq!(notable(&Event::Phase(Phase::Heal)), None);
    }
}
