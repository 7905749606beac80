//! Record values, typed: one type per entry of the op vocabulary (`ops`) and one for a fault
//! step. Writers build these and readers get them back, so a field's name and type are
//! defined here once; nothing reads `value` as loose JSON. Every type denies unknown fields:
//! a misspelt or foreign field is an error naming the record's line, never a silent default.
//!
//! Which type a `value` has follows from the record's `f`, `type` and process
//! ([`Value::deserialize_for`]). Completions that failed or whose outcome is unknown carry
//! `null` (or `{}`); records of the `wire` and `cluster` observers and link counters are
//! outside the vocabulary and keep the lab's own JSON ([`Value::Observation`]).
//!
//! Compatibility: histories written before these types (open `ok` and `oplock_break` wrote
//! the oplock as MS-SMB2's level number; nemesis steps without `require_effect`/`heals`) read
//! the same; see [`OplockLevel`] and [`FaultStep`].

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::effect::Effect;
use crate::ops::{Op, FINAL_PROCESS};
use crate::OpType;

/// Caching state (SMB2_LEASE_READ/WRITE/HANDLE_CACHING) as bits; written as letters, some of
/// `R`, `W`, `H` in that order (empty: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LeaseState(pub u8);

impl LeaseState {
    pub const R: u8 = 1;
    pub const W: u8 = 2;
    pub const H: u8 = 4;

    /// Letters as written; None when one is not R, W or H.
    pub fn parse(letters: &str) -> Option<LeaseState> {
        letters.bytes().try_fold(LeaseState(0), |acc, c| {
            let bit = match c {
                b'R' => LeaseState::R,
                b'W' => LeaseState::W,
                b'H' => LeaseState::H,
                _ => return None,
            };
            Some(LeaseState(acc.0 | bit))
        })
    }
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub fn within(self, other: LeaseState) -> bool {
        self.0 & !other.0 == 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (bit, c) in [
            (LeaseState::R, 'R'),
            (LeaseState::W, 'W'),
            (LeaseState::H, 'H'),
        ] {
            if self.has(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for LeaseState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LeaseState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LeaseState;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("lease caching letters (some of R, W, H)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LeaseState, E> {
                LeaseState::parse(s).ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// An oplock level (MS-SMB2 2.2.13 RequestedOplockLevel), written by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OplockLevel {
    #[default]
    None,
    Level2,
    Exclusive,
    Batch,
    /// SMB2_OPLOCK_LEVEL_LEASE: the open asked for (or got) a lease instead.
    Lease,
}

impl OplockLevel {
    const NAMES: [(OplockLevel, &'static str, u8); 5] = [
        (OplockLevel::None, "none", 0x00),
        (OplockLevel::Level2, "level2", 0x01),
        (OplockLevel::Exclusive, "exclusive", 0x08),
        (OplockLevel::Batch, "batch", 0x09),
        (OplockLevel::Lease, "lease", 0xff),
    ];

    /// The level as MS-SMB2 numbers it.
    pub fn level(self) -> u8 {
        Self::NAMES.iter().find(|n| n.0 == self).map_or(0, |n| n.2)
    }
    /// A level MS-SMB2 defines, from its number.
    pub fn from_level(level: u8) -> Option<OplockLevel> {
        Self::NAMES.iter().find(|n| n.2 == level).map(|n| n.0)
    }
    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|n| n.0 == self).map_or("", |n| n.1)
    }
}

impl Serialize for OplockLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A name; or (histories before typed values) MS-SMB2's level number.
impl<'de> Deserialize<'de> for OplockLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OplockLevel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an oplock level: none, level2, exclusive, batch or lease")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OplockLevel, E> {
                OplockLevel::NAMES
                    .iter()
                    .find(|n| n.1 == s)
                    .map(|n| n.0)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<OplockLevel, E> {
                u8::try_from(n)
                    .ok()
                    .and_then(OplockLevel::from_level)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(n), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// The durable handle an open asks for (MS-SMB2 3.2.4.3.5: DHnQ is v1, DH2Q v2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durable {
    #[default]
    None,
    V1,
    V2,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `open` invoke: what the client asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenInvoke {
    pub durable: Durable,
    pub timeout_ms: u64,
    pub persistent: bool,
    /// The lease state asked for (empty: no lease).
    pub lease: LeaseState,
    /// The oplock level asked for when no lease is.
    pub oplock: OplockLevel,
    /// A durable v2 create sent again (REPLAY_OPERATION) after its first send was lost: the
    /// index of that first invoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<u64>,
}

/// `open` ok: what the server granted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenOk {
    /// A durable handle was granted.
    pub durable: bool,
    pub timeout_ms: u64,
    pub persistent: bool,
    pub oplock: OplockLevel,
}

/// `reconnect` invoke: a DHnC/DH2C for the handle the open at index `open` made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectInvoke {
    pub durable: Durable,
    pub open: u64,
}

/// `write` invoke; the write's id is its invoke's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteInvoke {
    pub offset: u64,
    pub len: u64,
    pub write_through: bool,
    /// The write this one sends again, byte for byte (REPLAY_OPERATION).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteOk {
    pub written: u64,
}

/// `read` invoke; also `lock`/`unlock` ([`LockInvoke`]) name a byte range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadInvoke {
    pub offset: u64,
    pub len: u64,
}

