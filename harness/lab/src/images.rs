//! Container images, built here from the recipes in `containers/` (never pulled: this
//! machine has no registry). A tag carries the hash of everything that decides the image's
//! content, so a changed recipe means a new tag and an unchanged one means nothing to build.
//!
//! - `smbchaos-base:<hash>`: bare Debian 12 from debootstrap; `containers/base/build` is both
//!   its recipe (hashed) and its builder (shared with scripts/fresh-machine).
//! - `smbchaos-samba:<version>-<hash>`: `containers/samba-<version>/Dockerfile` FROM the base;
//!   the hash covers the base recipe too, so a new base rebuilds every Samba image.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plan::SambaVersion;
use sha2::{Digest, Sha256};

use crate::LabError;

/// The base recipe, built into the binary so tags are known without the source tree.
const BASE_BUILD: &[u8] = include_bytes!("../../../containers/base/build");
const SAMBA_4_17: &[u8] = include_bytes!("../../../containers/samba-4.17/Dockerfile");
const SAMBA_4_22: &[u8] = include_bytes!("../../../containers/samba-4.22/Dockerfile");

pub const BASE_REPO: &str = "smbchaos-base";
pub const SAMBA_REPO: &str = "smbchaos-samba";

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The base image's tag: the same first 16 hex digits `sha256sum containers/base/build` gives.
pub fn base_tag() -> String {
    format!("{BASE_REPO}:{}", short_hash(&[BASE_BUILD]))
}

fn dockerfile(version: SambaVersion) -> &'static [u8] {
    match version {
        SambaVersion::V4_17 => SAMBA_4_17,
        SambaVersion::V4_22 => SAMBA_4_22,
    }
}

/// The Samba image a server of `version` runs, for the recipes this binary was built with.
pub fn samba_tag(version: SambaVersion) -> String {
    let hash = short_hash(&[BASE_BUILD, b"\0", dockerfile(version)]);
    format!("{SAMBA_REPO}:{version}-{hash}")
}

/// Does the local Docker engine have `tag`?
pub fn exists(tag: &str) -> Result<bool, LabError> {
    let status = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| LabError::io("run docker (is Docker installed?)", e))?;
    Ok(status.success())
}

/// The Samba image for `version`, or an error naming the command that builds it.
pub fn require_samba(version: SambaVersion) -> Result<String, LabError> {
    let tag = samba_tag(version);
    if exists(&tag)? {
        Ok(tag)
    } else {
        Err(LabError::Other(format!(
            "image {tag} (Samba {version}) is not built; build it with `smbchaos images build --samba {version}`"
        )))
    }
}

/// The images a `provider: docker` plan's servers and clusters run, as capabilities (the preflight's
/// list): a missing one stops the run before anything starts, naming the command that
/// builds it.
pub fn needs(plan: &plan::Plan) -> Vec<crate::capabilities::Capability> {
    versions(plan)
        .into_iter()
        .map(|version| {
            let tag = samba_tag(version);
            let present = exists(&tag).unwrap_or(false);
            crate::capabilities::Capability {
                name: format!("image Samba {version}"),
                present,
                detail: if present {
                    tag.clone()
                } else {
                    format!("{tag} is not built (or Docker is not running)")
                },
                fix: format!("smbchaos images build --samba {version}"),
                required: true,
            }
        })
        .collect()
}

