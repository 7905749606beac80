//! `environment.json`: what was on the machine for a run.

use serde::Serialize;

/// What was on the machine for this run.
#[derive(Debug, Serialize)]
pub struct Environment {
    pub smbchaos: String,
    pub kernel: String,
    pub samba: String,
    pub seed: u64,
    pub fault_mechanisms: Vec<String>,
}

impl Environment {
    pub fn probe(seed: u64, fault_mechanisms: Vec<String>) -> Environment {
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
            samba: command_version(lab::samba::SMBD, "--version"),
            seed,
            fault_mechanisms,
        }
    }
}

pub fn command_version(program: &str, flag: &str) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
