//! Entry points that feed untrusted bytes to every parser; used by the
//! never-panic tests and the cargo-fuzz targets. Each returns whether the
//! input parsed, so callers can count, and never panics.

use crate::response::{Received, Response};
use crate::wire::create::{CreateRequest, CreateResponse};
use crate::wire::create_contexts::parse_chain;
use crate::wire::error_response::ErrorResponse;
use crate::wire::info::{FileStandardInformation, QueryInfoResponse, SetInfoResponse};
use crate::wire::negotiate::{NegotiateRequest, NegotiateResponse};
use crate::wire::oplock_break::{BreakNotification, LeaseBreakResponse, OplockBreakResponse};
use crate::wire::read::ReadResponse;
use crate::wire::session_setup::{SessionSetupRequest, SessionSetupResponse};
use crate::wire::tree_connect::{TreeConnectRequest, TreeConnectResponse};
use crate::wire::write::{WriteRequest, WriteResponse};
use crate::wire::{Command, HeaderRepr, ResponseBody};

fn decode<T: ResponseBody>(data: &[u8], command: Command) -> bool {
    let Ok(header) = HeaderRepr::parse_bytes(data) else {
        return T::parse(data).is_ok();
    };
    let rx = Received {
        header,
        raw: data.to_vec(),
        encrypted: false,
        interim: Vec::new(),
    };
    Response::<T>::decode(rx, command).is_ok() | T::parse(data).is_ok()
}

pub fn header(data: &[u8]) -> bool {
    HeaderRepr::parse_bytes(data).is_ok()
}
pub fn negotiate(data: &[u8]) -> bool {
    NegotiateRequest::parse(data).is_ok() | decode::<NegotiateResponse>(data, Command::Negotiate)
}
pub fn session_setup(data: &[u8]) -> bool {
    SessionSetupRequest::parse(data).is_ok()
        | decode::<SessionSetupResponse>(data, Command::SessionSetup)
}
pub fn tree_connect(data: &[u8]) -> bool {
    TreeConnectRequest::parse(data).is_ok()
        | decode::<TreeConnectResponse>(data, Command::TreeConnect)
}
pub fn create(data: &[u8]) -> bool {
    CreateRequest::parse(data).is_ok() | decode::<CreateResponse>(data, Command::Create)
}
pub fn create_contexts(data: &[u8]) -> bool {
    parse_chain(data, 0, data.len(), true).is_ok() | parse_chain(data, 0, data.len(), false).is_ok()
}
pub fn read(data: &[u8]) -> bool {
    decode::<ReadResponse>(data, Command::Read)
}
pub fn write(data: &[u8]) -> bool {
    WriteRequest::parse(data).is_ok() | decode::<WriteResponse>(data, Command::Write)
}
pub fn info(data: &[u8]) -> bool {
    decode::<QueryInfoResponse>(data, Command::QueryInfo)
        | decode::<SetInfoResponse>(data, Command::SetInfo)
        | FileStandardInformation::parse(data).is_ok()
}
pub fn oplock_break(data: &[u8]) -> bool {
    BreakNotification::parse(data).is_ok()
        | decode::<OplockBreakResponse>(data, Command::OplockBreak)
        | decode::<LeaseBreakResponse>(data, Command::OplockBreak)
}
pub fn ioctl(data: &[u8]) -> bool {
    use crate::wire::ioctl::*;
    let resp = match IoctlResponse::parse(data) {
        Ok(r) => parse_network_interfaces(&r.output).is_ok(),
        Err(_) => false,
    };
    IoctlRequest::parse(data).is_ok()
        | decode::<IoctlResponse>(data, Command::Ioctl)
        | resp
        | parse_network_interfaces(data).is_ok()
}
pub fn error_response(data: &[u8]) -> bool {
    ErrorResponse::parse(data).is_ok()
}
pub fn small_bodies(data: &[u8]) -> bool {
    use crate::wire::*;
    decode::<close::CloseResponse>(data, Command::Close)
        | decode::<flush::FlushResponse>(data, Command::Flush)
        | decode::<lock::LockResponse>(data, Command::Lock)
        | lock::LockRequest::parse(data).is_ok()
        | decode::<echo::EchoResponse>(data, Command::Echo)
        | decode::<logoff::LogoffResponse>(data, Command::Logoff)
        | decode::<tree_disconnect::TreeDisconnectResponse>(data, Command::TreeDisconnect)
}
/// Transform header parsing and AEAD decryption with a fixed key.
pub fn transform(data: &[u8]) -> bool {
    use crate::crypto::encryption::{decrypt, Cipher};
    let th = crate::wire::transform::TransformHeader::parse(data).is_ok();
    let mut any = false;
    for c in [
        Cipher::Aes128Ccm,
        Cipher::Aes128Gcm,
        Cipher::Aes256Ccm,
        Cipher::Aes256Gcm,
    ] {
        any |= decrypt(c, &vec![0x42; c.key_len()], data).is_ok();
    }
    th | any
}
/// Signature verification on arbitrary bytes.
pub fn signing(data: &[u8]) -> bool {
    use crate::crypto::signing::{verify, SigningAlgorithm};
    let key = [0x11u8; 16];
    verify(SigningAlgorithm::HmacSha256, &key, data)
        | verify(SigningAlgorithm::AesCmac, &key, data)
        | verify(SigningAlgorithm::AesGmac, &key, data)
}
pub fn ntlm(data: &[u8]) -> bool {
    match crate::ntlm::ChallengeMessage::parse(data) {
        Ok(c) => {
            let _ = c.av_pair(7);
            let _ = crate::ntlm::authenticate_message(
                &crate::ntlm::Credentials::new("u", "p"),
                &c,
                [0; 8],
            );
            true
        }
        Err(_) => false,
    }
}
pub fn spnego(data: &[u8]) -> bool {
    crate::spnego::NegTokenResp::parse(data).is_ok()
        | crate::spnego::parse_neg_token_init(data).is_ok()
}

/// Every parser, one after another.
pub fn all(data: &[u8]) -> usize {
    let fs: [fn(&[u8]) -> bool; 18] = [
        header,
        negotiate,
        session_setup,
        tree_connect,
        create,
        create_contexts,
        read,
        write,
        info,
        ioctl,
        oplock_break,
        error_response,
        small_bodies,
        transform,
        signing,
        ntlm,
        spnego,
        |d| {
            crate::transport::parse_frame_header(
                d.get(..4).and_then(|s| s.try_into().ok()).unwrap_or([1; 4]),
            )
            .is_ok()
        },
    ];
    fs.iter().filter(|f| f(data)).count()
}