/// A run of decoded content: `[offset, len, write_id]` (`ops::decode`).
pub type Run = [i64; 3];

/// `read` ok: what came back, decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadOk {
    pub runs: Vec<Run>,
    /// Served from the client's own cache (`runs`: what the cache held).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cached: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockInvoke {
    pub offset: u64,
    pub len: u64,
    pub exclusive: bool,
}

/// `lease_break` (an event): a break notification arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseBreak {
    pub new_state: LeaseState,
    pub ack_required: bool,
    pub epoch: u16,
}

/// `lease_break_ack` invoke: the state acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseBreakAck {
    pub state: LeaseState,
}

/// `oplock_break` (an event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OplockBreak {
    pub new_level: OplockLevel,
}

/// `disconnect` (an event): why the connection was given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disconnect {
    pub reason: String,
}

/// `witness_register` (an event): a registration with the Witness service ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessRegister {
    /// The witness interface's address the client registered through.
    pub witness: String,
    /// The address registered for (the SMB connection's).
    pub address: String,
    pub took_ms: u64,
    /// Why it failed; absent: registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One resource of a `witness_notify`: an address or name and its new state
/// (`available`, `unavailable`, `unknown`; for moves: the address flags, e.g. `v4 online`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessResource {
    pub name: String,
    pub state: String,
}

/// `witness_notify` (an event): an AsyncNotify answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessNotify {
    /// `resource_change`, `client_move`, `share_move`, `ip_change`.
    pub message_type: String,
    pub resources: Vec<WitnessResource>,
    /// Where the client goes because of it, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<String>,
}

/// `witness_move` (an event): the client dropped its connection to go where the witness said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessMove {
    pub from: String,
    pub to: String,
    pub message_type: String,
}

/// `witness_lost` (an event): a registration ended without a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessLost {
    pub witness: String,
    pub reason: String,
}

/// `final_read` (process `final`): one file as the independent reader found it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalRead {
    pub size: u64,
    pub runs: Vec<Run>,
    /// `[offset, len]` ranges where the reader's reads of the file disagreed.
    #[serde(default)]
    pub unstable: Vec<[u64; 2]>,
    /// The file was not there.
    #[serde(default, skip_serializing_if = "is_false")]
    pub missing: bool,
}

/// `exec` invoke: the shell command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecInvoke {
    pub run: String,
}

/// `exec` completion: how the command ended (`exit` None: killed by a signal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecDone {
    pub exit: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `phase` (process `generator`): the workload's generator entered phase `phase`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseStart {
    pub phase: u64,
    /// How long it lasts (absent: to the workload's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
}

/// A completion with nothing to say beyond its `type` (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultPhase {
    #[default]
    Start,
    Heal,
}

