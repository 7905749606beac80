//! `environment.json`: what was on the machine for a run.

use serde::Serialize;

/// The commit this harness was built from (build.rs).
pub const COMMIT: &str = env!("SMBCHAOS_COMMIT");

/// What was on the machine for this run.
#[derive(Debug, Serialize)]
pub struct Environment {
    pub smbchaos: String,
    /// The git commit the harness was built from ("unknown" outside a checkout).
    pub commit: String,
    pub kernel: String,
    /// What the servers run: the host's `smbd --version` on netns; on docker, each distinct
    /// version with its image.
    pub samba: String,
    /// `netns` or `docker` (the plan's, or `--provider`'s).
    pub provider: String,
    /// Each server's Samba: the version and, on docker, the image (whose tag carries the
    /// recipe hash).
    pub servers: std::collections::BTreeMap<String, String>,
    pub seed: u64,
    pub fault_mechanisms: Vec<String>,
}

impl Environment {
    pub fn probe(plan: &plan::Plan, fault_mechanisms: Vec<String>) -> Environment {
        let provider = plan.topology.provider;
        let describe = |v: plan::SambaVersion| match provider {
            plan::Provider::Netns => v.to_string(),
            plan::Provider::Docker => format!("{v} ({})", lab::images::samba_tag(v)),
        };
        let servers = plan
            .topology
            .servers
            .iter()
            .map(|s| (s.name.value.clone(), describe(s.samba)))
            .chain(plan.topology.clusters.iter().flat_map(|c| {
                c.node_names()
                    .into_iter()
                    .map(move |n| (n, describe(c.samba)))
            }))
            .collect::<std::collections::BTreeMap<String, String>>();
        let samba = match provider {
            plan::Provider::Netns => lab::capabilities::version(lab::samba::SMBD, "--version"),
            plan::Provider::Docker => {
                let mut distinct: Vec<&String> = servers.values().collect();
                distinct.sort();
                distinct.dedup();
                distinct
                    .into_iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let uname = nix::sys::utsname::uname().ok();
        let kernel = uname
            .map(|u| {
                format!(
                    "{} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy()
                )
            })
            .unwrap_or_default();
        Environment {
            smbchaos: env!("CARGO_PKG_VERSION").to_string(),
            commit: COMMIT.to_string(),
            kernel,
            samba,
            provider: provider.to_string(),
            servers,
            seed: plan.seed,
            fault_mechanisms,
        }
    }
}

/// Put the Samba release each server and cluster ran (environment.json's `servers`, as
/// `--samba` may have set it) back on a stored run's plan, whose plan.yaml is the file as
/// written: re-judging it must pick the same per-release expectations (`expect.samba`).
/// A run without environment.json, or a node it does not name, keeps the plan's release.
pub fn apply_recorded_releases(plan: &mut plan::Plan, results_dir: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(results_dir.join(history::results::ENVIRONMENT)) else {
        return;
    };
    let Ok(env) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let ran = |node: &str| -> Option<plan::SambaVersion> {
        let what = env.get("servers")?.get(node)?.as_str()?;
        what.split_whitespace().next()?.parse().ok()
    };
    for server in &mut plan.topology.servers {
        if let Some(v) = ran(&server.name.value) {
            server.samba = v;
        }
    }
    for cluster in &mut plan.topology.clusters {
        if let Some(v) = cluster.node_names().first().and_then(|n| ran(n)) {
            cluster.samba = v;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_run_gets_back_the_releases_it_ran() {
        let text = "version: 1\nname: t\ntopology:\n  servers:\n    - name: fs1\n  clusters:\n    - name: ctdb\n      nodes: 2\n";
        let mut plan = plan::parse_str("t.yaml", text).expect("plan");
        let dir = std::env::temp_dir().join(format!("smbchaos-env-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No environment.json: the plan's own releases stay.
        super::apply_recorded_releases(&mut plan, &dir);
        assert_eq!(plan.samba_version(), Some(plan::SambaVersion::V4_17));
        std::fs::write(
            dir.join(history::results::ENVIRONMENT),
            r#"{"servers": {"fs1": "4.22 (smbchaos-samba:4.22-x)", "ctdb-0": "4.22 (smbchaos-samba:4.22-x)", "ctdb-1": "4.22 (smbchaos-samba:4.22-x)"}}"#,
        )
        .unwrap();
        super::apply_recorded_releases(&mut plan, &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(plan.topology.servers[0].samba, plan::SambaVersion::V4_22);
        assert_eq!(plan.topology.clusters[0].samba, plan::SambaVersion::V4_22);
    }
}
