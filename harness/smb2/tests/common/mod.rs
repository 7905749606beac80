//! Shared set-up for the integration tests against a real Samba in a lab.
#![allow(dead_code)]

use std::net::SocketAddr;

use lab::{Lab, LabOptions};
use smb2::*;

pub const PLAN: &str = r#"
version: 1
name: smb2-client
topology:
  servers:
    - name: fs1
      shares:
        - name: share
        - name: secret
          options:
            smb encrypt: required
  clients:
    - name: c1
    - name: c2
"#;

pub async fn lab_up(test: &str) -> Lab {
    let plan = plan::parse_str("smb2-client.yaml", PLAN).expect("plan");
    Lab::up(&plan, LabOptions::for_test(test))
        .await
        .expect("lab up")
}

pub fn server(lab: &Lab) -> SocketAddr {
    (lab.address("fs1"), 445).into()
}

pub fn unc(lab: &Lab, share: &str) -> String {
    format!(r"\\{}\{}", lab.address("fs1"), share)
}

pub fn creds(lab: &Lab) -> Credentials {
    let (u, p) = lab.credentials();
    Credentials::new(u, p)
}

pub async fn connect(lab: &Lab, node: &str) -> (Connection, Events) {
    let s = lab.connect(node, server(lab)).await.expect("connect");
    Connection::new(s)
}

/// connect → negotiate → session setup → tree connect.
pub async fn open_tree(
    lab: &Lab,
    node: &str,
    dialects: &[Dialect],
    client_guid: Guid,
    share: &str,
) -> (Connection, Events, Session, Tree) {
    let (conn, events) = connect(lab, node).await;
    conn.negotiate(
        &default_negotiate_request(dialects, client_guid, false),
        &RequestOptions::default(),
    )
    .await
    .expect("negotiate")
    .ok()
    .expect("negotiate status");
    let session = conn
        .session_setup(&SessionSetupOptions::new(creds(lab)))
        .await
        .expect("session setup");
    let tree = session
        .tree_connect(&unc(lab, share))
        .await
        .expect("tree connect");
    (conn, events, session, tree)
}

pub fn lease_key() -> [u8; 16] {
    rand::random()
}

pub fn unique(name: &str) -> String {
    format!("{name}-{:08x}.dat", rand::random::<u32>())
}
