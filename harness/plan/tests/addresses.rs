//! Automatic address assignment.

use std::net::Ipv4Addr;

fn plan(topology: &str) -> smbchaos_plan::Plan {
    let text = format!("version: 1\nname: a\ntopology:\n{topology}");
    smbchaos_plan::parse_str("a.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn servers_then_clients_from_10() {
    let p = plan("  servers: [{name: s1}, {name: s2}]\n  clients: [{name: c1}]\n");
    let a = smbchaos_plan::addresses(&p);
    assert_eq!(a.len(), 3);
    assert_eq!(a["s1"], ip("198.18.0.10"));
    assert_eq!(a["s2"], ip("198.18.0.11"));
    assert_eq!(a["c1"], ip("198.18.0.12"));
}

#[test]
fn explicit_addresses_are_kept_and_skipped() {
    let p = plan(
        "  servers: [{name: s1}, {name: s2, address: 198.18.0.10}]\n  \
         clients: [{name: c1, address: 198.18.0.11}, {name: c2}, {name: c3, address: 198.19.0.1}]\n",
    );
    let a = smbchaos_plan::addresses(&p);
    assert_eq!(a["s1"], ip("198.18.0.12"));
    assert_eq!(a["s2"], ip("198.18.0.10"));
    assert_eq!(a["c1"], ip("198.18.0.11"));
    assert_eq!(a["c2"], ip("198.18.0.13"));
    assert_eq!(a["c3"], ip("198.19.0.1"));
}

#[test]
fn assignment_crosses_octets() {
    let servers: Vec<String> = (0..300).map(|i| format!("{{name: s{i}}}")).collect();
    let p = plan(&format!("  servers: [{}]\n", servers.join(", ")));
    let a = smbchaos_plan::addresses(&p);
    assert_eq!(a["s0"], ip("198.18.0.10"));
    assert_eq!(a["s245"], ip("198.18.0.255"));
    assert_eq!(a["s246"], ip("198.18.1.0"));
    assert_eq!(a["s299"], ip("198.18.1.53"));
}

#[test]
fn invalid_plans_do_not_panic() {
    // Built without validation: duplicate names and addresses, out-of-range addresses.
    let mut p = plan("  servers: [{name: s1, address: 198.18.0.10}, {name: s2}]\n");
    p.topology.servers[1].name = p.topology.servers[0].name.clone();
    p.topology.servers[1].address = Some(smbchaos_plan::Spanned::new(ip("10.0.0.1")));
    let a = smbchaos_plan::addresses(&p);
    assert_eq!(a.len(), 1);
    assert_eq!(a["s1"], ip("198.18.0.10"));
    let err = smbchaos_plan::validate("built", &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        // The cloned name keeps its location; the address built in code has none.
        "built:4:20: duplicate node name `s1` (first defined at line 4, column 20)\n\
         built: address 10.0.0.1 is outside the lab network 198.18.0.0/15"
    );
}
