//! Cross-check: smbtorture runs the peers of our durable/lease tests
//! against the same lab server; both must agree the server behaves.

mod common;
use common::*;

#[tokio::test]
async fn smbtorture_agrees_on_durable_v2_and_leases() {
    let lab = lab_up("smb2-smbtorture").await;
    let (user, password) = lab.credentials();
    let mut cmd = lab.command("c1", "smbtorture").unwrap();
    cmd.arg(format!("//{}/share", lab.address("fs1")))
        .arg(format!("-U{user}%{password}"))
        .args([
            "smb2.durable-v2-open.reopen1",
            "smb2.durable-v2-open.reopen2",
            "smb2.lease.request",
        ]);
    // These three take about a second; 2 minutes covers a loaded machine and still ends a
    // torture run that hangs (e.g. on a share it cannot connect) with its own output.
    let (ok, ended, stdout, stderr) =
        run_within(cmd, "smbtorture", std::time::Duration::from_secs(120)).await;
    assert!(ok, "{ended}:\n{stdout}\n{stderr}");
    for t in ["reopen1", "reopen2", "request"] {
        assert!(
            stdout.lines().any(|l| l.trim() == format!("success: {t}")),
            "no success line for {t}:\n{stdout}"
        );
    }
    assert!(!stdout.contains("failure:"), "{stdout}");
    lab.down().await.unwrap();
}
