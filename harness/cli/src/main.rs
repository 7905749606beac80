//! The `smbchaos` command line. Errors are reported here with their context; the libraries
//! return typed errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use check::Outcome;
use clap::{Args, Parser, Subcommand};
use report::junit::PlanSet;
use run::events::Events;
use run::planset::{self, PlanEnd, Planned, SetEnd};
use run::runner::{self, RunOptions};
use run::sweep::{run_sweep, Failing, Seeds, SweepSpec};
use smbchaos::progress;
use tokio::signal::unix::{signal, SignalKind};

/// Like eprintln!, but a closed stderr (a reader that went away) is not a reason to panic.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "smbchaos",
    version,
    about = "Fault-injection harness for SMB clients and servers"
)]
struct Cli {
    /// More logging (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run plans (files, or directories searched for *.yaml) and judge them.
    Run(RunArgs),
    /// Check plans without running them.
    Validate {
        #[arg(required = true)]
        plans: Vec<PathBuf>,
    },
    /// Re-judge a stored run from its history, with no lab.
    Check { results_dir: PathBuf },
    /// Rerun a stored run exactly (plan, seed, provider, Samba) and say whether the verdict
    /// is the same: exit 0 same every time, 1 not, 2 error.
    Repro {
        results_dir: PathBuf,
        /// Rerun this many times, counting how often the verdict reproduces.
        #[arg(long, default_value_t = 1)]
        times: u32,
        /// Where reruns go (default: the run's own results root).
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Cut a failing run's fault schedule and workload down to the smallest that still fails
    /// the same checkers, and write it as a plan file.
    Shrink {
        results_dir: PathBuf,
        /// Stop searching after this long (the smallest plan found so far is written).
        #[arg(long, default_value = "10m")]
        budget: plan::PlanDuration,
        /// The plan file to write (default: RESULTS_DIR/<plan>-shrunk.yaml).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write RESULTS_ROOT/index.html: every stored run, per plan over time, failures first.
    Index { results_root: PathBuf },
    /// Re-render a stored run's report.html and junit.xml.
    Report { results_dir: PathBuf },
    /// Bring up and hold a plan's lab.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Report each capability the harness uses, present or missing, with the fix (with plans:
    /// also the VFS modules they name; default: ./plans when it exists).
    Doctor { plans: Vec<PathBuf> },
    /// Reclaim everything a crashed or killed run left behind.
    Clean {
        /// Also reclaim runs whose owning process is still alive.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON Schema of plan files.
    Schema,
    /// Container images of `provider: docker` nodes, built here from `containers/`.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build the base image and the Samba images asked for (default: every version), each
    /// only when its recipe changed.
    Build {
        /// Samba versions, comma-separated (4.17, 4.22).
        #[arg(long, value_delimiter = ',')]
        samba: Vec<String>,
    },
    /// The images that exist, with the recipe hash in their tags; `current` marks the ones
    /// this binary's recipes name.
    List,
}

/// Overrides of what the plans say about their servers.
#[derive(Args, Clone, Default)]
struct Override {
    /// Run every plan with this provider (netns or docker), whatever its topology says.
    #[arg(long, value_parser = parse_provider)]
    provider: Option<plan::Provider>,
    /// Run every server on this Samba version (4.17 or 4.22); `run` takes a list
    /// (`--samba 4.17,4.22`) and runs the plan set once per version, side by side.
    #[arg(long, value_parser = parse_samba, value_delimiter = ',')]
    samba: Vec<plan::SambaVersion>,
}

impl Override {
    /// The provider override, and `version` (one of `samba`, or none) on every server and cluster.
    fn apply_version(&self, plan: &mut plan::Plan, version: Option<plan::SambaVersion>) {
        if let Some(provider) = self.provider {
            plan.topology.provider = provider;
        }
        if let Some(version) = version {
            for server in &mut plan.topology.servers {
                server.samba = version;
            }
            for cluster in &mut plan.topology.clusters {
                cluster.samba = version;
            }
        }
    }

    /// For one lab: at most one version.
    fn apply(&self, plan: &mut plan::Plan) -> Result<()> {
        if self.samba.len() > 1 {
            bail!("one lab runs one Samba version per server: give --samba one version");
        }
        self.apply_version(plan, self.samba.first().copied());
        Ok(())
    }
}

fn parse_provider(s: &str) -> Result<plan::Provider, String> {
    match s {
        "netns" => Ok(plan::Provider::Netns),
        "docker" => Ok(plan::Provider::Docker),
        other => Err(format!("unknown provider `{other}` (netns or docker)")),
    }
}

fn parse_samba(s: &str) -> Result<plan::SambaVersion, String> {
    s.parse()
}

#[derive(Args)]
struct RunArgs {
    #[arg(required = true)]
    plans: Vec<PathBuf>,
    /// Where results go: <DIR>/<plan>/<timestamp>/.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Also write one JUnit XML file for the whole plan set (a test case per plan).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    #[command(flatten)]
    with: Override,
    /// Sweep one plan over seeds: a range `1..50` (both included) or a count of fresh seeds.
    #[arg(long)]
    seeds: Option<Seeds>,
    /// Run each seed this many times (its pass rate, and what flipped).
    #[arg(long)]
    repeat: Option<u32>,
    /// Start no run that would not end within this (e.g. 20m); alone: fresh seeds until spent.
    #[arg(long)]
    budget: Option<plan::PlanDuration>,
}

#[derive(Subcommand)]
enum LabCommand {
    /// Bring the plan's topology up, print how to reach it, hold it until Ctrl-C.
    Up {
        plan: PathBuf,
        /// Tear down as soon as every server is ready (for timing).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        with: Override,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(smbchaos::progress::log_writer)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            note!("smbchaos: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(args) => run(args, cli.quiet).await,
        Command::Validate { plans } => validate(&plans),
        Command::Check { results_dir } => check(&results_dir),
        Command::Report { results_dir } => {
            let path = report::write(&results_dir)?;
            println!("{}", path.display());
            Ok(0)
        }
        Command::Repro {
            results_dir,
            times,
            results,
        } => repro(&results_dir, times, results, cli.quiet).await,
        Command::Shrink {
            results_dir,
            budget,
            out,
        } => shrink(&results_dir, budget, out, cli.quiet).await,
        Command::Index { results_root } => {
            let (path, runs) = report::index::write(&results_root)?;
            println!("{} ({runs} runs)", path.display());
            Ok(0)
        }
        Command::Lab {
            command: LabCommand::Up { plan, once, with },
        } => lab_up(&plan, once, &with).await,
        Command::Doctor { plans } => doctor(&plans),
        Command::Clean { force } => clean(force),
        Command::Images { command } => images(command),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&plan::json_schema())?);
            Ok(0)
        }
    }
}

