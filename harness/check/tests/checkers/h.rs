//! A small builder for hand-written histories, in the op vocabulary of `history::ops`.
//! Records are appended in call order; `at(ms)` moves the clock forward, and every record
//! advances it by one microsecond so times are strictly increasing.

use std::collections::HashMap;

use history::{ops, Lease, OpType, Process, Record, Smb};
use serde_json::{json, Value};

#[derive(Default, Clone)]
struct Client {
    process: u64,
    conn: u64,
    path: String,
    file_id: Option<String>,
    lease_key: Option<String>,
}

#[derive(Default)]
pub struct H {
    pub records: Vec<Record>,
    now: u64,
    clients: HashMap<String, Client>,
    processes: u64,
}

pub const MS: u64 = 1_000_000;

pub fn lease(key: &str, state: &str, epoch: u16) -> Lease {
    Lease {
        key: key.into(),
        state: state.into(),
        epoch,
    }
}

impl H {
    pub fn new() -> H {
        H::default()
    }

    /// Move the clock to `ms` milliseconds (never backwards).
    pub fn at(&mut self, ms: u64) -> &mut H {
        assert!(
            ms * MS >= self.now,
            "the clock goes forward: {ms}ms < {}ns",
            self.now
        );
        self.now = ms * MS;
        self
    }

    fn push(
        &mut self,
        process: Process,
        kind: OpType,
        f: &str,
        value: Value,
        status: Option<&str>,
        smb: Smb,
    ) -> u64 {
        let index = self.records.len() as u64;
        // Through the history's typed values: a value of the wrong shape fails here.
        let value = history::Value::from_json(f, kind, process.name(), value)
            .unwrap_or_else(|e| panic!("record {index}: {e}"));
        self.records.push(Record {
            index,
            time_ns: self.now,
            process,
            kind,
            f: f.into(),
            node: Some("c".into()),
            value,
            status: status.map(str::to_string),
            smb,
        });
        self.now += 1_000;
        index
    }

    fn client(&mut self, name: &str) -> &mut Client {
        if !self.clients.contains_key(name) {
            self.processes += 1;
            let c = Client {
                process: self.processes,
                conn: 1,
                ..Client::default()
            };
            self.clients.insert(name.into(), c);
        }
        self.clients.get_mut(name).expect("client")
    }

    fn smb(&mut self, name: &str) -> Smb {
        let c = self.client(name).clone();
        Smb {
            client: Some(name.into()),
            conn: Some(c.conn),
            path: Some(c.path),
            file_id: c.file_id,
            ..Smb::default()
        }
    }

    /// Invoke `f` as client `name`; returns the invoke's index.
    pub fn invoke(&mut self, name: &str, f: &str, value: Value) -> u64 {
        let smb = self.smb(name);
        let process = Process::Worker(self.client(name).process);
        self.push(process, OpType::Invoke, f, value, None, smb)
    }

    /// Complete op `invoke` (`edit` adjusts the identifiers the server returned).
    pub fn complete(
        &mut self,
        invoke: u64,
        kind: OpType,
        value: Value,
        status: Option<&str>,
        edit: impl FnOnce(&mut Smb),
    ) -> u64 {
        let r = self.records[invoke as usize].clone();
        let mut smb = r.smb.clone();
        edit(&mut smb);
        let index = self.push(r.process.clone(), kind, &r.f, value, status, smb);
        if kind == OpType::Info {
            // As the workload does: a process whose op is unknown goes on as a new one.
            let name = r.smb.client.clone().unwrap_or_default();
            self.processes += 1;
            let p = self.processes;
            self.client(&name).process = p;
        }
        index
    }

    pub fn ok(&mut self, invoke: u64) -> u64 {
        let value = match self.records[invoke as usize].f.as_str() {
            ops::WRITE => match &self.records[invoke as usize].value {
                history::Value::WriteInvoke(w) => json!({ "written": w.len }),
                other => panic!("a write invoke with {other:?}"),
            },
            _ => json!({}),
        };
        self.complete(invoke, OpType::Ok, value, None, |_| {})
    }

    pub fn fail(&mut self, invoke: u64, status: &str) -> u64 {
        self.complete(invoke, OpType::Fail, Value::Null, Some(status), |_| {})
    }

    pub fn info(&mut self, invoke: u64) -> u64 {
        self.complete(invoke, OpType::Info, Value::Null, Some("timed out"), |_| {})
    }

