//! NTLMv2 (MS-NLMP): NEGOTIATE, CHALLENGE and AUTHENTICATE messages and the
//! NTLMv2 response computation. Only what an SMB client needs: no KEY_EXCH
//! (so the exported session key is the NTLMv2 SessionBaseKey), no MIC.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

use crate::wire::{utf16le, PutLe, Reader, WireError};

pub const NTLMSSP_SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

pub mod flags {
    pub const NTLMSSP_NEGOTIATE_UNICODE: u32 = 0x0000_0001;
    pub const NTLMSSP_REQUEST_TARGET: u32 = 0x0000_0004;
    pub const NTLMSSP_NEGOTIATE_SIGN: u32 = 0x0000_0010;
    pub const NTLMSSP_NEGOTIATE_SEAL: u32 = 0x0000_0020;
    pub const NTLMSSP_NEGOTIATE_NTLM: u32 = 0x0000_0200;
    pub const NTLMSSP_NEGOTIATE_ANONYMOUS: u32 = 0x0000_0800;
    pub const NTLMSSP_NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const NTLMSSP_NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
    pub const NTLMSSP_NEGOTIATE_VERSION: u32 = 0x0200_0000;
    pub const NTLMSSP_NEGOTIATE_128: u32 = 0x2000_0000;
    pub const NTLMSSP_NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
    pub const NTLMSSP_NEGOTIATE_56: u32 = 0x8000_0000;
}
use flags::*;

/// AV_PAIR ids used here.
pub const MSV_AV_EOL: u16 = 0;
pub const MSV_AV_TIMESTAMP: u16 = 7;

/// The flags this client asks for.
pub const CLIENT_FLAGS: u32 = NTLMSSP_NEGOTIATE_UNICODE
    | NTLMSSP_REQUEST_TARGET
    | NTLMSSP_NEGOTIATE_SIGN
    | NTLMSSP_NEGOTIATE_NTLM
    | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NTLMSSP_NEGOTIATE_TARGET_INFO
    | NTLMSSP_NEGOTIATE_128
    | NTLMSSP_NEGOTIATE_56;

/// A user's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub domain: String,
    pub password: String,
    pub workstation: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            domain: String::new(),
            password: password.into(),
            workstation: "SMBCHAOS".into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// NEGOTIATE_MESSAGE without domain/workstation or version.
pub fn negotiate_message(flags: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(NTLMSSP_SIGNATURE);
    b.put_u32(1);
    b.put_u32(flags);
    b.extend_from_slice(&[0; 16]); // DomainNameFields, WorkstationFields
    b
}

/// CHALLENGE_MESSAGE fields the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeMessage {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_name: Vec<u8>,
    pub target_info: Vec<u8>,
}

fn fields<'a>(
    msg: &'a [u8],
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<&'a [u8], WireError> {
    let len = r.u16(what)? as usize;
    r.skip(2, what)?;
    let off = r.u32(what)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    crate::wire::slice_at(msg, off, len, what)
}

impl ChallengeMessage {
    pub fn parse(msg: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(msg);
        if r.bytes(8, "NTLMSSP signature")? != NTLMSSP_SIGNATURE {
            return Err(WireError::Malformed("not NTLMSSP"));
        }
        if r.u32("MessageType")? != 2 {
            return Err(WireError::Malformed("not a CHALLENGE_MESSAGE"));
        }
        let target_name = fields(msg, &mut r, "TargetNameFields")?.to_vec();
        let flags = r.u32("NegotiateFlags")?;
        let server_challenge = r.array("ServerChallenge")?;
        r.skip(8, "Reserved")?;
        let target_info = fields(msg, &mut r, "TargetInfoFields")?.to_vec();
        Ok(ChallengeMessage {
            flags,
            server_challenge,
            target_name,
            target_info,
        })
    }

