//! connect → NEGOTIATE → SESSION_SETUP → TREE_CONNECT in one call: the one path every part of
//! the project takes to a share (the lab's readiness proof, the final reader, tests).
//! Which step failed is kept, because "nothing listens yet" and "the share refused us" mean
//! different things to a caller.

use std::fmt;
use std::time::Duration;

use crate::connection::{default_negotiate_request, Connection, Events, RequestOptions};
use crate::ntlm::Credentials;
use crate::session::Session;
use crate::session_setup::SessionSetupOptions;
use crate::tree::Tree;
use crate::wire::negotiate::Dialect;
use crate::wire::{Command, Guid};
use crate::Error;

/// What [`connect_tree`] needs.
#[derive(Clone)]
pub struct TreeConnectOptions {
    pub dialects: Vec<Dialect>,
    pub client_guid: Guid,
    pub credentials: Credentials,
    /// `\\server\share`.
    pub unc: String,
    /// Each step's deadline.
    pub timeout: Duration,
}

impl TreeConnectOptions {
    /// Every dialect, a random ClientGuid, 10 s per step.
    pub fn new(credentials: Credentials, unc: impl Into<String>) -> Self {
        TreeConnectOptions {
            dialects: Dialect::ALL.to_vec(),
            client_guid: Guid::random(),
            credentials,
            unc: unc.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A connection with a session and one tree connected.
pub struct Connected {
    pub connection: Connection,
    pub events: Events,
    pub session: Session,
    pub tree: Tree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Negotiate,
    SessionSetup,
    TreeConnect,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Negotiate => "NEGOTIATE",
            Step::SessionSetup => "SESSION_SETUP",
            Step::TreeConnect => "TREE_CONNECT",
        })
    }
}

/// The step that failed and why.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {error}")]
pub struct ConnectError {
    pub step: Step,
    pub error: Error,
}

/// Run the three exchanges on `stream`; each has `opts.timeout`.
pub async fn connect_tree(
    stream: tokio::net::TcpStream,
    opts: &TreeConnectOptions,
) -> Result<Connected, ConnectError> {
    let (connection, events) = Connection::new(stream);
    let request = RequestOptions {
        timeout: Some(opts.timeout),
        ..Default::default()
    };
    let fail = |step| move |error| ConnectError { step, error };
    connection
        .negotiate(
            &default_negotiate_request(&opts.dialects, opts.client_guid, false),
            &request,
        )
        .await
        .and_then(|r| r.ok().map(|_| ()))
        .map_err(fail(Step::Negotiate))?;
    let mut setup = SessionSetupOptions::new(opts.credentials.clone());
    setup.request = request.clone();
    let session = within(
        opts.timeout,
        Command::SessionSetup,
        connection.session_setup(&setup),
    )
    .await
    .map_err(fail(Step::SessionSetup))?;
    let tree = session
        .tree_connect_with(
            &crate::wire::tree_connect::TreeConnectRequest {
                flags: 0,
                path: opts.unc.clone(),
            },
            &request,
        )
        .await
        .map_err(fail(Step::TreeConnect))?;
    Ok(Connected {
        connection,
        events,
        session,
        tree,
    })
}

/// SESSION_SETUP is several round trips; one deadline covers them all.
async fn within<T>(
    after: Duration,
    command: Command,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(after, fut)
        .await
        .unwrap_or(Err(Error::Timeout {
            command,
            message_id: 0,
            after,
        }))
}