/// Expand directories into the *.yaml plans under them (sorted), keep files as given. Below a
/// directory given, `schema/` (the JSON Schema) and `long/` (long runs, named on purpose) are
/// skipped.
fn plan_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("read {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n != "schema" && n != "long")
                {
                    walk(&path, out)?;
                }
            } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<(PathBuf, plan::Plan, String)>> {
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for path in plan_files(paths)? {
        match plan::load(&path) {
            Ok(p) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                plans.push((path, p, text));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!("invalid plan(s):\n{}", errors.join("\n"));
    }
    Ok(plans)
}

fn validate(paths: &[PathBuf]) -> Result<u8> {
    let mut bad = 0;
    for path in plan_files(paths)? {
        match plan::load(&path) {
            Ok(p) => {
                let missing = lab::capabilities::missing_vfs_modules(&p);
                if missing.is_empty() {
                    println!("{}: ok", path.display());
                } else {
                    bad += 1;
                    for c in missing {
                        note!("{}: {c}", path.display());
                    }
                }
            }
            Err(e) => {
                bad += 1;
                note!("{e}");
            }
        }
    }
    Ok(if bad == 0 { 0 } else { 1 })
}

/// Stop on SIGINT or SIGTERM. Dropping the run future drops the lab, which tears it down.
async fn interrupted() -> &'static str {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn run(args: RunArgs, quiet: bool) -> Result<u8> {
    if args.seeds.is_some() || args.repeat.is_some() || args.budget.is_some() {
        return sweep(args, quiet).await;
    }
    let loaded = load_all(&args.plans)?;
    // One pass per Samba version asked for (the version matrix), or one as the plans say.
    let versions: Vec<Option<plan::SambaVersion>> = if args.with.samba.is_empty() {
        vec![None]
    } else {
        args.with.samba.iter().copied().map(Some).collect()
    };
    let matrix = versions.len() > 1;
    let mut passes = Vec::new();
    for &version in &versions {
        let plans: Vec<Planned> = loaded
            .iter()
            .map(|(path, plan, text)| {
                let mut plan = plan.clone();
                args.with.apply_version(&mut plan, version);
                Planned {
                    path: path.clone(),
                    plan,
                    text: text.clone(),
                    case: None,
                }
            })
            .collect();
        preflight(plans.iter().map(|p| &p.plan))?;
        passes.push((version, plans));
    }
    let mut terminal = Terminal::new(quiet);
    let mut end = SetEnd::Finished(Outcome::Pass);
    for (version, plans) in &passes {
        let results_root = match version {
            Some(v) if matrix => args.results.join(format!("samba-{v}")),
            _ => args.results.clone(),
        };
        let options = RunOptions { results_root };
        terminal.version = version.filter(|_| matrix);
        let this = planset::run_set(plans, &options, interrupted(), &mut terminal).await;
        end = match (end, this) {
            (SetEnd::Finished(a), SetEnd::Finished(b)) => SetEnd::Finished(a.and(b)),
            (_, interrupted) => interrupted,
        };
        if matches!(end, SetEnd::Interrupted(_)) {
            break;
        }
    }
    if matrix {
        print_matrix(&versions, &terminal.matrix);
    }
    if let Some(file) = &args.junit {
        terminal
            .junit
            .write(file)
            .with_context(|| format!("--junit {}", file.display()))?;
    }
    Ok(match end {
        SetEnd::Finished(worst) => worst.exit_code() as u8,
        SetEnd::Interrupted(sig) => {
            note!(
                "smbchaos: {sig}: lab torn down; the plan that ran is left incomplete under {}",
                args.results.display()
            );
            130
        }
    })
}