    /// The value of one AV_PAIR in TargetInfo.
    pub fn av_pair(&self, id: u16) -> Option<&[u8]> {
        let mut r = Reader::new(&self.target_info);
        loop {
            let av_id = r.u16("AvId").ok()?;
            let len = r.u16("AvLen").ok()? as usize;
            let v = r.bytes(len, "AvValue").ok()?;
            if av_id == id {
                return Some(v);
            }
            if av_id == MSV_AV_EOL {
                return None;
            }
        }
    }
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key size");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// NT hash: MD4(UNICODE(password)).
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

/// NTOWFv2 = HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(ConcatenationOf(Uppercase(User), UserDom))).
pub fn ntowf_v2(user: &str, domain: &str, password: &str) -> [u8; 16] {
    let who = utf16le(&format!("{}{}", user.to_uppercase(), domain));
    hmac_md5(&nt_hash(password), &[&who])
}

/// Result of the NTLMv2 computation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ntlmv2Response {
    pub nt_challenge_response: Vec<u8>,
    pub lm_challenge_response: Vec<u8>,
    pub session_base_key: [u8; 16],
}

/// MS-NLMP 3.3.2 ComputeResponse for NTLMv2.
pub fn compute_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    timestamp: u64,
    target_info: &[u8],
    zero_lm: bool,
) -> Ntlmv2Response {
    let mut temp = Vec::with_capacity(28 + target_info.len() + 4);
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.put_u64(timestamp);
    temp.extend_from_slice(client_challenge);
    temp.put_u32(0);
    temp.extend_from_slice(target_info);
    temp.put_u32(0);
    let nt_proof = hmac_md5(response_key, &[server_challenge, &temp]);
    let mut nt = nt_proof.to_vec();
    nt.extend_from_slice(&temp);
    let lm = if zero_lm {
        vec![0u8; 24]
    } else {
        let mut lm = hmac_md5(response_key, &[server_challenge, client_challenge]).to_vec();
        lm.extend_from_slice(client_challenge);
        lm
    };
    Ntlmv2Response {
        nt_challenge_response: nt,
        lm_challenge_response: lm,
        session_base_key: hmac_md5(response_key, &[&nt_proof]),
    }
}

/// Windows FILETIME now.
pub fn filetime_now() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}

/// Builds an AUTHENTICATE_MESSAGE; returns it with the exported session key.
pub fn authenticate_message(
    creds: &Credentials,
    challenge: &ChallengeMessage,
    client_challenge: [u8; 8],
) -> (Vec<u8>, [u8; 16]) {
    let auth = authenticate_message_with(creds, challenge, client_challenge, CLIENT_FLAGS, None);
    (auth.message, auth.exported_session_key)
}

/// What [`authenticate_message_with`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub message: Vec<u8>,
    /// The key signing and sealing derive from (MS-NLMP 3.1.5.1.2 ExportedSessionKey).
    pub exported_session_key: [u8; 16],
    /// The flags both sides agreed on (the AUTHENTICATE_MESSAGE's NegotiateFlags).
    pub flags: u32,
}