/// A nemesis record (process `nemesis`, `f` the fault kind): one step of one occurrence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// The fault's position in the plan's `faults:`.
    pub fault: u64,
    pub occurrence: u64,
    pub phase: FaultPhase,
    /// The plan's action as the plan's own types write it (the plan crate owns its shape).
    pub action: serde_json::Value,
    /// The plan needs this occurrence to land (histories before it: false).
    #[serde(default)]
    pub require_effect: bool,
    /// The fault has a heal step (plan's `Action::heals`; histories before it: true).
    #[serde(default = "yes")]
    pub heals: bool,
    /// What a completed step did; None on the invoke and on a failure.
    pub detail: Option<FaultDetail>,
}

fn yes() -> bool {
    true
}

impl FaultStep {
    /// `action.<key>` when it is a string (e.g. a reset's `side`, a cut's `peer`).
    pub fn action_str(&self, key: &str) -> Option<&str> {
        self.action.get(key)?.as_str()
    }
}

/// What a completed fault step did and where.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<Effect>,
    /// The node the step acted on, when the action chose it (e.g. a cluster's public
    /// address holder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The cut began this long after the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_after_ns: Option<u64>,
    /// Where the step moved something to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Paths a heal checked before calling the fault over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_paths: Option<u64>,
    /// The `ctdb` command an administrative fault ran (`stop`, `ban 300`, `continue`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctdb: Option<String>,
    /// The client nodes an isolation cut the node off from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<String>>,
    /// A message fault: the MessageId of the message it acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u64>,
    /// What a step could not do and why (a message fault on an encrypted session, a drop
    /// whose frame had gone by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
}

/// A record's `value`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    /// `null`: a failed or unknown completion, or nothing to say.
    #[default]
    None,
    Empty(Empty),
    OpenInvoke(OpenInvoke),
    OpenOk(OpenOk),
    ReconnectInvoke(ReconnectInvoke),
    WriteInvoke(WriteInvoke),
    WriteOk(WriteOk),
    ReadInvoke(ReadInvoke),
    ReadOk(ReadOk),
    Lock(LockInvoke),
    LeaseBreak(LeaseBreak),
    LeaseBreakAck(LeaseBreakAck),
    OplockBreak(OplockBreak),
    Disconnect(Disconnect),
    FinalRead(FinalRead),
    ExecInvoke(ExecInvoke),
    ExecDone(ExecDone),
    /// Boxed: a nemesis step is several times the size of an op's value.
    Fault(Box<FaultStep>),
    Phase(PhaseStart),
    WitnessRegister(WitnessRegister),
    WitnessNotify(WitnessNotify),
    WitnessMove(WitnessMove),
    WitnessLost(WitnessLost),
    /// Outside the op and fault vocabulary: the observers' records (`wire`, `cluster`) and
    /// link counters, in the lab's own JSON.
    Observation(serde_json::Value),
}

macro_rules! from_types {
    ($($t:ident => $v:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(x: $t) -> Value {
                Value::$v(x)
            }
        })*
    };
}

from_types! {
    Empty => Empty, OpenInvoke => OpenInvoke, OpenOk => OpenOk,
    ReconnectInvoke => ReconnectInvoke, WriteInvoke => WriteInvoke, WriteOk => WriteOk,
    ReadInvoke => ReadInvoke, ReadOk => ReadOk, LockInvoke => Lock, LeaseBreak => LeaseBreak,
    LeaseBreakAck => LeaseBreakAck, OplockBreak => OplockBreak, Disconnect => Disconnect,
    FinalRead => FinalRead, ExecInvoke => ExecInvoke, ExecDone => ExecDone,
    PhaseStart => Phase, WitnessRegister => WitnessRegister, WitnessNotify => WitnessNotify,
    WitnessMove => WitnessMove, WitnessLost => WitnessLost,
}

impl From<FaultStep> for Value {
    fn from(x: FaultStep) -> Value {
        Value::Fault(Box::new(x))
    }
}