/// `run --seeds/--repeat/--budget`: one plan over many seeds, a summary at the end
/// (printed, and sweep.json + junit.xml in `<results>/<plan>/sweep-<time>/`).
async fn sweep(args: RunArgs, quiet: bool) -> Result<u8> {
    let mut loaded = load_all(&args.plans)?;
    if loaded.len() != 1 {
        bail!(
            "--seeds, --repeat and --budget sweep one plan file; {} given",
            loaded.len()
        );
    }
    let (path, mut plan, text) = loaded.remove(0);
    args.with.apply(&mut plan)?;
    preflight([&plan])?;
    let seeds = match (args.seeds, args.budget) {
        (Some(s), _) => s,
        (None, Some(_)) if args.repeat.is_none() => Seeds::Unbounded,
        (None, _) => Seeds::Plan,
    };
    let spec = SweepSpec {
        seeds,
        repeat: args.repeat.unwrap_or(1),
        budget: args.budget.map(|b| b.as_duration()),
    };
    let planned = Planned {
        path,
        plan,
        text,
        case: None,
    };
    let mut terminal = Terminal::new(quiet);
    let options = RunOptions {
        results_root: args.results.clone(),
    };
    let sweep = run_sweep(&planned, &spec, &options, interrupted(), &mut terminal).await;
    let stamp = history::results::utc_stamp(std::time::SystemTime::now());
    let dir = args
        .results
        .join(planned.name())
        .join(format!("sweep-{stamp}"));
    sweep
        .write(&dir)
        .with_context(|| format!("sweep summary in {}", dir.display()))?;
    terminal.junit.write(&dir.join("junit.xml"))?;
    if let Some(file) = &args.junit {
        terminal
            .junit
            .write(file)
            .with_context(|| format!("--junit {}", file.display()))?;
    }
    print!("{}", sweep.summary());
    println!("sweep summary: {}", dir.join("sweep.json").display());
    Ok(match sweep.interrupted {
        Some(_) => 130,
        None => sweep.outcome().exit_code() as u8,
    })
}

