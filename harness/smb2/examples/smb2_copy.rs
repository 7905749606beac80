//! One whole-process file copy with this client, the counterpart of
//! `smbclient -c 'get NAME /dev/null'` / `-c 'put LOCAL NAME'` in
//! scripts/bench/client-vs-smbclient: connect → NEGOTIATE (3.1.1, signing
//! required) → SESSION_SETUP (NTLMv2) → TREE_CONNECT → CREATE → READ/WRITE
//! with DEPTH requests in flight → CLOSE. `get` discards the data as
//! smbclient's /dev/null does; `put` reads LOCAL in CHUNK pieces as
//! smbclient's `put` does. Prints nothing on success; the caller times it.
//!
//!     smb2_copy get|put ADDR SHARE USER PASSWORD NAME [LOCAL] [DEPTH] [CHUNK]

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;

use smb2::wire::create::{access, disposition};
use smb2::wire::read::ReadRequest;
use smb2::wire::write::WriteRequest;
use smb2::*;

struct Args {
    put: bool,
    addr: SocketAddr,
    unc: String,
    user: String,
    password: String,
    name: String,
    local: Option<String>,
    depth: usize,
    chunk: usize,
}

fn args() -> std::result::Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: smb2_copy get|put ADDR SHARE USER PASSWORD NAME [LOCAL] [DEPTH] [CHUNK]";
    if a.len() < 6 {
        return Err(usage.into());
    }
    let put = match a[0].as_str() {
        "get" => false,
        "put" => true,
        _ => return Err(usage.into()),
    };
    let ip: std::net::IpAddr = a[1].parse().map_err(|e| format!("ADDR {}: {e}", a[1]))?;
    let num = |i: usize, default: usize| -> std::result::Result<usize, String> {
        a.get(i)
            .map_or(Ok(default), |s| s.parse().map_err(|e| format!("{s}: {e}")))
    };
    Ok(Args {
        put,
        addr: SocketAddr::new(ip, 445),
        unc: format!(r"\\{}\{}", a[1], a[2]),
        user: a[3].clone(),
        password: a[4].clone(),
        name: a[5].clone(),
        local: a.get(6).filter(|s| *s != "-").cloned(),
        depth: num(7, 16)?.max(1),
        chunk: num(8, 1 << 20)?.max(1),
    })
}

async fn run(a: Args) -> std::result::Result<u64, String> {
    let e = |what: &str| {
        let what = what.to_string();
        move |err: Error| format!("{what}: {err}")
    };
    let (conn, _events) = Connection::connect(a.addr).await.map_err(e("connect"))?;
    conn.negotiate(
        &default_negotiate_request(&[Dialect::SMB3_1_1], Guid::random(), true),
        &RequestOptions::default(),
    )
    .await
    .and_then(|r| r.ok())
    .map_err(e("NEGOTIATE"))?;
    let n = conn.negotiated().ok_or("no negotiated state")?;
    let session = conn
        .session_setup(&SessionSetupOptions::new(Credentials::new(
            &a.user,
            &a.password,
        )))
        .await
        .map_err(e("SESSION_SETUP"))?;
    if !session.signs() {
        return Err("session does not sign; the comparison needs signing on both sides".into());
    }
    let tree = session
        .tree_connect(&a.unc)
        .await
        .map_err(e("TREE_CONNECT"))?;
    // What smbclient asks for: read (get), or read and write (put).
    let desired_access = access::FILE_READ_DATA
        | access::FILE_READ_ATTRIBUTES
        | access::READ_CONTROL
        | access::SYNCHRONIZE
        | if a.put {
            access::FILE_WRITE_DATA | access::FILE_APPEND_DATA | access::FILE_WRITE_ATTRIBUTES
        } else {
            0
        };
    let create = CreateRequest {
        desired_access,
        create_disposition: if a.put {
            disposition::FILE_OVERWRITE_IF
        } else {
            disposition::FILE_OPEN
        },
        ..CreateRequest::new(a.name.clone())
    };
    let open = tree
        .create(&create)
        .await
        .and_then(|r| r.ok())
        .map_err(e("CREATE"))?;
    let f = open.file_id;
    // Ask for enough credits to keep DEPTH multi-credit requests in flight.
    let opts = RequestOptions {
        credit_request: 256,
        ..Default::default()
    };
    let mut moved = 0u64;
    if a.put {
        let mut inflight = VecDeque::new();
        let chunk = a.chunk.min(n.max_write_size as usize);
        let path = a.local.as_deref().ok_or("put needs LOCAL")?;
        let mut src = std::fs::File::open(path).map_err(|err| format!("{path}: {err}"))?;
        let mut offset = 0u64;
        loop {
            let mut data = vec![0u8; chunk];
            let got = read_full(&mut src, &mut data).map_err(|err| format!("{path}: {err}"))?;
            if got == 0 {
                break;
            }
            data.truncate(got);
            let req = WriteRequest {
                offset,
                file_id: f,
                remaining_bytes: 0,
                flags: 0,
                data,
            };
            offset += got as u64;
            inflight.push_back(tree.submit(&req, &opts).await.map_err(e("WRITE"))?);
            if inflight.len() >= a.depth {
                let p: Pending<_> = inflight.pop_front().ok_or("empty queue")?;
                moved += u64::from(
                    p.wait()
                        .await
                        .and_then(|r| r.ok())
                        .map_err(e("WRITE"))?
                        .count,
                );
            }
        }
        while let Some(p) = inflight.pop_front() {
            moved += u64::from(
                p.wait()
                    .await
                    .and_then(|r| r.ok())
                    .map_err(e("WRITE"))?
                    .count,
            );
        }
        if moved != offset {
            return Err(format!("wrote {moved} of {offset} bytes"));
        }
    } else {
        let chunk = a.chunk.min(n.max_read_size as usize) as u64;
        let size = open.end_of_file;
        let mut inflight = VecDeque::new();
        let mut offset = 0u64;
        while offset < size || !inflight.is_empty() {
            if offset < size && inflight.len() < a.depth {
                let req = ReadRequest {
                    length: chunk.min(size - offset) as u32,
                    offset,
                    file_id: f,
                    ..Default::default()
                };
                offset += u64::from(req.length);
                inflight.push_back(tree.submit(&req, &opts).await.map_err(e("READ"))?);
                continue;
            }
            let p: Pending<_> = inflight.pop_front().ok_or("empty queue")?;
            // The data is dropped here: the counterpart of smbclient's /dev/null.
            let r = p.wait().await.and_then(|r| r.ok()).map_err(e("READ"))?;
            moved += r.data.len() as u64;
        }
        if moved != size {
            return Err(format!("read {moved} of {size} bytes"));
        }
    }
    tree.close(f)
        .await
        .and_then(|r| r.ok())
        .map_err(e("CLOSE"))?;
    Ok(moved)
}

/// Fills `buf` unless the file ends first; returns how much it read.
fn read_full(src: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(m) => {
            eprintln!("{m}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(a)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(m) => {
            eprintln!("smb2_copy: {m}");
            ExitCode::FAILURE
        }
    }
}
