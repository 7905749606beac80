//! The op vocabulary: what `Record::f` and `Record::value` mean. The workload writes these and
//! the checkers read them; this file is the contract between the two.
//!
//! Workload ops (our SMB wire client). Every op is an `invoke` record and then one completion
//! (`ok`, `fail` with the NTSTATUS name in `status`, or `info`: outcome unknown because the
//! connection dropped or the request timed out). `smb.client`, `smb.conn` and `smb.path` are
//! set on both records; identifiers the server returned (FileId, lease) on the completion.
//!
//! | f | invoke `value` | ok `value` |
//! |---|---|---|
//! | `open` | `{durable: "none"\|"v1"\|"v2", timeout_ms, persistent, lease: "RWH"\|"RH"\|"R"\|"", oplock: "none"\|"level2"\|"exclusive"\|"batch"}`; `smb.create_guid` for v2 | `{durable: bool, timeout_ms, persistent: bool, oplock}`; `smb.file_id`, `smb.lease` |
//! | `reconnect` | `{durable: "v1"\|"v2", open: <index of the open's invoke>}`; `smb.file_id` (the old one), `smb.create_guid` | `smb.file_id` (must equal the old one), `smb.lease` |
//! | `write` | `{offset, len, write_through: bool}`; the write's id is its invoke's `index` | `{written}` |
//! | `flush` | `{}` | `{}` |
//! | `read` | `{offset, len}` | `{runs: [[offset, len, write_id], ...]}` (see below); `cached: true` when served from the client's own cache (`runs`: what the cache held) |
//! | `close` | `{}` | `{}` |
//! | `lock` / `unlock` | `{offset, len, exclusive}` | `{}` |
//! | `delete` | `{}` | `{}` |
//! | `lease_break_ack` | `{state}` | `{}` |
//!
//! Events without an invoke, recorded as a single `info` record:
//! - `lease_break`: a break notification arrived. `value: {new_state, ack_required, epoch}`;
//!   `smb.lease` holds the key and the state being broken.
//! - `oplock_break`: `value: {new_level}`, `smb.file_id`.
//! - `disconnect`: the client's connection `smb.conn` dropped. `value: {reason}`.
//! - `witness_register` (clients with `witness: true`): a registration with the cluster's
//!   Witness service ended. `value: {witness, address, took_ms, error}`: the witness interface
//!   it went to, the address registered (the one the SMB connection uses), and the error
//!   when it failed (`error` absent: registered, an AsyncNotify is now outstanding).
//! - `witness_notify`: an AsyncNotify answered. `value: {message_type, resources,
//!   move_to}`: `resource_change`, `client_move`, `share_move` or `ip_change`; per message the
//!   resource (an address or name) and its state, and where the client was told to go.
//! - `witness_move`: the client gave up its connection because the witness told it to.
//!   `value: {from, to, message_type}`.
//! - `witness_lost`: the registration ended without a notification (the witness's
//!   association closed, an AsyncNotify unanswered past its timeout, ERROR_NOT_FOUND).
//!   `value: {witness, reason}`; the client registers again elsewhere.
//!
//! After every fault is healed, an independent reader records, per file, one `ok` record with
//! process `"final"` and f `final_read`: `value: {size, runs, unstable}`, `smb.path`. It reads
//! each file twice; where the reads differ it reads a third time, `runs` hold what two reads
//! agree on and `unstable: [[offset, len], ...]` the ranges where reads disagreed.
//!
//! Written content identifies its write: every 8-byte word at file offset `o` (8-aligned)
//! written by write `w` holds `content_word(w, o)`; writes are 8-aligned in offset and length.
//! A read decodes what it got into runs of `[offset, len, write_id]`: `write_id` is the write's
//! invoke index, `ZEROS` (-2) for zero bytes (never written), `ALIEN` (-1) for a word no write
//! can have put there.
//!
//! When the workload has `phases`, process `"generator"` records each phase's start: f
//! `phase`, `info`, `value: {phase, for_ms}` (`phase` counts from 0; `for_ms` absent on a last
//! phase that runs to the end).
//!
//! Link counters: process `"wire"`, f `link_counters`, `info`, every 500 ms while the workload
//! runs: `value: {<node>: {egress_bytes, ingress_bytes, egress_frames, ...}}`.
//!
//! Nemesis records: process `"nemesis"`, f the fault kind, `value: {fault, occurrence, phase:
//! "start"|"heal", action, require_effect, heals, detail}`; `exec` steps: `value: {run}` then
//! `{exit, stdout, stderr}`.
//!
//! Each value's Rust type is in `value` (one per row above); readers get those types, never
//! loose JSON.

/// The op vocabulary, typed: what `Record::f` names. Writers name ops through it and checkers
/// read them through it, so a misspelt op cannot be written or missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Open,
    Reconnect,
    Write,
    Flush,
    Read,
    Close,
    Lock,
    Unlock,
    Delete,
    LeaseBreak,
    LeaseBreakAck,
    OplockBreak,
    Disconnect,
    FinalRead,
    Exec,
    /// The workload's generator entered a phase (process `generator`).
    Phase,
    WitnessRegister,
    WitnessNotify,
    WitnessMove,
    WitnessLost,
    /// A fault kind, `link_counters`, ...: anything else; its name is the record's own `f`.
    Other,
}

