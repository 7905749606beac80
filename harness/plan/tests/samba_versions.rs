//! Per-release expectations (`expect.samba`): which override applies to a run, and what
//! validation refuses.

use smbchaos_plan::{ResumeExpectation, SambaVersion};

const PLAN: &str = r#"
version: 1
name: versions
topology:
  servers:
    - name: fs1
  clients:
    - name: c1
expect:
  resume: reclaim
  max_stall: 2s
  samba:
    "4.22":
      resume: fail
"#;

#[test]
fn an_override_replaces_only_its_keys_and_only_on_its_release() {
    let mut plan = smbchaos_plan::parse_str("versions.yaml", PLAN).expect("plan");
    assert_eq!(plan.samba_version(), Some(SambaVersion::V4_17));
    let on_4_17 = plan.expectations();
    assert_eq!(on_4_17.resume, Some(ResumeExpectation::Reclaim));
    assert!(
        on_4_17.samba.is_empty(),
        "resolved expectations carry no overrides"
    );
    plan.topology.servers[0].samba = SambaVersion::V4_22;
    let on_4_22 = plan.expectations();
    assert_eq!(on_4_22.resume, Some(ResumeExpectation::Fail));
    assert_eq!(
        on_4_22.max_stall, on_4_17.max_stall,
        "keys not overridden stay"
    );
}

#[test]
fn overrides_need_one_release_for_every_server() {
    let text = PLAN.replace(
        "    - name: fs1\n",
        "    - name: fs1\n    - name: fs2\n      samba: \"4.22\"\n",
    );
    let err = smbchaos_plan::parse_str("mixed.yaml", &text).expect_err("mixed releases");
    assert_eq!(
        err.to_string(),
        "mixed.yaml:16:7: `expect.samba` overrides apply when every server and cluster runs one Samba release, but here they differ (server fs1 4.17, server fs2 4.22)"
    );
}

#[test]
fn overrides_are_checked_like_expect() {
    for (bad, says) in [
        ("      resume: maybe\n", "unknown value `maybe`"),
        ("      no_such_key: 1\n", "unknown key `no_such_key`"),
        (
            "      granted: { lease: WR }\n",
            "invalid granted lease `WR`",
        ),
    ] {
        let text = PLAN.replace("      resume: fail\n", bad);
        let err = smbchaos_plan::parse_str("bad.yaml", &text).expect_err(bad);
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }
    let text = PLAN.replace("\"4.22\":", "\"4.99\":");
    let err = smbchaos_plan::parse_str("bad.yaml", &text).expect_err("unknown release");
    assert!(err.to_string().contains("4.99"), "{err}");
}