/// Rerun a stored run `times` times; exit 0 when every rerun's verdict is the recorded one.
async fn repro(dir: &Path, times: u32, results: Option<PathBuf>, quiet: bool) -> Result<u8> {
    let rec = run::repro::load(dir)?;
    for n in &rec.notes {
        note!("smbchaos: note: {n}");
    }
    let Some(then) = rec.verdict.clone() else {
        bail!(
            "{}: never judged (no verdict.json): nothing to compare",
            dir.display()
        );
    };
    preflight([&rec.planned.plan])?;
    let spec = SweepSpec {
        seeds: Seeds::Plan,
        repeat: times,
        budget: None,
    };
    let results_root = results.unwrap_or_else(|| run::repro::results_root(&rec.dir));
    let mut terminal = Terminal::new(quiet);
    let options = RunOptions { results_root };
    let sweep = run_sweep(&rec.planned, &spec, &options, interrupted(), &mut terminal).await;
    let was = Failing::of(&then);
    println!("recorded: {}", run::repro::describe(then.outcome, &was));
    let mut same = 0;
    for r in &sweep.runs {
        let ok = r.error.is_none() && run::repro::same_verdict(&then, r.outcome, &r.failing);
        same += usize::from(ok);
        let now = match &r.error {
            Some(e) => format!("ERROR: {e}"),
            None => run::repro::describe(r.outcome, &r.failing),
        };
        println!(
            "rerun #{}: {now}: {}",
            r.repeat + 1,
            if ok { "same" } else { "DIFFERENT" }
        );
    }
    println!("reproduced {same} of {} rerun(s)", sweep.runs.len());
    Ok(match sweep.interrupted {
        Some(_) => 130,
        None if same == sweep.runs.len() => 0,
        None => 1,
    })
}

async fn shrink(
    dir: &Path,
    budget: plan::PlanDuration,
    out: Option<PathBuf>,
    quiet: bool,
) -> Result<u8> {
    let rec = run::repro::load(dir)?;
    preflight([&rec.planned.plan])?;
    let out = out.unwrap_or_else(|| rec.dir.join(format!("{}-shrunk.yaml", rec.planned.name())));
    let mut terminal = Terminal::new(quiet);
    let budget = budget.as_duration();
    let s = run::shrink::shrink(&rec, budget, &out, interrupted(), &mut terminal).await?;
    println!(
        "shrunk {} -> {} fault(s){} in {} rerun(s), {:.0} s{}; confirmed: {}",
        s.original_faults,
        s.faults,
        match (s.original_duration, s.duration) {
            (Some(a), Some(b)) if a != b => format!(", workload {a} -> {b}"),
            _ => String::new(),
        },
        s.reruns,
        s.seconds,
        if s.budget_spent {
            " (budget spent)"
        } else {
            ""
        },
        s.confirmed.map_or("not run".into(), |c| c.to_string())
    );
    println!("plan: {}", s.plan_file.display());
    Ok(if s.confirmed == Some(true) { 0 } else { 1 })
}

/// The terminal's view of a plan set: progress per plan, each verdict, reports and JUnit.
struct Terminal {
    mode: progress::Mode,
    renderer: Option<tokio::task::JoinHandle<Option<PathBuf>>>,
    junit: PlanSet,
    /// The Samba version of this pass of a version matrix (it names the JUnit test cases).
    version: Option<plan::SambaVersion>,
    /// (plan file, version, what it ended as), for the side-by-side summary.
    matrix: Vec<(PathBuf, Option<plan::SambaVersion>, String)>,
}

