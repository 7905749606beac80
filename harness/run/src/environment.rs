//! `environment.json`: what was on the machine for a run.

use serde::Serialize;

/// What was on the machine for this run.
#[derive(Debug, Serialize)]
pub struct Environment {
    pub smbchaos: String,
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
            kernel,
            samba,
            provider: provider.to_string(),
            servers,
            seed: plan.seed,
            fault_mechanisms,
        }
    }
}