    /// Client `name` opens `path` and gets `file_id`; `durable`: the granted timeout (ms).
    pub fn open(
        &mut self,
        name: &str,
        path: &str,
        file_id: &str,
        durable: Option<u64>,
        lease: Option<Lease>,
    ) -> u64 {
        self.client(name).path = path.into();
        self.client(name).file_id = None;
        let asked = if durable.is_some() { "v2" } else { "none" };
        let state = lease.as_ref().map(|l| l.state.clone()).unwrap_or_default();
        let invoke = self.invoke(
            name,
            ops::OPEN,
            json!({ "durable": asked, "timeout_ms": 0, "persistent": false, "lease": state, "oplock": "none" }),
        );
        self.open_ok(invoke, file_id, durable, lease)
    }

    pub fn open_ok(
        &mut self,
        invoke: u64,
        file_id: &str,
        durable: Option<u64>,
        lease: Option<Lease>,
    ) -> u64 {
        let name = self.records[invoke as usize]
            .smb
            .client
            .clone()
            .unwrap_or_default();
        let value = json!({ "durable": durable.is_some(), "timeout_ms": durable.unwrap_or(0), "persistent": false, "oplock": if lease.is_some() { 255 } else { 0 } });
        self.client(&name).file_id = Some(file_id.into());
        self.client(&name).lease_key = lease.as_ref().map(|l| l.key.clone());
        self.complete(invoke, OpType::Ok, value, None, |smb| {
            smb.file_id = Some(file_id.into());
            smb.lease = lease;
        });
        invoke
    }

    /// Client `name` opens `path` with an oplock (MS-SMB2 OplockLevel: 9 batch, 8 exclusive).
    pub fn open_oplock(&mut self, name: &str, path: &str, file_id: &str, level: u8) -> u64 {
        self.client(name).path = path.into();
        self.client(name).file_id = None;
        let value = json!({ "durable": "none", "timeout_ms": 0, "persistent": false, "lease": "", "oplock": "batch" });
        let invoke = self.invoke(name, ops::OPEN, value);
        self.client(name).file_id = Some(file_id.into());
        let value =
            json!({ "durable": false, "timeout_ms": 0, "persistent": false, "oplock": level });
        self.complete(invoke, OpType::Ok, value, None, |smb| {
            smb.file_id = Some(file_id.into())
        });
        invoke
    }

    /// Invoke an open of `path` by `name` (complete it with `open_ok`, `fail`, `info`).
    pub fn open_invoke(&mut self, name: &str, path: &str) -> u64 {
        self.client(name).path = path.into();
        self.client(name).file_id = None;
        self.invoke(
            name,
            ops::OPEN,
            json!({ "durable": "v2", "timeout_ms": 0, "persistent": false, "lease": "RWH", "oplock": "none" }),
        )
    }

    pub fn write(&mut self, name: &str, offset: u64, len: u64, write_through: bool) -> u64 {
        self.invoke(
            name,
            ops::WRITE,
            json!({ "offset": offset, "len": len, "write_through": write_through }),
        )
    }

    /// A write invoked and acknowledged at once.
    pub fn write_ok(&mut self, name: &str, offset: u64, len: u64, write_through: bool) -> u64 {
        let w = self.write(name, offset, len, write_through);
        self.ok(w);
        w
    }

    pub fn flush(&mut self, name: &str) -> u64 {
        self.invoke(name, ops::FLUSH, json!({}))
    }

    pub fn flush_ok(&mut self, name: &str) -> u64 {
        let f = self.flush(name);
        self.ok(f);
        f
    }

    pub fn close(&mut self, name: &str) -> u64 {
        let c = self.invoke(name, ops::CLOSE, json!({}));
        self.ok(c);
        self.client(name).file_id = None;
        c
    }

    /// Client `name`'s connection drops (the `disconnect` event); it goes on with `conn + 1`.
    pub fn disconnect(&mut self, name: &str) -> u64 {
        let smb = self.smb(name);
        let process = Process::Worker(self.client(name).process);
        let i = self.push(
            process,
            OpType::Info,
            ops::DISCONNECT,
            json!({ "reason": "reset" }),
            None,
            smb,
        );
        self.client(name).conn += 1;
        i
    }

