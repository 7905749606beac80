//! Per-request options.

use std::time::Duration;

use crate::wire::HeaderFlags;

/// Per-request knobs. Everything here goes on the wire as given.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// Extra header flags, e.g. [`HeaderFlags::REPLAY_OPERATION`].
    pub flags: HeaderFlags,
    /// ChannelSequence (3.x), sent in the low 16 bits of the Status field.
    pub channel_sequence: u16,
    /// How long to wait for the final response; `None` waits forever.
    pub timeout: Option<Duration>,
    /// CreditRequest (raised to at least the request's CreditCharge).
    pub credit_request: u16,
    /// Overrides the computed CreditCharge.
    pub credit_charge: Option<u16>,
    /// Overrides whether to sign (default: the session's policy).
    pub sign: Option<bool>,
    /// Overrides whether to encrypt (default: session or share requires it).
    pub encrypt: Option<bool>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            flags: HeaderFlags::empty(),
            channel_sequence: 0,
            timeout: Some(Duration::from_secs(60)),
            credit_request: 64,
            credit_charge: None,
            sign: None,
            encrypt: None,
        }
    }
}

impl RequestOptions {
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    pub fn replay(mut self) -> Self {
        self.flags.insert(HeaderFlags::REPLAY_OPERATION);
        self
    }
    pub fn with_channel_sequence(mut self, cs: u16) -> Self {
        self.channel_sequence = cs;
        self
    }
}