impl Op {
    const NAMED: [(Op, &'static str); 20] = [
        (Op::Open, "open"),
        (Op::Reconnect, "reconnect"),
        (Op::Write, "write"),
        (Op::Flush, "flush"),
        (Op::Read, "read"),
        (Op::Close, "close"),
        (Op::Lock, "lock"),
        (Op::Unlock, "unlock"),
        (Op::Delete, "delete"),
        (Op::LeaseBreak, "lease_break"),
        (Op::LeaseBreakAck, "lease_break_ack"),
        (Op::OplockBreak, "oplock_break"),
        (Op::Disconnect, "disconnect"),
        (Op::FinalRead, "final_read"),
        (Op::Exec, "exec"),
        (Op::Phase, "phase"),
        (Op::WitnessRegister, "witness_register"),
        (Op::WitnessNotify, "witness_notify"),
        (Op::WitnessMove, "witness_move"),
        (Op::WitnessLost, "witness_lost"),
    ];

    /// The op a record's `f` names (`Other` for fault kinds and observations).
    pub fn of(f: &str) -> Op {
        Op::NAMED
            .iter()
            .find(|(_, name)| *name == f)
            .map_or(Op::Other, |(op, _)| *op)
    }

    /// The name a record spells it with; `Other` has none of its own ("").
    pub fn name(self) -> &'static str {
        Op::NAMED
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("", |(_, name)| name)
    }

    /// Events are never part of an invoke/completion pair.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            Op::LeaseBreak
                | Op::OplockBreak
                | Op::Disconnect
                | Op::FinalRead
                | Op::Phase
                | Op::WitnessRegister
                | Op::WitnessNotify
                | Op::WitnessMove
                | Op::WitnessLost
        )
    }
}

impl From<Op> for String {
    fn from(op: Op) -> String {
        op.name().to_string()
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// The names as constants, for matching on `&str` and for tests written against the JSON.
pub const OPEN: &str = "open";
pub const RECONNECT: &str = "reconnect";
pub const WRITE: &str = "write";
pub const FLUSH: &str = "flush";
pub const READ: &str = "read";
pub const CLOSE: &str = "close";
pub const LOCK: &str = "lock";
pub const UNLOCK: &str = "unlock";
pub const DELETE: &str = "delete";
pub const LEASE_BREAK: &str = "lease_break";
pub const LEASE_BREAK_ACK: &str = "lease_break_ack";
pub const OPLOCK_BREAK: &str = "oplock_break";
pub const DISCONNECT: &str = "disconnect";
pub const FINAL_READ: &str = "final_read";
pub const EXEC: &str = "exec";
pub const PHASE: &str = "phase";
/// The process name of the workload's generator (its `phase` records).
pub const GENERATOR_PROCESS: &str = "generator";
/// `write_id` of a run of zero bytes in a decoded read.
pub const ZEROS: i64 = -2;
/// `write_id` of a run no write can have put there.
pub const ALIEN: i64 = -1;
/// The process name of the final independent reader.
pub const FINAL_PROCESS: &str = "final";

/// The 8-byte word write `write_id` puts at file offset `offset` (8-aligned): the write id in
/// the high 40 bits, the word's position in the low 24, so a word says who wrote it and where.
pub fn content_word(write_id: u64, offset: u64) -> u64 {
    ((write_id + 1) << 24) | ((offset / 8) & 0xff_ffff)
}

/// The bytes of a write: `len` bytes (8-aligned) starting at `offset`.
pub fn content(write_id: u64, offset: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize);
    let mut o = offset;
    while o < offset + len {
        out.extend_from_slice(&content_word(write_id, o).to_le_bytes());
        o += 8;
    }
    out
}

/// Decode bytes read at `offset` into runs `[offset, len, write_id]`: `ALIEN` for a word no
/// write can have put there (wrong position, or a torn partial word), `ZEROS` for zeros.
pub fn decode(offset: u64, bytes: &[u8]) -> Vec<[i64; 3]> {
    let mut runs: Vec<[i64; 3]> = Vec::new();
    let mut push = |o: u64, len: u64, id: i64| match runs.last_mut() {
        Some(last) if last[2] == id && (last[0] + last[1]) as u64 == o => last[1] += len as i64,
        _ => runs.push([o as i64, len as i64, id]),
    };
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let o = offset + 8 * i as u64;
        let id = match <[u8; 8]>::try_from(chunk) {
            Ok(word) => {
                let w = u64::from_le_bytes(word);
                if w == 0 {
                    ZEROS
                } else if w & 0xff_ffff == (o / 8) & 0xff_ffff && o.is_multiple_of(8) {
                    ((w >> 24) - 1) as i64
                } else {
                    ALIEN
                }
            }
            Err(_) if chunk.iter().all(|b| *b == 0) => ZEROS,
            Err(_) => ALIEN,
        };
        push(o, chunk.len() as u64, id);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decodes_to_its_write() {
        let mut file = vec![0u8; 64];
        file[16..40].copy_from_slice(&content(7, 16, 24));
        assert_eq!(
            decode(0, &file),
            vec![[0, 16, ZEROS], [16, 24, 7], [40, 24, ZEROS]]
        );
        assert_eq!(
            decode(0, &content(0, 0, 8)),
            vec![[0, 8, 0]],
            "write 0 is not zeros"
        );
        // Content shifted to another offset is not what any write put there.
        let moved = content(7, 16, 8);
        assert_eq!(decode(8, &moved), vec![[8, 8, ALIEN]]);
        assert_eq!(decode(0, &[1, 2, 3]), vec![[0, 3, ALIEN]]);
    }
}
