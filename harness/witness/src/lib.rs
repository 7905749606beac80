//! A witness client (MS-SWN) over DCE/RPC on TCP, written by hand: connection-oriented
//! DCE/RPC PDUs ([`pdu`]), NDR 2.0 ([`ndr`]), the endpoint mapper ([`epm`]), the witness
//! interface's stubs and notifications ([`swn`]), an association with NTLMSSP packet
//! privacy ([`rpc`]) and the calls a witness client makes ([`client`]).
//!
//! The codec modules (`ndr`, `pdu`, `epm`, `swn`) take untrusted bytes and return typed
//! errors, never panicking; only `rpc` and `client` do I/O (tokio).

pub mod client;
pub mod epm;
pub mod ndr;
pub mod pdu;
pub mod rpc;
pub mod swn;

pub use client::WitnessClient;
pub use ndr::{ContextHandle, Uuid};
pub use swn::{InterfaceInfo, IpAddrInfo, Notification, NotifyResponse, RegisterEx};

/// What went wrong talking to a witness server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pdu(#[from] pdu::PduError),
    #[error(transparent)]
    Ndr(#[from] ndr::NdrError),
    #[error("NTLMSSP: {0}")]
    Seal(#[from] smb2::ntlm_seal::SealError),
    #[error("NTLMSSP CHALLENGE: {0}")]
    Ntlm(smb2::wire::WireError),
    #[error("bind refused: {0}")]
    BindRefused(String),
    #[error("call opnum {opnum} faulted: status {status:#010x} ({name})")]
    Fault {
        opnum: u16,
        status: u32,
        name: &'static str,
    },
    #[error("{call} failed: {code:#x} ({name})")]
    Werror {
        call: &'static str,
        code: u32,
        name: &'static str,
    },
    #[error("unexpected: {0}")]
    Unexpected(String),
    #[error("association closed: {0}")]
    Closed(String),
    #[error("the endpoint mapper at {at} has no TCP endpoint for the witness interface (status {status:#x})")]
    NotRegistered {
        at: std::net::SocketAddr,
        status: u32,
    },
}

impl Error {
    /// The Win32 error a call returned, if that is what this is.
    pub fn werror(&self) -> Option<u32> {
        match self {
            Error::Werror { code, .. } => Some(*code),
            _ => None,
        }
    }
}