/// Which type a record's `value` has: decided by its `f`, `type` and process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `null` or `{}` only.
    Empty,
    OpenInvoke,
    OpenOk,
    ReconnectInvoke,
    WriteInvoke,
    WriteOk,
    ReadInvoke,
    ReadOk,
    Lock,
    LeaseBreak,
    LeaseBreakAck,
    OplockBreak,
    Disconnect,
    FinalRead,
    ExecInvoke,
    ExecDone,
    Fault,
    Phase,
    WitnessRegister,
    WitnessNotify,
    WitnessMove,
    WitnessLost,
    Observation,
}

impl Shape {
    /// The shape of a record's value. `process` is the record's process name (None: a worker).
    pub fn of(f: Op, kind: OpType, process: Option<&str>) -> Shape {
        use OpType::{Invoke, Ok};
        if process == Some("nemesis") {
            return Shape::Fault;
        }
        match (f, kind) {
            (Op::Open, Invoke) => Shape::OpenInvoke,
            (Op::Open, Ok) => Shape::OpenOk,
            (Op::Reconnect, Invoke) => Shape::ReconnectInvoke,
            (Op::Write, Invoke) => Shape::WriteInvoke,
            (Op::Write, Ok) => Shape::WriteOk,
            (Op::Read, Invoke) => Shape::ReadInvoke,
            (Op::Read, Ok) => Shape::ReadOk,
            (Op::Lock | Op::Unlock, Invoke) => Shape::Lock,
            (Op::LeaseBreak, _) => Shape::LeaseBreak,
            (Op::LeaseBreakAck, Invoke) => Shape::LeaseBreakAck,
            (Op::OplockBreak, _) => Shape::OplockBreak,
            (Op::Disconnect, _) => Shape::Disconnect,
            (Op::FinalRead, _) if process == Some(FINAL_PROCESS) => Shape::FinalRead,
            (Op::Exec, Invoke) => Shape::ExecInvoke,
            (Op::Exec, _) => Shape::ExecDone,
            (Op::Phase, _) => Shape::Phase,
            (Op::WitnessRegister, _) => Shape::WitnessRegister,
            (Op::WitnessNotify, _) => Shape::WitnessNotify,
            (Op::WitnessMove, _) => Shape::WitnessMove,
            (Op::WitnessLost, _) => Shape::WitnessLost,
            (Op::Other, _) => Shape::Observation,
            _ => Shape::Empty,
        }
    }

    /// Read a value of this shape; `null` is [`Value::None`] for every shape.
    pub fn read<'de, D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        fn typed<'de, T: Deserialize<'de> + Into<Value>, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Value, D::Error> {
            Ok(Option::<T>::deserialize(d)?.map_or(Value::None, Into::into))
        }
        match self {
            Shape::Empty => typed::<Empty, D>(d),
            Shape::OpenInvoke => typed::<OpenInvoke, D>(d),
            Shape::OpenOk => typed::<OpenOk, D>(d),
            Shape::ReconnectInvoke => typed::<ReconnectInvoke, D>(d),
            Shape::WriteInvoke => typed::<WriteInvoke, D>(d),
            Shape::WriteOk => typed::<WriteOk, D>(d),
            Shape::ReadInvoke => typed::<ReadInvoke, D>(d),
            Shape::ReadOk => typed::<ReadOk, D>(d),
            Shape::Lock => typed::<LockInvoke, D>(d),
            Shape::LeaseBreak => typed::<LeaseBreak, D>(d),
            Shape::LeaseBreakAck => typed::<LeaseBreakAck, D>(d),
            Shape::OplockBreak => typed::<OplockBreak, D>(d),
            Shape::Disconnect => typed::<Disconnect, D>(d),
            Shape::FinalRead => typed::<FinalRead, D>(d),
            Shape::ExecInvoke => typed::<ExecInvoke, D>(d),
            Shape::ExecDone => typed::<ExecDone, D>(d),
            Shape::Fault => typed::<FaultStep, D>(d),
            Shape::Phase => typed::<PhaseStart, D>(d),
            Shape::WitnessRegister => typed::<WitnessRegister, D>(d),
            Shape::WitnessNotify => typed::<WitnessNotify, D>(d),
            Shape::WitnessMove => typed::<WitnessMove, D>(d),
            Shape::WitnessLost => typed::<WitnessLost, D>(d),
            Shape::Observation => Ok(match serde_json::Value::deserialize(d)? {
                serde_json::Value::Null => Value::None,
                v => Value::Observation(v),
            }),
        }
    }

    /// The type's name, for errors.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Empty => "an empty value",
            Shape::OpenInvoke => "an open invoke",
            Shape::OpenOk => "an open ok",
            Shape::ReconnectInvoke => "a reconnect invoke",
            Shape::WriteInvoke => "a write invoke",
            Shape::WriteOk => "a write ok",
            Shape::ReadInvoke => "a read invoke",
            Shape::ReadOk => "a read ok",
            Shape::Lock => "a lock/unlock invoke",
            Shape::LeaseBreak => "a lease_break",
            Shape::LeaseBreakAck => "a lease_break_ack invoke",
            Shape::OplockBreak => "an oplock_break",
            Shape::Disconnect => "a disconnect",
            Shape::FinalRead => "a final_read",
            Shape::ExecInvoke => "an exec invoke",
            Shape::ExecDone => "an exec completion",
            Shape::Fault => "a nemesis step",
            Shape::Phase => "a phase",
            Shape::WitnessRegister => "a witness_register",
            Shape::WitnessNotify => "a witness_notify",
            Shape::WitnessMove => "a witness_move",
            Shape::WitnessLost => "a witness_lost",
            Shape::Observation => "an observation",
        }
    }
}

