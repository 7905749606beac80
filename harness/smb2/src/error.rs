//! The client's error type. Server statuses, transport failures, timeouts
//! and unknown outcomes are distinct variants, because the harness judges
//! each differently.

use std::time::Duration;

use crate::crypto::encryption::CryptoError;
use crate::wire::error_response::ErrorResponse;
use crate::wire::{Command, HeaderRepr, WireError};
use crate::NtStatus;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request was written (perhaps partly) and the connection died
    /// before its final response arrived: the server may or may not have
    /// acted on it.
    #[error("outcome unknown: {command:?} MessageId {message_id} in flight when the connection ended ({reason})")]
    OutcomeUnknown {
        command: Command,
        message_id: u64,
        reason: String,
    },
    /// The connection had already ended; nothing was sent.
    #[error("not sent: connection closed ({0})")]
    Disconnected(String),
    /// No final response within the request's timeout. The connection is
    /// still up; a late response is reported as an [`crate::Event::Unmatched`].
    #[error("timed out after {after:?} waiting for {command:?} MessageId {message_id}")]
    Timeout {
        command: Command,
        message_id: u64,
        after: Duration,
    },
    /// The server did not grant enough credits within the timeout; nothing was sent.
    #[error("no credits for {command:?} (need {needed}) within {after:?}")]
    NoCredits {
        command: Command,
        needed: u16,
        after: Duration,
    },
    /// Another request held the send path (e.g. a peer that stopped
    /// reading) past this request's timeout; nothing was sent.
    #[error("not sent: send path busy for {after:?} ({command:?})")]
    SendBlocked { command: Command, after: Duration },
    /// The server answered with a status the operation treats as failure.
    #[error("{command:?} failed: {status}")]
    Status {
        command: Command,
        status: NtStatus,
        header: Box<HeaderRepr>,
        error: Option<ErrorResponse>,
        raw: Vec<u8>,
    },
    /// The server's bytes could not be understood.
    #[error("malformed {command:?} response: {source}")]
    Malformed {
        command: Command,
        source: WireError,
        header: Option<Box<HeaderRepr>>,
        raw: Vec<u8>,
    },
    /// A response's signature did not verify.
    #[error("bad signature on {command:?} response MessageId {message_id}")]
    BadSignature {
        command: Command,
        message_id: u64,
        raw: Vec<u8>,
    },
    /// A response came back neither signed nor encrypted on a session that
    /// signs or encrypts.
    #[error("unprotected {command:?} response MessageId {message_id} on a protected session")]
    Unprotected {
        command: Command,
        message_id: u64,
        raw: Vec<u8>,
    },
    /// The exchange broke protocol rules (e.g. an unexpected auth token).
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The request could not be signed (no key of the signing algorithm's size, or a
    /// message too short to carry a header); nothing was sent.
    #[error("not sent: {command:?} could not be signed with {algorithm}")]
    SigningFailed { command: Command, algorithm: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The server's status, if this error carries one.
    pub fn status(&self) -> Option<NtStatus> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }
    /// The request certainly never reached the server: Disconnected,
    /// NoCredits, SendBlocked (and local crypto failures before sending).
    pub fn not_sent(&self) -> bool {
        matches!(
            self,
            Error::Disconnected(_)
                | Error::NoCredits { .. }
                | Error::SendBlocked { .. }
                | Error::SigningFailed { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;