/// The Samba versions a `provider: docker` plan's servers and clusters run (none on netns).
pub fn versions(plan: &plan::Plan) -> Vec<SambaVersion> {
    if plan.topology.provider != plan::Provider::Docker {
        return Vec::new();
    }
    let mut versions: Vec<SambaVersion> = plan
        .topology
        .servers
        .iter()
        .map(|s| s.samba)
        .chain(plan.topology.clusters.iter().map(|c| c.samba))
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// Where the look inside each image is kept, by image id (an image never changes under
/// its id; a rebuilt recipe is a new id).
const MODULES_CACHE: &str = "/var/cache/smbchaos/image-modules";
/// Between `smbd -b`'s output and the listing of its VFS module directory.
const LISTING: &str = "@@vfs-modules@@";

/// The VFS modules the Samba image of `version` has (`smbd -b` and a listing of its
/// MODULESDIR/vfs, run in a throwaway container once per image and cached), with the image's
/// tag. `None` when the image is not built (or Docker cannot run it).
pub fn smbd_modules(version: SambaVersion) -> Option<(String, crate::capabilities::SmbdModules)> {
    static SEEN: std::sync::Mutex<Vec<(String, crate::capabilities::SmbdModules)>> =
        std::sync::Mutex::new(Vec::new());
    let tag = samba_tag(version);
    let id = image_id(&tag)?;
    let mut seen = SEEN.lock().expect("modules cache lock");
    if let Some((_, m)) = seen.iter().find(|(i, _)| *i == id) {
        return Some((tag, m.clone()));
    }
    let cache = std::path::Path::new(MODULES_CACHE).join(id.replace(':', "-"));
    let text = match std::fs::read_to_string(&cache) {
        Ok(text) => text,
        Err(_) => {
            let script = format!(
                "smbd -b && echo {LISTING} && ls \"$(smbd -b | sed -n 's/^ *MODULESDIR: *//p')/vfs\""
            );
            let out = Command::new("docker")
                .args(["run", "--rm", "--network", "none", &tag, "/bin/sh", "-c"])
                .arg(script)
                .stdin(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            // The cache only saves the next run a container start: failing to write it is fine.
            let _ = std::fs::create_dir_all(MODULES_CACHE);
            let _ = std::fs::write(&cache, &text);
            text
        }
    };
    let (build_info, listing) = text.split_once(LISTING).unwrap_or((&text, ""));
    let mut modules = crate::capabilities::SmbdModules::parse(build_info);
    modules.listed = Some(listing.split_whitespace().map(str::to_string).collect());
    seen.push((id, modules.clone()));
    Some((tag, modules))
}

/// The engine's id of `tag`, if it exists.
fn image_id(tag: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!id.is_empty()).then_some(id)
}

/// What one `build` call did for one image.
#[derive(Debug)]
pub struct Built {
    pub tag: String,
    /// False when the tag already existed (nothing was built).
    pub built: bool,
    pub took: Duration,
}

/// Build the base image and the Samba images of `versions`, each only when its tag is
/// missing. Progress (debootstrap, apt) goes to `log`.
pub fn build(versions: &[SambaVersion], log: &std::path::Path) -> Result<Vec<Built>, LabError> {
    let mut done = Vec::new();
    let start = Instant::now();
    let base = base_tag();
    let base_existed = exists(&base)?;
    if !base_existed {
        run_base_build(log)?;
    }
    done.push(Built {
        tag: base.clone(),
        built: !base_existed,
        took: start.elapsed(),
    });
    for &version in versions {
        let start = Instant::now();
        let tag = samba_tag(version);
        let existed = exists(&tag)?;
        if !existed {
            docker_build(&tag, &base, dockerfile(version), log)?;
        }
        done.push(Built {
            tag,
            built: !existed,
            took: start.elapsed(),
        });
    }
    Ok(done)
}

fn open_log(log: &std::path::Path) -> Result<std::fs::File, LabError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| LabError::io(format!("open {}", log.display()), e))
}

/// Run the embedded base recipe (a script that hashes itself, so it runs from a file).
fn run_base_build(log: &std::path::Path) -> Result<(), LabError> {
    let dir = std::env::temp_dir().join(format!("smbchaos-base-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io("create a temporary directory", e))?;
    let script = dir.join("build");
    std::fs::write(&script, BASE_BUILD).map_err(|e| LabError::io("write the base recipe", e))?;
    let out = open_log(log)?;
    let err = out.try_clone().map_err(|e| LabError::io("dup log", e))?;
    let status = Command::new("bash")
        .arg(&script)
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| LabError::io("run the base recipe", e));
    let _ = std::fs::remove_dir_all(&dir);
    if !status?.success() {
        return Err(LabError::Other(format!(
            "building {} failed (log: {})",
            base_tag(),
            log.display()
        )));
    }
    Ok(())
}

/// `docker build` with the Dockerfile on stdin and no context (the recipes copy nothing).
fn docker_build(
    tag: &str,
    base: &str,
    dockerfile: &[u8],
    log: &std::path::Path,
) -> Result<(), LabError> {
    let out = open_log(log)?;
    let err = out.try_clone().map_err(|e| LabError::io("dup log", e))?;
    let mut child = Command::new("docker")
        .args(["build", "--tag", tag, "--build-arg"])
        .arg(format!("BASE={base}"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| LabError::io("run docker build (is Docker installed?)", e))?;
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(dockerfile);
    let status = child.wait().map_err(|e| LabError::io("docker build", e))?;
    written.map_err(|e| LabError::io("write the Dockerfile to docker build", e))?;
    if !status.success() {
        return Err(LabError::Other(format!(
            "docker build of {tag} failed (log: {})",
            log.display()
        )));
    }
    Ok(())
}

/// One image the engine has in our repositories.
#[derive(Debug)]
pub struct Listed {
    pub tag: String,
    pub created: String,
    pub size: String,
    /// Is this the tag the current recipes name (else an older recipe's)?
    pub current: bool,
}

pub fn list() -> Result<Vec<Listed>, LabError> {
    let mut current = vec![base_tag()];
    current.extend(SambaVersion::ALL.map(samba_tag));
    let mut all = Vec::new();
    for repo in [BASE_REPO, SAMBA_REPO] {
        let out = Command::new("docker")
            .args([
                "images",
                "--format",
                "{{.Repository}}:{{.Tag}}\t{{.CreatedAt}}\t{{.Size}}",
                repo,
            ])
            .output()
            .map_err(|e| LabError::io("run docker images (is Docker installed?)", e))?;
        if !out.status.success() {
            return Err(LabError::Other(format!(
                "docker images failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = line.split('\t');
            let (Some(tag), Some(created), Some(size)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            all.push(Listed {
                current: current.iter().any(|c| c == tag),
                tag: tag.to_string(),
                created: created.to_string(),
                size: size.to_string(),
            });
        }
    }
    Ok(all)
}
