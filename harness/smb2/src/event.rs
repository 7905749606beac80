//! What the server sends that answers no request: breaks, late answers,
//! garbage, and the end of the connection.

use tokio::sync::mpsc;

use crate::wire::oplock_break::BreakNotification;
use crate::wire::{HeaderRepr, WireError};

/// Something the server sent that answers no request of ours.
#[derive(Debug, Clone)]
pub enum Event {
    /// An oplock or lease break notification (MessageId 0xFFFFFFFFFFFFFFFF).
    Break {
        header: HeaderRepr,
        notification: std::result::Result<BreakNotification, WireError>,
        raw: Vec<u8>,
        encrypted: bool,
    },
    /// A response whose request is no longer waited for (e.g. it timed out).
    Unmatched { header: HeaderRepr, raw: Vec<u8> },
    /// Bytes that could not be decoded or decrypted.
    Garbage { raw: Vec<u8>, reason: String },
    /// The connection ended; no events follow.
    Disconnected { reason: String },
}

pub type Events = mpsc::UnboundedReceiver<Event>;
