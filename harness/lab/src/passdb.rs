//! The lab user's Samba account, written straight into a `tdbsam` passdb file: what
//! `smbpasswd -a` writes, without running it. `smbpasswd` is a ~40 ms CPU exec of Samba's
//! whole library stack (300+ ms wall on a loaded 2-core machine) that `lab up` had to wait
//! for before the first session setup; writing the file takes microseconds, before smbd starts.
//!
//! Two formats, both stable for over a decade:
//! - TDB (Samba's `lib/tdb`): a 168-byte header, a hash table of `hash_size + 1` offsets
//!   (the free list head first), then records (a 24-byte header, key, data, padding and a
//!   tailer holding the record's total length). Keys hash with tdb's original hash, which
//!   the header announces through the hashes of two magic values.
//! - tdbsam version 4 (`source3/passdb/pdb_tdb.c`): `USER_<name>` holds a packed `samu`
//!   (format `dddddddBBBBBBBBBBBBddBBBdwdBwwd`: `d` u32, `w` u16, `B` u32 length + bytes),
//!   `RID_<rid>` maps the RID back to the name, `NEXT_RID`, `INFO/version` and
//!   `INFO/minor_version` say what the file holds.
//!
//! The unit tests compare both against files `smbpasswd` 4.17 wrote, and against Samba's own
//! readers (`tdbtool check`, `pdbedit`) where installed; the lab tests log in with it.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::LabError;

const MAGIC_FOOD: &[u8] = b"TDB file\n\0";
const VERSION: u32 = 0x2601_1967 + 6;
const RECORD_MAGIC: u32 = 0x2601_1999;
const HASH_SIZE: u32 = 131;
const HEADER_LEN: usize = 168;
const RECORD_HEADER_LEN: u32 = 24;
/// What `smbpasswd` stores for "never" (logoff, kickoff, must change): 2036-02-06.
const TIME_NEVER: u32 = 2_085_923_199;
/// The first RID tdbsam hands out, and the group RID of every user (Domain Users).
const USER_RID: u32 = 1000;
const GROUP_RID: u32 = 513;
/// ACB_NORMAL: a normal user account, enabled.
const ACB_NORMAL: u32 = 0x10;
const LOGON_DIVS: u16 = 168;
const HOURS_LEN: u32 = 21;
const MAX_HOURS_LEN: usize = 32;
/// `unknown_6` as smbpasswd writes it.
const UNKNOWN_6: u32 = 0x4ec;

/// Write a tdbsam passdb at `path` holding one enabled user `user` with `password`, on the
/// standalone server whose NetBIOS name is `netbios` (tdbsam's domain field). `now` is the
/// password's last-set time (Unix seconds).
pub fn write(
    path: &Path,
    netbios: &str,
    user: &str,
    password: &str,
    now: u32,
) -> Result<(), LabError> {
    let bytes = tdb(&records(netbios, user, password, now));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| LabError::io(format!("create {}", path.display()), e))?;
    file.write_all(&bytes)
        .map_err(|e| LabError::io(format!("write {}", path.display()), e))
}

