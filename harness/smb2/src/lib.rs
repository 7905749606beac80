//! SMB2/3 wire client for the smbchaos harness.
//!
//! It sends exactly what the caller asks and reports exactly what came
//! back: every header field, the NTSTATUS, the parsed body and the raw
//! bytes. It never retries, reconnects or replays on its own; a dropped
//! connection fails each request in flight with [`Error::OutcomeUnknown`].
//!
//! ```no_run
//! # async fn f() -> smb2::Result<()> {
//! use smb2::*;
//! let stream = tokio::net::TcpStream::connect("198.18.0.10:445").await?;
//! let (conn, mut events) = Connection::new(stream);
//! let client_guid = Guid::random();
//! conn.negotiate(&default_negotiate_request(&Dialect::ALL, client_guid, false),
//!                &RequestOptions::default()).await?.ok()?;
//! let session = conn
//!     .session_setup(&SessionSetupOptions::new(Credentials::new("smbchaos", "pw")))
//!     .await?;
//! let tree = session.tree_connect(r"\\198.18.0.10\share").await?;
//! let create_guid = Guid::random();
//! let open = tree
//!     .create(&CreateRequest::new("f.dat")
//!         .context(CreateContext::DurableHandleRequestV2 { timeout: 0, flags: 0, create_guid }))
//!     .await?
//!     .ok()?;
//! tree.write(open.file_id, 0, b"data".to_vec(), true).await?.ok()?;
//! # Ok(()) }
//! ```

pub mod channel;
pub mod connect;
pub mod connection;
pub mod crypto;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod multichannel;
pub mod negotiate;
pub mod ntlm;
pub mod ntlm_seal;
pub mod options;
pub mod response;
pub mod session;
pub mod session_setup;
pub mod spnego;
pub mod status;
pub mod transport;
pub mod tree;
pub mod wire;

pub use connect::{connect_tree, ConnectError, Connected, Step, TreeConnectOptions};
pub use connection::{
    default_negotiate_request, Connection, Event, Events, Negotiated, PendingRaw, RequestOptions,
};
pub use error::{Error, Result};
pub use multichannel::{
    multichannel_negotiate_request, query_network_interfaces, ChannelConstraint, ChannelSetup,
    MultiChannel, Network, Spread,
};
pub use ntlm::Credentials;
pub use response::{Body, Response};
pub use session::{Pending, Session};
pub use session_setup::SessionSetupOptions;
pub use status::NtStatus;
pub use tree::Tree;
pub use wire::create::CreateRequest;
pub use wire::create_contexts::{CreateContext, Lease, LeaseV2};
pub use wire::ioctl::InterfaceRepr;
pub use wire::negotiate::Dialect;
pub use wire::{Command, FileId, Guid, HeaderFlags, HeaderRepr};