/// Builds an AUTHENTICATE_MESSAGE asking for `wanted` flags (those the server offered).
/// With `random_session_key` and KEY_EXCH agreed, that key becomes the exported session
/// key and travels RC4-encrypted under the SessionBaseKey, as Windows clients do when
/// they sign or seal (DCE/RPC packet privacy).
pub fn authenticate_message_with(
    creds: &Credentials,
    challenge: &ChallengeMessage,
    client_challenge: [u8; 8],
    wanted: u32,
    random_session_key: Option<[u8; 16]>,
) -> Authenticate {
    let server_ts = challenge
        .av_pair(MSV_AV_TIMESTAMP)
        .and_then(|v| v.try_into().ok())
        .map(u64::from_le_bytes);
    let key = ntowf_v2(&creds.user, &creds.domain, &creds.password);
    let resp = compute_response(
        &key,
        &challenge.server_challenge,
        &client_challenge,
        server_ts.unwrap_or_else(filetime_now),
        &challenge.target_info,
        server_ts.is_some(),
    );
    let mut flags = challenge.flags & wanted;
    if random_session_key.is_none() {
        flags &= !NTLMSSP_NEGOTIATE_KEY_EXCH;
    }
    let (exported_session_key, encrypted_key) = match random_session_key {
        Some(key) if flags & NTLMSSP_NEGOTIATE_KEY_EXCH != 0 => {
            let mut enc = key;
            crate::ntlm_seal::rc4(&resp.session_base_key, &mut enc);
            (key, enc.to_vec())
        }
        _ => (resp.session_base_key, Vec::new()),
    };
    let domain = utf16le(&creds.domain);
    let user = utf16le(&creds.user);
    let ws = utf16le(&creds.workstation);
    // Payload order follows the fields' order; EncryptedRandomSessionKey is empty
    // without KEY_EXCH.
    let payloads: [&[u8]; 6] = [
        &resp.lm_challenge_response,
        &resp.nt_challenge_response,
        &domain,
        &user,
        &ws,
        &encrypted_key,
    ];
    let mut b = Vec::new();
    b.extend_from_slice(NTLMSSP_SIGNATURE);
    b.put_u32(3);
    let mut off = 64u32;
    for p in payloads {
        b.put_u16(p.len() as u16);
        b.put_u16(p.len() as u16);
        b.put_u32(off);
        off += p.len() as u32;
    }
    b.put_u32(flags);
    for p in payloads {
        b.extend_from_slice(p);
    }
    Authenticate {
        message: b,
        exported_session_key,
        flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::unhex;

    fn target_info() -> Vec<u8> {
        unhex("02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000")
    }

    /// MS-NLMP 4.2.4 NTLMv2 authentication test vectors.
    #[test]
    fn ms_nlmp_4_2_4_vectors() {
        assert_eq!(
            nt_hash("Password").to_vec(),
            unhex("a4f49c406510bdcab6824ee7c30fd852")
        );
        let key = ntowf_v2("User", "Domain", "Password");
        assert_eq!(key.to_vec(), unhex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let r = compute_response(
            &key,
            &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
            &[0xaa; 8],
            0,
            &target_info(),
            false,
        );
        assert_eq!(
            r.lm_challenge_response,
            unhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            r.nt_challenge_response,
            unhex(
                "68cd0ab851e51c96aabc927bebef6a1c
                 01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000
                 02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000
                 00000000"
            )
        );
        assert_eq!(
            r.session_base_key.to_vec(),
            unhex("8de40ccadbc14a82f15cb0ad0de95ca3")
        );
    }

    #[test]
    fn challenge_parse_and_authenticate_layout() {
        let ti = target_info();
        let mut m = Vec::new();
        m.extend_from_slice(NTLMSSP_SIGNATURE);
        m.put_u32(2);
        m.put_u16(0);
        m.put_u16(0);
        m.put_u32(56);
        m.put_u32(CLIENT_FLAGS);
        m.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        m.put_u64(0);
        m.put_u16(ti.len() as u16);
        m.put_u16(ti.len() as u16);
        m.put_u32(56);
        m.put_u64(0);
        m.extend_from_slice(&ti);
        let c = ChallengeMessage::parse(&m).unwrap();
        assert_eq!(c.server_challenge, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(c.av_pair(2), Some(&utf16le("Domain")[..]));
        assert_eq!(c.av_pair(MSV_AV_TIMESTAMP), None);
        let creds = Credentials::new("User", "Password");
        let (auth, key) = authenticate_message(&creds, &c, [0xaa; 8]);
        assert_eq!(&auth[..8], NTLMSSP_SIGNATURE);
        assert_eq!(key.len(), 16);
        // Truncations never panic.
        for n in 0..m.len() {
            let _ = ChallengeMessage::parse(&m[..n]);
        }
    }
}
