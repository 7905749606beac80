//! What came back for one request: every header field, the parsed body
//! (or the SMB2 ERROR body), and the raw bytes.

use crate::error::Error;
use crate::wire::error_response::ErrorResponse;
use crate::wire::{Command, HeaderRepr, ResponseBody};
use crate::NtStatus;

/// A final response as the connection task received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub header: HeaderRepr,
    /// Plaintext SMB2 message (decrypted if it arrived encrypted).
    pub raw: Vec<u8>,
    pub encrypted: bool,
    /// Interim (STATUS_PENDING) headers received before it.
    pub interim: Vec<HeaderRepr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<T> {
    Parsed(T),
    Error(ErrorResponse),
}

#[derive(Debug, Clone)]
pub struct Response<T> {
    pub header: HeaderRepr,
    pub body: Body<T>,
    pub raw: Vec<u8>,
    pub encrypted: bool,
    pub interim: Vec<HeaderRepr>,
}

impl<T> Response<T> {
    pub fn status(&self) -> NtStatus {
        self.header.status
    }
    pub fn body(&self) -> Option<&T> {
        match &self.body {
            Body::Parsed(t) => Some(t),
            Body::Error(_) => None,
        }
    }
    /// The parsed body when the status is not an error, else [`Error::Status`].
    pub fn ok(self) -> Result<T, Error> {
        match self.body {
            Body::Parsed(t) if !self.header.status.is_error() => Ok(t),
            Body::Parsed(_) => Err(Error::Status {
                command: self.header.command,
                status: self.header.status,
                header: Box::new(self.header),
                error: None,
                raw: self.raw,
            }),
            Body::Error(e) => Err(Error::Status {
                command: self.header.command,
                status: self.header.status,
                header: Box::new(self.header),
                error: Some(e),
                raw: self.raw,
            }),
        }
    }
}

impl<T: ResponseBody> Response<T> {
    /// Decodes a received message as the answer to `command`.
    pub fn decode(rx: Received, command: Command) -> Result<Self, Error> {
        let malformed = |rx: Received, e| Error::Malformed {
            command,
            source: e,
            header: Some(Box::new(rx.header.clone())),
            raw: rx.raw,
        };
        if rx.header.command != command {
            return Err(malformed(
                rx,
                crate::wire::WireError::Malformed("response command differs from request"),
            ));
        }
        let status = rx.header.status;
        let body = if T::has_body(status) {
            match T::parse(&rx.raw) {
                Ok(t) => Body::Parsed(t),
                Err(e) => match ErrorResponse::parse(&rx.raw) {
                    Ok(er) if !status.is_success() => Body::Error(er),
                    _ => return Err(malformed(rx, e)),
                },
            }
        } else {
            match ErrorResponse::parse(&rx.raw) {
                Ok(er) => Body::Error(er),
                Err(e) => return Err(malformed(rx, e)),
            }
        };
        Ok(Response {
            header: rx.header,
            body,
            raw: rx.raw,
            encrypted: rx.encrypted,
            interim: rx.interim,
        })
    }
}
