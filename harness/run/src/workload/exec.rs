//! `exec` steps: a shell command inside a client node, recorded as one op. This is how clients
//! that are not ours (smbclient, a vendor's) are put under the same faults.

use std::collections::BTreeMap;
use std::process::Stdio;

use lab::Lab;

use crate::events::{Event, Events};
use history::ops::Op;
use history::value::{ExecDone, ExecInvoke};
use history::{Entry, HistoryWriter, OpType, Process, Value};

/// Longest stdout/stderr kept per step in the history.
const OUTPUT_LIMIT: usize = 4096;

/// Run the plan's steps in order; step `i` is process `i`.
pub async fn run_steps(
    lab: &Lab,
    plan: &plan::Plan,
    history: &HistoryWriter,
    events: &Events,
) -> std::io::Result<()> {
    let env = exec_env(lab)?;
    for (process, step) in plan.workload.steps.iter().enumerate() {
        match step {
            plan::Step::Exec(step) => {
                exec(lab, process as u64, step, &env, history, events).await?
            }
        }
    }
    Ok(())
}

/// The environment every exec step sees (documented on `plan::ExecStep`).
fn exec_env(lab: &Lab) -> std::io::Result<BTreeMap<String, String>> {
    let (user, password) = lab.credentials();
    let auth_file = lab.dir().join("smbclient.auth");
    std::fs::write(
        &auth_file,
        format!("username = {user}\npassword = {password}\ndomain = SMBCHAOS\n"),
    )?;
    let mut env = BTreeMap::from([
        ("SMBCHAOS_USER".to_string(), user.to_string()),
        ("SMBCHAOS_PASSWORD".to_string(), password.to_string()),
        (
            "SMBCHAOS_AUTH_FILE".to_string(),
            auth_file.display().to_string(),
        ),
        ("SMBCHAOS_RUN_ID".to_string(), lab.run_id().to_string()),
    ]);
    for node in lab.nodes() {
        let key = format!(
            "SMBCHAOS_ADDR_{}",
            node.name.to_uppercase().replace('-', "_")
        );
        // A node on several networks: also `SMBCHAOS_ADDR_<NODE>_<NETWORK>`.
        if node.links.len() > 1 {
            for link in &node.links {
                let network = link.network.to_uppercase().replace('-', "_");
                env.insert(format!("{key}_{network}"), link.address.to_string());
            }
        }
        env.insert(key, node.address.to_string());
    }
    Ok(env)
}

async fn exec(
    lab: &Lab,
    process: u64,
    step: &plan::ExecStep,
    env: &BTreeMap<String, String>,
    history: &HistoryWriter,
    events: &Events,
) -> std::io::Result<()> {
    let client = step.client.value.as_str();
    let node = lab.node(client).map_err(std::io::Error::other)?;
    let work_dir = node.dir.join("work");
    let mut cmd = lab
        .command(client, "/bin/sh")
        .map_err(std::io::Error::other)?;
    cmd.arg("-c")
        .arg(&step.run)
        .envs(env)
        .env("SMBCHAOS_WORK_DIR", &work_dir)
        .env("SMBCHAOS_NODE", client)
        .current_dir(&work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let entry = |kind, value, status| Entry {
        process: Process::Worker(process),
        kind,
        f: Op::Exec.into(),
        node: Some(client.to_string()),
        value,
        status,
        ..Default::default()
    };
    let invoke = ExecInvoke {
        run: step.run.clone(),
    };
    history.append(entry(OpType::Invoke, invoke.into(), None))?;
    let done = tokio::time::timeout(step.timeout.as_duration(), cmd.output()).await;
    let (kind, value, status) = match done {
        Err(_) => (
            OpType::Info,
            Value::None,
            Some(format!("timed out after {}", step.timeout)),
        ),
        Ok(Err(e)) => (
            OpType::Fail,
            Value::None,
            Some(format!("could not start: {e}")),
        ),
        Ok(Ok(out)) => {
            let code = out.status.code();
            let value: Value = ExecDone {
                exit: code,
                stdout: clip(&out.stdout),
                stderr: clip(&out.stderr),
            }
            .into();
            match code {
                Some(c) if c == step.expect_exit => (OpType::Ok, value, None),
                Some(c) => (
                    OpType::Fail,
                    value,
                    Some(format!("exit {c}, expected {}", step.expect_exit)),
                ),
                // Killed by a signal: whatever it did, we cannot tell how far it got.
                None => (
                    OpType::Info,
                    value,
                    Some(format!("ended by {}", out.status)),
                ),
            }
        }
    };
    history.append(entry(kind, value, status.clone()))?;
    events.send(Event::Op {
        process,
        f: Op::Exec.into(),
        node: client.to_string(),
        kind,
        status,
    });
    Ok(())
}

fn clip(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= OUTPUT_LIMIT {
        return text.into_owned();
    }
    let mut end = OUTPUT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}