/// The key/value pairs of a tdbsam passdb with one user, keys and strings NUL-terminated.
fn records(netbios: &str, user: &str, password: &str, now: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let user = user.to_lowercase();
    vec![
        (cstr(&format!("RID_{USER_RID:08x}")), cstr(&user)),
        (cstr("INFO/minor_version"), 0u32.to_le_bytes().to_vec()),
        (cstr("NEXT_RID"), (USER_RID + 1).to_le_bytes().to_vec()),
        (
            cstr(&format!("USER_{user}")),
            samu(netbios, &user, &smb2::ntlm::nt_hash(password), now),
        ),
        (cstr("INFO/version"), 4u32.to_le_bytes().to_vec()),
    ]
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A `samu` packed as tdbsam version 4 (`init_buffer_from_samu`): unset strings have length
/// 0, empty ones length 1 (the NUL).
fn samu(netbios: &str, user: &str, nt_hash: &[u8; 16], now: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(192);
    let d = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
    let w = |b: &mut Vec<u8>, v: u16| b.extend_from_slice(&v.to_le_bytes());
    let bytes = |b: &mut Vec<u8>, v: &[u8]| {
        b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        b.extend_from_slice(v);
    };
    // logon, logoff, kickoff, bad password, password last set, can change, must change.
    for t in [0, TIME_NEVER, TIME_NEVER, 0, now, 0, TIME_NEVER] {
        d(&mut b, t);
    }
    let domain: String = netbios.to_uppercase().chars().take(15).collect();
    bytes(&mut b, &cstr(user)); // username
    bytes(&mut b, &cstr(&domain)); // domain
    bytes(&mut b, b"\0"); // nt_username
    bytes(&mut b, b"\0"); // fullname
    for _ in 0..4 {
        bytes(&mut b, b""); // homedir, dir_drive, logon_script, profile_path: unset
    }
    for _ in 0..4 {
        bytes(&mut b, b"\0"); // acct_desc, workstations, comment, munged_dial
    }
    d(&mut b, USER_RID);
    d(&mut b, GROUP_RID);
    bytes(&mut b, b""); // LM hash: none (lanman auth = no)
    bytes(&mut b, nt_hash);
    bytes(&mut b, b""); // password history
    d(&mut b, ACB_NORMAL);
    w(&mut b, LOGON_DIVS);
    d(&mut b, HOURS_LEN);
    let mut hours = [0u8; MAX_HOURS_LEN];
    hours[..HOURS_LEN as usize].fill(0xff);
    bytes(&mut b, &hours);
    w(&mut b, 0); // bad password count
    w(&mut b, 0); // logon count
    d(&mut b, UNKNOWN_6);
    b
}

/// tdb's original hash function (`tdb_old_hash`), the one a file announces with these
/// magic hashes and which tdb keeps using for it.
fn hash(key: &[u8]) -> u32 {
    let mut value = 0x238F_13AFu32.wrapping_mul(key.len() as u32);
    for (i, &c) in key.iter().enumerate() {
        value = value.wrapping_add(u32::from(c) << ((i as u32 * 5) % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345)
}

/// A TDB file holding `records`, no free space and no recovery area (tdb adds both when it
/// first needs them).
fn tdb(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let table_len = (HASH_SIZE as usize + 1) * 4;
    let mut out = vec![0u8; HEADER_LEN + table_len];
    out[..MAGIC_FOOD.len()].copy_from_slice(MAGIC_FOOD);
    let put = |out: &mut [u8], at: usize, v: u32| out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put(&mut out, 32, VERSION);
    put(&mut out, 36, HASH_SIZE);
    // 40 rwlocks (obsolete), 44 recovery_start, 48 sequence_number: 0.
    put(&mut out, 52, hash(MAGIC_FOOD));
    put(&mut out, 56, hash(&RECORD_MAGIC.to_le_bytes()));
    for (key, data) in records {
        let full = hash(key);
        let bucket = HEADER_LEN + 4 * (1 + (full % HASH_SIZE) as usize);
        let head = u32::from_le_bytes(out[bucket..bucket + 4].try_into().expect("4 bytes"));
        let offset = out.len() as u32;
        // Key, data and the tailer, rounded up to tdb's 4-byte alignment.
        let rec_len = (key.len() as u32 + data.len() as u32 + 4 + 3) & !3;
        for v in [
            head,
            rec_len,
            key.len() as u32,
            data.len() as u32,
            full,
            RECORD_MAGIC,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(key);
        out.extend_from_slice(data);
        let padding = rec_len as usize - 4 - key.len() - data.len();
        out.extend(std::iter::repeat_n(0u8, padding));
        out.extend_from_slice(&(rec_len + RECORD_HEADER_LEN).to_le_bytes());
        put(&mut out, bucket, offset);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `USER_smbchaos` as `smbpasswd -a smbchaos` (Samba 4.17.12) wrote it, password `pw1`,
    /// NetBIOS name `T`, at Unix time 1796040539.
    const SMBPASSWD_RECORD: &str =
        "000000007fa9547c7fa9547c000000005b670d6b000000007fa9547c09000000736d626368616f73000200\
        00005400010000000001000000000000000000000000000000000000000001000000000100000000010000\
        00000100000000e803000001020000000000001000000048b8efc2f1caff1d40153937b3db9c5a00000000\
        10000000a8001500000020000000ffffffffffffffffffffffffffffffffffffffffff0000000000000000\
        00000000000000ec040000";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn user_record_is_what_smbpasswd_writes() {
        let ours = samu("t", "smbchaos", &smb2::ntlm::nt_hash("pw1"), 1_796_040_539);
        assert_eq!(ours, unhex(SMBPASSWD_RECORD));
    }

    #[test]
    fn hashes_are_tdbs() {
        // The header of a passdb.tdb smbpasswd made, and the buckets its keys sat in.
        assert_eq!(hash(MAGIC_FOOD), 0xf67d_9f0d);
        assert_eq!(hash(&RECORD_MAGIC.to_le_bytes()), 0x3afe_f920);
        for (key, bucket) in [
            ("RID_000003e8", 23),
            ("INFO/minor_version", 52),
            ("NEXT_RID", 65),
            ("USER_smbchaos", 92),
            ("INFO/version", 103),
        ] {
            assert_eq!(hash(&cstr(key)) % HASH_SIZE, bucket, "{key}");
        }
    }

    /// Samba's own readers accept the file: `tdbtool check` walks every chain and record,
    /// `pdbedit` reads the account back with its NT hash. Skipped where they are not installed.
    #[test]
    fn samba_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passdb.tdb");
        write(&path, "fs1", "smbchaos", "pw1", 1_796_040_539).unwrap();
        if Path::new("/usr/bin/tdbtool").exists() {
            let out = std::process::Command::new("/usr/bin/tdbtool")
                .arg(&path)
                .arg("check")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("Database integrity is OK"), "{text}");
            assert!(text.contains("5 records"), "{text}");
        }
        if Path::new("/usr/bin/pdbedit").exists() {
            let conf = dir.path().join("smb.conf");
            let d = dir.path().display();
            fs::write(
                &conf,
                format!(
                    "[global]\nnetbios name = FS1\nprivate dir = {d}\nlock directory = {d}\n\
                     state directory = {d}\ncache directory = {d}\npid directory = {d}\n\
                     passdb backend = tdbsam:{}\n",
                    path.display()
                ),
            )
            .unwrap();
            let out = std::process::Command::new("/usr/bin/pdbedit")
                .arg("-s")
                .arg(&conf)
                .args(["-L", "-w"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.starts_with("smbchaos:")
                    && text.contains(":48B8EFC2F1CAFF1D40153937B3DB9C5A:"),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