impl Value {
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// Read `value` of a record with this `f`, `type` and process name (None: a worker);
    /// errors say which op's value was malformed.
    pub fn read_for(
        f: &str,
        kind: OpType,
        process: Option<&str>,
        json: &str,
    ) -> Result<Value, serde_json::Error> {
        let shape = Shape::of(Op::of(f), kind, process);
        let mut d = serde_json::Deserializer::from_str(json);
        let v = shape
            .read(&mut d)
            .and_then(|v| d.end().map(|()| v))
            .map_err(|e| de::Error::custom(format_args!("value of {}: {e}", shape.name())))?;
        Ok(v)
    }

    /// [`Value::read_for`] of a value already parsed as JSON (tests write values this way).
    pub fn from_json(
        f: &str,
        kind: OpType,
        process: Option<&str>,
        json: serde_json::Value,
    ) -> Result<Value, serde_json::Error> {
        let shape = Shape::of(Op::of(f), kind, process);
        shape
            .read(json)
            .map_err(|e| de::Error::custom(format_args!("value of {}: {e}", shape.name())))
    }

    pub fn fault(&self) -> Option<&FaultStep> {
        match self {
            Value::Fault(s) => Some(s),
            _ => None,
        }
    }

    /// An observation's field (`wire`, `cluster` records).
    pub fn observed(&self, key: &str) -> Option<&serde_json::Value> {
        match self {
            Value::Observation(v) => v.get(key),
            _ => None,
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::None => s.serialize_unit(),
            Value::Empty(x) => x.serialize(s),
            Value::OpenInvoke(x) => x.serialize(s),
            Value::OpenOk(x) => x.serialize(s),
            Value::ReconnectInvoke(x) => x.serialize(s),
            Value::WriteInvoke(x) => x.serialize(s),
            Value::WriteOk(x) => x.serialize(s),
            Value::ReadInvoke(x) => x.serialize(s),
            Value::ReadOk(x) => x.serialize(s),
            Value::Lock(x) => x.serialize(s),
            Value::LeaseBreak(x) => x.serialize(s),
            Value::LeaseBreakAck(x) => x.serialize(s),
            Value::OplockBreak(x) => x.serialize(s),
            Value::Disconnect(x) => x.serialize(s),
            Value::FinalRead(x) => x.serialize(s),
            Value::ExecInvoke(x) => x.serialize(s),
            Value::ExecDone(x) => x.serialize(s),
            Value::Fault(x) => x.serialize(s),
            Value::Phase(x) => x.serialize(s),
            Value::WitnessRegister(x) => x.serialize(s),
            Value::WitnessNotify(x) => x.serialize(s),
            Value::WitnessMove(x) => x.serialize(s),
            Value::WitnessLost(x) => x.serialize(s),
            Value::Observation(x) => x.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_reads_back_what_it_wrote() {
        let values: Vec<(&str, OpType, Option<&str>, Value)> = vec![
            (
                "open",
                OpType::Invoke,
                None,
                OpenInvoke {
                    durable: Durable::V2,
                    timeout_ms: 30_000,
                    persistent: false,
                    lease: LeaseState(LeaseState::R | LeaseState::H),
                    oplock: OplockLevel::None,
                    replay_of: Some(4),
                }
                .into(),
            ),
            (
                "open",
                OpType::Ok,
                None,
                OpenOk {
                    durable: true,
                    timeout_ms: 60_000,
                    persistent: false,
                    oplock: OplockLevel::Lease,
                }
                .into(),
            ),
            ("open", OpType::Fail, None, Value::None),
            ("flush", OpType::Ok, None, Empty {}.into()),
            (
                "read",
                OpType::Ok,
                None,
                ReadOk {
                    runs: vec![[0, 8, 3]],
                    cached: true,
                }
                .into(),
            ),
            (
                "reset",
                OpType::Ok,
                Some("nemesis"),
                FaultStep {
                    fault: 1,
                    occurrence: 2,
                    phase: FaultPhase::Heal,
                    action: serde_json::json!({"kind": "reset", "side": "client"}),
                    require_effect: true,
                    heals: false,
                    detail: Some(FaultDetail {
                        effect: Some(Effect {
                            frames_dropped: 3,
                            ..Effect::default()
                        }),
                        ..FaultDetail::default()
                    }),
                }
                .into(),
            ),
            (
                "witness_notify",
                OpType::Info,
                None,
                WitnessNotify {
                    message_type: "client_move".into(),
                    resources: vec![WitnessResource {
                        name: "198.19.0.11".into(),
                        state: "v4 online".into(),
                    }],
                    move_to: Some("198.19.0.11".into()),
                }
                .into(),
            ),
            (
                "witness_register",
                OpType::Info,
                None,
                WitnessRegister {
                    witness: "198.19.0.11".into(),
                    address: "198.19.0.10".into(),
                    took_ms: 12,
                    error: None,
                }
                .into(),
            ),
            (
                "link_counters",
                OpType::Info,
                Some("wire"),
                Value::Observation(serde_json::json!({"c1": {"egress_bytes": 5}})),
            ),
        ];
        for (f, kind, process, v) in values {
            let text = serde_json::to_string(&v).unwrap();
            let back = Value::read_for(f, kind, process, &text).unwrap();
            assert_eq!(back, v, "{f} {kind:?}: {text}");
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_naming_the_op() {
        // The lenient reader this replaces took a bool `durable` on an invoke as "durable".
        let err = Value::read_for(
            "open",
            OpType::Invoke,
            None,
            r#"{"durable": true, "timeout_ms": 0, "persistent": false, "lease": "", "oplock": "none"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("value of an open invoke: "), "{err}");
        let err = Value::read_for("write", OpType::Ok, None, r#"{"writen": 4}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `writen`"), "{err}");
        assert!(Value::read_for("open", OpType::Invoke, None, r#"{"lease": "RX"}"#).is_err());
    }

    #[test]
    fn an_oplock_level_reads_by_name_and_by_its_old_number() {
        let ok = |text: &str| Value::read_for("open", OpType::Ok, None, text);
        let named =
            r#"{"durable": false, "timeout_ms": 0, "persistent": false, "oplock": "batch"}"#;
        let numbered = r#"{"durable": false, "timeout_ms": 0, "persistent": false, "oplock": 9}"#;
        assert_eq!(ok(named).unwrap(), ok(numbered).unwrap());
        let bad = r#"{"durable": false, "timeout_ms": 0, "persistent": false, "oplock": 7}"#;
        assert!(ok(bad).is_err());
    }
}