    /// Invoke a DH2C reconnect of the handle opened by `open`.
    pub fn reconnect(&mut self, name: &str, open: u64) -> u64 {
        self.invoke(
            name,
            ops::RECONNECT,
            json!({ "durable": "v2", "open": open }),
        )
    }

    pub fn reconnect_ok(&mut self, invoke: u64, file_id: &str, lease: Option<Lease>) -> u64 {
        let name = self.records[invoke as usize]
            .smb
            .client
            .clone()
            .unwrap_or_default();
        self.client(&name).file_id = Some(file_id.into());
        self.complete(invoke, OpType::Ok, json!({}), None, |smb| {
            smb.file_id = Some(file_id.into());
            smb.lease = lease;
        })
    }

    /// A lease break notification reaching `name`: `from` → `to`, with the new epoch.
    pub fn lease_break(&mut self, name: &str, from: &str, to: &str, epoch: u16) -> u64 {
        let mut smb = self.smb(name);
        let key = self
            .client(name)
            .lease_key
            .clone()
            .expect("client has a lease");
        smb.lease = Some(lease(&key, from, epoch));
        let process = Process::Worker(self.client(name).process);
        self.push(
            process,
            OpType::Info,
            ops::LEASE_BREAK,
            json!({ "new_state": to, "ack_required": true, "epoch": epoch }),
            None,
            smb,
        )
    }

    pub fn lease_break_ack(&mut self, name: &str, state: &str) -> u64 {
        let key = self
            .client(name)
            .lease_key
            .clone()
            .expect("client has a lease");
        let mut smb = self.smb(name);
        smb.lease = Some(lease(&key, state, 0));
        let process = Process::Worker(self.client(name).process);
        let i = self.push(
            process.clone(),
            OpType::Invoke,
            ops::LEASE_BREAK_ACK,
            json!({ "state": state }),
            None,
            smb.clone(),
        );
        self.push(
            process,
            OpType::Ok,
            ops::LEASE_BREAK_ACK,
            json!({}),
            None,
            smb,
        );
        i
    }

    pub fn oplock_break(&mut self, name: &str, new_level: &str) -> u64 {
        let smb = self.smb(name);
        let process = Process::Worker(self.client(name).process);
        self.push(
            process,
            OpType::Info,
            ops::OPLOCK_BREAK,
            json!({ "new_level": new_level }),
            None,
            smb,
        )
    }

    /// A read-only op (keeps a connection provably alive).
    pub fn read_ok(&mut self, name: &str) -> u64 {
        let r = self.invoke(name, ops::READ, json!({ "offset": 0, "len": 8 }));
        self.complete(r, OpType::Ok, json!({ "runs": [] }), None, |_| {});
        r
    }

    /// The independent final read of `path`: `size` bytes decoded into `runs`.
    pub fn final_read(&mut self, path: &str, size: u64, runs: &[[i64; 3]]) -> u64 {
        let smb = Smb {
            path: Some(path.into()),
            ..Smb::default()
        };
        self.push(
            Process::Named(ops::FINAL_PROCESS.into()),
            OpType::Ok,
            ops::FINAL_READ,
            json!({ "size": size, "runs": runs }),
            None,
            smb,
        )
    }

    /// A nemesis step (`phase` start or heal) of fault `fault`, occurrence 0.
    pub fn fault(&mut self, kind: &str, fault: u64, phase: &str) {
        self.fault_on(kind, fault, phase, "c", json!({}));
    }

    /// A nemesis step on `node` with the plan's `action` (e.g. a reset's `side` and `peer`).
    pub fn fault_on(&mut self, kind: &str, fault: u64, phase: &str, node: &str, action: Value) {
        // As the nemesis records it: whether the fault has a heal step is the plan's
        // `Action::heals`.
        let one_shot = matches!(kind, "reset" | "restart")
            || (kind == "kill" && action.get("serving").is_some());
        let value = json!({ "fault": fault, "occurrence": 0, "phase": phase, "action": action, "heals": !one_shot, "detail": null });
        let p = Process::nemesis();
        let i = self.push(
            p.clone(),
            OpType::Invoke,
            kind,
            value.clone(),
            None,
            Smb::default(),
        );
        let j = self.push(p, OpType::Ok, kind, value, None, Smb::default());
        for k in [i, j] {
            self.records[k as usize].node = Some(node.into());
        }
    }
}
