//! The independent final read: once every fault is healed, a fresh client (new ClientGuid, new
//! connection, no lease, no durable handle) reads every file the workload touched and records
//! what is there, decoded into runs of writes. The durability checker judges from this.
//!
//! Each file is read twice (on fresh connections); when the two reads differ, with nothing
//! writing, the read path lied: a third read decides each 8-byte word by majority, and the
//! ranges that differed are recorded as `unstable` (the `reads` checker names them), so a
//! server that corrupts reads is told apart from a disk that holds garbage.

use std::net::SocketAddr;

use history::ops::Op;
use history::value::FinalRead;
use history::{ops, Entry, HistoryWriter, OpType, Process, Smb, Value};
use lab::Lab;
use smb2::wire::create::{access, disposition};
use smb2::wire::read::ReadRequest;
use smb2::{CreateRequest, Credentials, RequestOptions};

const CHUNK: u64 = 64 * 1024;

/// Read every SMB workload file of the plan from `from` (a client node).
pub async fn run(
    lab: &Lab,
    plan: &plan::Plan,
    from: &str,
    history: &HistoryWriter,
) -> std::io::Result<()> {
    for (server, share, path) in super::smb::files(plan) {
        let (kind, value, status) = match read_stable(lab, from, &server, &share, &path).await {
            Ok(Some((bytes, unstable))) => (
                OpType::Ok,
                FinalRead {
                    size: bytes.len() as u64,
                    runs: ops::decode(0, &bytes),
                    unstable,
                    missing: false,
                }
                .into(),
                None,
            ),
            Ok(None) => (
                OpType::Ok,
                FinalRead {
                    missing: true,
                    ..FinalRead::default()
                }
                .into(),
                Some("STATUS_OBJECT_NAME_NOT_FOUND".into()),
            ),
            Err(e) => (OpType::Info, Value::None, Some(e)),
        };
        history.append(Entry {
            process: Process::Named(ops::FINAL_PROCESS.into()),
            kind,
            f: Op::FinalRead.into(),
            node: Some(server.clone()),
            value,
            status,
            smb: Smb {
                path: Some(path),
                ..Default::default()
            },
        })?;
    }
    Ok(())
}

/// The file as two of three reads agree (see the module), and the `[offset, len]` ranges
/// where reads disagreed.
async fn read_stable(
    lab: &Lab,
    from: &str,
    server: &str,
    share: &str,
    path: &str,
) -> Result<Option<(Vec<u8>, Vec<[u64; 2]>)>, String> {
    let Some(a) = read_file(lab, from, server, share, path).await? else {
        return Ok(None);
    };
    let b = read_file(lab, from, server, share, path)
        .await?
        .unwrap_or_default();
    if a == b {
        return Ok(Some((a, Vec::new())));
    }
    let c = read_file(lab, from, server, share, path)
        .await?
        .unwrap_or_default();
    Ok(Some(majority(&a, &b, &c)))
}

/// Per 8-byte word, the value at least two of the reads agree on (else the first's); and
/// the ranges where any two differ.
fn majority(a: &[u8], b: &[u8], c: &[u8]) -> (Vec<u8>, Vec<[u64; 2]>) {
    let len = if b.len() == c.len() { b.len() } else { a.len() };
    let word = |x: &[u8], i: usize| x.get(i..(i + 8).min(len)).map(<[u8]>::to_vec);
    let mut out = Vec::with_capacity(len);
    let mut unstable: Vec<[u64; 2]> = Vec::new();
    for i in (0..len).step_by(8) {
        let (wa, wb, wc) = (word(a, i), word(b, i), word(c, i));
        let pick = if wa == wb || wa == wc {
            &wa
        } else if wb == wc {
            &wb
        } else {
            &wa
        };
        let end = (i + 8).min(len);
        out.extend(pick.clone().unwrap_or_else(|| vec![0; end - i]));
        if !(wa == wb && wb == wc) {
            match unstable.last_mut() {
                Some(last) if last[0] + last[1] == i as u64 => last[1] += (end - i) as u64,
                _ => unstable.push([i as u64, (end - i) as u64]),
            }
        }
    }
    (out, unstable)
}

/// The whole file, or None if it does not exist.
async fn read_file(
    lab: &Lab,
    from: &str,
    server: &str,
    share: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, String> {
    let address = lab.address_towards(from, server);
    let stream = lab
        .connect(from, SocketAddr::from((address, 445)))
        .await
        .map_err(|e| e.to_string())?;
    let (user, password) = lab.credentials();
    let smb2::Connected {
        connection: conn,
        tree,
        ..
    } = smb2::connect_tree(
        stream,
        &smb2::TreeConnectOptions::new(
            Credentials::new(user, password),
            format!(r"\\{address}\{share}"),
        ),
    )
    .await
    .map_err(|e| e.to_string())?;
    let opts = RequestOptions {
        timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    let mut req = CreateRequest::new(path.to_string());
    req.desired_access = access::FILE_READ_DATA
        | access::FILE_READ_ATTRIBUTES
        | access::READ_CONTROL
        | access::SYNCHRONIZE;
    req.create_disposition = disposition::FILE_OPEN;
    let resp = tree.request(&req, &opts).await.map_err(|e| e.to_string())?;
    if resp.status() == smb2::NtStatus::STATUS_OBJECT_NAME_NOT_FOUND {
        return Ok(None);
    }
    let open = resp.ok().map_err(|e| e.to_string())?;
    let mut data = Vec::with_capacity(open.end_of_file as usize);
    while (data.len() as u64) < open.end_of_file {
        let want = CHUNK.min(open.end_of_file - data.len() as u64) as u32;
        let read = ReadRequest {
            length: want,
            offset: data.len() as u64,
            file_id: open.file_id,
            ..Default::default()
        };
        let got = tree
            .request(&read, &opts)
            .await
            .map_err(|e| e.to_string())?
            .ok()
            .map_err(|e| e.to_string())?;
        if got.data.is_empty() {
            break;
        }
        data.extend_from_slice(&got.data);
    }
    let _ = tree.close(open.file_id).await;
    conn.close().await;
    Ok(Some(data))
}