impl Terminal {
    fn new(quiet: bool) -> Terminal {
        Terminal {
            mode: progress::Mode::detect(quiet),
            renderer: None,
            junit: PlanSet::default(),
            version: None,
            matrix: Vec::new(),
        }
    }
}

/// The version matrix: one row per plan, one column per Samba version.
fn print_matrix(
    versions: &[Option<plan::SambaVersion>],
    ended: &[(PathBuf, Option<plan::SambaVersion>, String)],
) {
    let mut plans: Vec<&PathBuf> = Vec::new();
    for (path, _, _) in ended {
        if !plans.contains(&path) {
            plans.push(path);
        }
    }
    let width = plans
        .iter()
        .map(|p| p.display().to_string().len())
        .max()
        .unwrap_or(4);
    let mut header = format!("{:<width$}", "plan");
    for v in versions.iter().flatten() {
        header.push_str(&format!("  samba {:<8}", v.as_str()));
    }
    println!("{}", header.trim_end());
    for path in plans {
        let mut row = format!("{:<width$}", path.display());
        for v in versions {
            let cell = ended
                .iter()
                .find(|(p, ver, _)| p == path && ver == v)
                .map(|(_, _, e)| e.as_str())
                .unwrap_or("not run");
            row.push_str(&format!("  {cell:<14}"));
        }
        println!("{}", row.trim_end());
    }
}

impl planset::Reporter for Terminal {
    fn started(&mut self, _index: usize, planned: &Planned) -> Events {
        let (events, rx) = Events::channel();
        self.renderer = Some(tokio::spawn(progress::render(
            rx,
            self.mode,
            progress::one_shot_kinds(&planned.plan),
        )));
        events
    }

    async fn ended(&mut self, planned: &Planned, end: &PlanEnd, took: std::time::Duration) {
        // The run's directory is rendered whatever happened to the run.
        if let Some(renderer) = self.renderer.take() {
            if let Ok(Some(dir)) = renderer.await {
                // The history the verdict came from, when it is this directory's.
                let history = match end {
                    PlanEnd::Judged {
                        results, history, ..
                    } if *results == dir => history.take(),
                    _ => None,
                };
                write_reports(&dir, history);
            }
        }
        let (path, version) = (&planned.path, self.version);
        let named;
        let name = match version {
            Some(v) => {
                named = format!("{} [samba {v}]", planned.case());
                named.as_str()
            }
            None => planned.case(),
        };
        let ended = match end {
            PlanEnd::Judged { verdict, .. } => label(verdict.outcome).to_string(),
            PlanEnd::Errored(_) => "ERROR".to_string(),
            PlanEnd::Interrupted(_) => "interrupted".to_string(),
        };
        self.matrix.push((path.clone(), version, ended));
        match end {
            PlanEnd::Judged {
                verdict, results, ..
            } => {
                for j in &verdict.checkers {
                    if j.outcome != Outcome::Pass {
                        println!(
                            "    {}: {:?} (expected {}): {}",
                            j.result.checker, j.outcome, j.expected, j.result.explanation
                        );
                    }
                }
                println!(
                    "{}: {} ({})",
                    path.display(),
                    label(verdict.outcome),
                    results.display()
                );
                if let (Some(rate), Outcome::Fail | Outcome::Unknown) =
                    (&planned.plan.flake_rate, verdict.outcome)
                {
                    let f = run::sweep::flake_judgement(1, 1, rate.value.fraction());
                    println!("    {}", f.explain());
                }
                self.junit.judged(path, name, verdict, results, took);
            }
            PlanEnd::Errored(e) => {
                println!("{}: ERROR: {e}", path.display());
                self.junit.errored(path, name, e, took);
            }
            PlanEnd::Interrupted(sig) => {
                self.junit
                    .errored(path, name, &format!("interrupted by {sig}"), took);
            }
        }
    }

