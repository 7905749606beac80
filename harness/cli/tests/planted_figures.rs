//! The planted-bug figures of the closing note (not part of `cargo test`: about half an hour):
//!
//!     cargo test -p smbchaos --test planted_figures -- --nocapture
//!
//! Every field plan under every plant, and the false alarms over seeded runs of correct
//! configurations. Writes target/tmp/planted-figures.txt.

#[path = "planted/common.rs"]
mod common;

use std::path::Path;

use common::*;

/// The figures of the closing note: every field plan under every plant, and the false alarms
/// over seeded runs of correct configurations (`SMBCHAOS_FIGURE_SEEDS` per plan, default 3:
/// 30 runs; `SMBCHAOS_FIGURE_SEED_BASE` shifts the seeds). `SMBCHAOS_FIGURE_PLANTS`
/// (comma-separated) picks plants. Writes
/// target/tmp/planted-figures.txt.
#[test]
fn figures() {
    let mut plans: Vec<String> = std::fs::read_dir(repo().join("plans/field"))
        .unwrap()
        .flatten()
        .map(|e| format!("plans/field/{}", e.file_name().to_string_lossy()))
        .collect();
    plans.sort();
    type Tweak = Box<dyn Fn(&mut plan::Plan)>;
    let plants: Vec<(&str, Tweak)> = vec![
        ("corrupt-reads", Box::new(|p| plant("corrupt-reads", 3)(p))),
        ("drop-writes", Box::new(|p| plant("drop-writes", 4)(p))),
        ("leases-off", Box::new(|p| global("smb2 leases", "no")(p))),
        (
            "durable-off",
            Box::new(|p| global("durable handles", "no")(p)),
        ),
    ];
    let only = std::env::var("SMBCHAOS_FIGURE_PLANTS").unwrap_or_default();
    let plants: Vec<(&str, Tweak)> = plants
        .into_iter()
        .filter(|(name, _)| only.is_empty() || only.split(',').any(|o| o == *name))
        .collect();
    let out_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("planted-figures.txt");
    let mut out = String::new();
    let mut line = |s: String| {
        println!("{s}");
        out.push_str(&s);
        out.push('\n');
        std::fs::write(&out_path, &out).unwrap();
    };
    line("plan | plant | verdict | failing checkers".into());
    for rel in &plans {
        for (name, tweak) in &plants {
            let mut p = plan::load(&repo().join(rel)).unwrap();
            tweak(&mut p);
            let r = run_plan(rel, &p);
            line(format!(
                "{rel} | {name} | {} | {}",
                outcome(&r),
                failing(&r)
            ));
        }
    }
    let seeds: u64 = std::env::var("SMBCHAOS_FIGURE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let base: u64 = std::env::var("SMBCHAOS_FIGURE_SEED_BASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut runs, mut alarms) = (0, 0);
    for seed in base + 1..=base + seeds {
        for rel in &plans {
            let mut p = plan::load(&repo().join(rel)).unwrap();
            p.seed = p.seed.wrapping_mul(1_000_003).wrapping_add(seed);
            let r = run_plan(rel, &p);
            runs += 1;
            if r.code != Some(0) {
                alarms += 1;
                line(format!(
                    "false alarm? {rel} seed {} | {} | {}",
                    p.seed,
                    outcome(&r),
                    failing(&r)
                ));
            }
        }
    }
    line(format!(
        "correct configurations: {alarms} false alarms in {runs} seeded runs"
    ));
}