    fn not_run(&mut self, planned: &Planned, why: &str) {
        let name = match self.version {
            Some(v) => format!("{} [samba {v}]", planned.name()),
            None => planned.name().to_string(),
        };
        self.junit.skipped(&planned.path, &name, why);
    }
}

/// report.html and junit.xml; a run's verdict does not depend on them, so trouble here is a
/// warning, not a failed run.
/// Given the compact history `check` judged, the report is drawn from it; without one (a
/// run that errored before its verdict) history.jsonl is read.
fn write_reports(dir: &Path, history: Option<check::History>) {
    let written = match history {
        Some(history) => report::write_with(dir, history),
        None => report::write(dir),
    };
    if let Err(e) = written {
        note!("smbchaos: warning: report for {}: {e}", dir.display());
    }
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Unknown => "UNKNOWN",
    }
}

/// Missing required capabilities are errors before anything starts: one list, from the lab.
fn preflight<'a>(plans: impl IntoIterator<Item = &'a plan::Plan>) -> Result<()> {
    let mut missing: Vec<String> = Vec::new();
    for plan in plans {
        for c in lab::capabilities::missing_for(plan) {
            let line = format!("  {c}");
            if !missing.contains(&line) {
                missing.push(line);
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "this machine cannot run the plan(s); nothing was started:\n{}",
            missing.join("\n")
        );
    }
    Ok(())
}

fn check(dir: &Path) -> Result<u8> {
    let mut plan = plan::load(&dir.join(history::results::PLAN))?;
    run::environment::apply_recorded_releases(&mut plan, dir);
    let (verdict, history) = runner::check(dir, &plan)?;
    // Drawn from the history check read: history.jsonl is parsed once.
    if let Err(e) = report::write_with(dir, history) {
        note!("smbchaos: warning: report for {}: {e}", dir.display());
    }
    for j in &verdict.checkers {
        println!(
            "{}: {:?} (valid {:?}, expected {}): {}",
            j.result.checker, j.outcome, j.result.valid, j.expected, j.result.explanation
        );
    }
    println!("{}", label(verdict.outcome));
    Ok(verdict.outcome.exit_code() as u8)
}

async fn lab_up(path: &Path, once: bool, with: &Override) -> Result<u8> {
    let mut plan = plan::load(path)?;
    with.apply(&mut plan)?;
    preflight([&plan])?;
    let started = Instant::now();
    let lab = lab::Lab::up(&plan, lab::LabOptions::default())
        .await
        .context("bringing the lab up")?;
    let took = started.elapsed();
    println!(
        "lab {} of plan {} ready in {:.3} s",
        lab.run_id(),
        plan.name.value,
        took.as_secs_f64()
    );
    for node in lab.nodes() {
        println!(
            "  {:<15} {:<15} {:?}  netns {}",
            node.name,
            node.address,
            node.role,
            node.ns.name()
        );
    }
    let (user, password) = lab.credentials();
    for cluster in lab.clusters() {
        let status = lab.cluster_status(&cluster.name).await?;
        println!(
            "cluster {} (nodes {}):",
            cluster.name,
            cluster.nodes.join(", ")
        );
        for (address, pnn) in &status.addresses {
            let holder = usize::try_from(*pnn)
                .ok()
                .and_then(|p| cluster.nodes.get(p))
                .map_or("none", String::as_str);
            println!("  public {address:<15} on {holder}");
        }
        if let Some(client) = plan.topology.clients.first() {
            println!(
                "  ip netns exec {} smbclient //{}/{} -U '{user}%{password}' -c ls",
                lab.netns_name(&client.name.value)?,
                cluster.public_addresses[0],
                cluster.shares.first().map_or("share", String::as_str)
            );
            if let Some(pid) = cluster.ctdb[0].lock().await.pid() {
                // ctdb reads the node's /etc/ctdb and /run/ctdb: its mount namespace.
                println!(
                    "  nsenter -t {pid} -m ctdb status   ({}: {})",
                    cluster.nodes[0],
                    lab.dir().join(&cluster.nodes[0]).join("ctdb").display()
                );
            }
        }
    }
    if let (Some(client), Some(server)) =
        (plan.topology.clients.first(), plan.topology.servers.first())
    {
        let share = server
            .shares
            .first()
            .map(|s| s.name.value.as_str())
            .unwrap_or("share");
        println!("reach it:");
        println!(
            "  ip netns exec {} smbclient //{}/{share} -U '{user}%{password}' -c ls",
            lab.netns_name(&client.name.value)?,
            lab.address_towards(&client.name.value, &server.name.value)
        );
    }
    if !once {
        println!("Ctrl-C (or SIGTERM) tears it down.");
        let sig = interrupted().await;
        note!("{sig}: tearing the lab down");
    }
    lab.down().await?;
    Ok(0)
}

fn doctor(plans: &[PathBuf]) -> Result<u8> {
    let default = [PathBuf::from("plans")];
    let paths = if plans.is_empty() && default[0].is_dir() {
        &default[..]
    } else {
        plans
    };
    let plans: Vec<plan::Plan> = load_all(paths)?.into_iter().map(|(_, p, _)| p).collect();
    let checks = lab::capabilities::machine(&plans);
    let mut missing_required = false;
    for c in &checks {
        let mark = if c.present {
            "ok     "
        } else if c.required {
            "MISSING"
        } else {
            "missing"
        };
        println!("{mark} {:<24} {}", c.name, c.detail);
        if !c.present {
            println!("        {:<24} fix: {}", "", c.fix);
            missing_required |= c.required;
        }
    }
    Ok(if missing_required { 1 } else { 0 })
}

fn clean(force: bool) -> Result<u8> {
    let report = lab::clean(force)?;
    for (run, done) in &report.reclaimed {
        println!(
            "reclaimed run {run}: {} process(es), namespaces [{}], containers [{}]",
            done.processes,
            done.namespaces.join(", "),
            done.containers.join(", ")
        );
    }
    for orphan in &report.orphans {
        println!("removed orphan {orphan}");
    }
    for live in &report.live {
        println!(
            "left run {} alone: its owner (pid {}) is still running; --force takes it",
            live.run_id, live.owner_pid
        );
    }
    if report.reclaimed.is_empty() && report.orphans.is_empty() {
        println!("nothing to clean");
    }
    Ok(0)
}

fn images(command: ImagesCommand) -> Result<u8> {
    match command {
        ImagesCommand::Build { samba } => {
            let versions = if samba.is_empty() {
                plan::SambaVersion::ALL.to_vec()
            } else {
                samba
                    .iter()
                    .map(|s| s.parse().map_err(anyhow::Error::msg))
                    .collect::<Result<Vec<plan::SambaVersion>>>()?
            };
            let log =
                std::env::temp_dir().join(format!("smbchaos-images-{}.log", std::process::id()));
            let started = Instant::now();
            let built = lab::images::build(&versions, &log)?;
            for b in &built {
                println!(
                    "{:<40} {} in {:.1} s",
                    b.tag,
                    if b.built { "built" } else { "cached" },
                    b.took.as_secs_f64()
                );
            }
            println!("images ready in {:.1} s", started.elapsed().as_secs_f64());
            let _ = std::fs::remove_file(&log);
            Ok(0)
        }
        ImagesCommand::List => {
            let listed = lab::images::list()?;
            if listed.is_empty() {
                println!("no smbchaos images; `smbchaos images build` makes them");
            }
            for i in &listed {
                println!(
                    "{:<40} {:<8} {:<10} {}",
                    i.tag,
                    if i.current { "current" } else { "stale" },
                    i.size,
                    i.created
                );
            }
            Ok(0)
        }
    }
}
