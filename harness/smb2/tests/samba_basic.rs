//! The client against a real Samba 4.17 in a lab: negotiate, signing,
//! encryption, file I/O. Needs root and Samba (the lab's own requirements).

mod common;
use common::*;
use smb2::wire::create::{action, disposition};
use smb2::*;

#[tokio::test]
async fn negotiates_every_dialect_and_does_io() {
    let lab = lab_up("smb2-dialects").await;
    for d in Dialect::ALL {
        let (conn, _ev) = connect(&lab, "c1").await;
        let resp = conn
            .negotiate(
                &default_negotiate_request(&[d], Guid::random(), false),
                &RequestOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), NtStatus::STATUS_SUCCESS, "{d:?}");
        let body = resp.body().unwrap();
        assert_eq!(body.dialect_revision, d);
        assert_eq!(resp.header.command, Command::Negotiate);
        let session = conn
            .session_setup(&SessionSetupOptions::new(creds(&lab)))
            .await
            .unwrap();
        assert!(session.signs());
        let tree = session.tree_connect(&unc(&lab, "share")).await.unwrap();
        let name = unique("io");
        let c = tree
            .create(&CreateRequest {
                create_disposition: disposition::FILE_CREATE,
                ..CreateRequest::new(name.clone())
            })
            .await
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(c.create_action, action::FILE_CREATED);
        let w = tree
            .write(c.file_id, 0, b"hello smb".to_vec(), true)
            .await
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(w.count, 9);
        tree.flush(c.file_id).await.unwrap().ok().unwrap();
        let r = tree.read(c.file_id, 0, 100).await.unwrap().ok().unwrap();
        assert_eq!(r.data, b"hello smb");
        let eof = tree.read(c.file_id, 100, 10).await.unwrap();
        assert_eq!(eof.status(), NtStatus::STATUS_END_OF_FILE);
        let echo = conn.echo(&RequestOptions::default()).await.unwrap();
        assert_eq!(echo.status(), NtStatus::STATUS_SUCCESS);
        tree.close(c.file_id).await.unwrap().ok().unwrap();
        let gone = tree.read(c.file_id, 0, 1).await.unwrap();
        assert_eq!(gone.status(), NtStatus::STATUS_FILE_CLOSED, "{d:?}");
        tree.disconnect().await.unwrap().ok().unwrap();
        session
            .logoff(&RequestOptions::default())
            .await
            .unwrap()
            .ok()
            .unwrap();
    }
    lab.down().await.unwrap();
}

/// Every response of a signing session carries a signature that verifies
/// (the client rejects a bad one with Error::BadSignature).
#[tokio::test]
async fn signed_session_every_dialect() {
    let lab = lab_up("smb2-signing").await;
    for d in Dialect::ALL {
        let (conn, _ev) = connect(&lab, "c1").await;
        conn.negotiate(
            &default_negotiate_request(&[d], Guid::random(), true),
            &RequestOptions::default(),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
        let n = conn.negotiated().unwrap();
        let want = match d {
            Dialect::SMB2_0_2 | Dialect::SMB2_1 => {
                smb2::crypto::signing::SigningAlgorithm::HmacSha256
            }
            Dialect::SMB3_1_1 => smb2::crypto::signing::SigningAlgorithm::AesGmac,
            _ => smb2::crypto::signing::SigningAlgorithm::AesCmac,
        };
        assert_eq!(n.signing_algorithm, want, "{d:?}");
        let session = conn
            .session_setup(&SessionSetupOptions::new(creds(&lab)))
            .await
            .unwrap();
        assert!(session.signs());
        assert!(!session.encrypts());
        let tree = session.tree_connect(&unc(&lab, "share")).await.unwrap();
        assert!(tree.connect_header().flags.contains(HeaderFlags::SIGNED));
        let c = tree
            .create(&CreateRequest::new(unique("signed")))
            .await
            .unwrap();
        assert!(c.header.flags.contains(HeaderFlags::SIGNED), "{d:?}");
        assert!(!c.encrypted);
        let f = c.ok().unwrap().file_id;
        // 2.0.2 has no multi-credit requests: 64 KiB at most.
        let len = 100_000.min(n.max_write_size) as usize;
        let w = tree.write(f, 0, vec![1; len], false).await.unwrap();
        assert!(w.header.flags.contains(HeaderFlags::SIGNED));
        assert_eq!(w.ok().unwrap().count as usize, len);
        let r = tree.read(f, 0, len as u32).await.unwrap();
        assert!(r.header.flags.contains(HeaderFlags::SIGNED));
        assert_eq!(r.ok().unwrap().data, vec![1; len]);
        tree.close(f).await.unwrap().ok().unwrap();
    }
    lab.down().await.unwrap();
}

/// `smb encrypt = required` on a share: 3.x tree connects see
/// SMB2_SHAREFLAG_ENCRYPT_DATA and every later request and response on the
/// tree is encrypted, with each cipher; 2.x clients are refused.
#[tokio::test]
async fn encrypted_tree_connect_each_cipher() {
    use smb2::crypto::encryption::Cipher;
    use smb2::wire::negotiate::{CipherId, NegotiateContext};
    let lab = lab_up("smb2-encryption").await;
    let cases: [(Dialect, Option<CipherId>, Cipher); 6] = [
        (Dialect::SMB3_0, None, Cipher::Aes128Ccm),
        (Dialect::SMB3_0_2, None, Cipher::Aes128Ccm),
        (
            Dialect::SMB3_1_1,
            Some(CipherId::AES_128_CCM),
            Cipher::Aes128Ccm,
        ),
        (
            Dialect::SMB3_1_1,
            Some(CipherId::AES_128_GCM),
            Cipher::Aes128Gcm,
        ),
        (
            Dialect::SMB3_1_1,
            Some(CipherId::AES_256_CCM),
            Cipher::Aes256Ccm,
        ),
        (
            Dialect::SMB3_1_1,
            Some(CipherId::AES_256_GCM),
            Cipher::Aes256Gcm,
        ),
    ];
    for (d, cipher_id, cipher) in cases {
        let (conn, _ev) = connect(&lab, "c1").await;
        let mut req = default_negotiate_request(&[d], Guid::random(), false);
        if let Some(id) = cipher_id {
            for c in &mut req.contexts {
                if let NegotiateContext::Encryption { ciphers } = c {
                    *ciphers = vec![id];
                }
            }
        }
        conn.negotiate(&req, &RequestOptions::default())
            .await
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(conn.negotiated().unwrap().cipher, Some(cipher), "{d:?}");
        let session = conn
            .session_setup(&SessionSetupOptions::new(creds(&lab)))
            .await
            .unwrap();
        let tree = session.tree_connect(&unc(&lab, "secret")).await.unwrap();
        assert!(tree.share().encrypt_data(), "{d:?} {cipher:?}");
        assert!(tree.encrypts());
        let c = tree
            .create(&CreateRequest::new(unique("enc")))
            .await
            .unwrap();
        assert!(c.encrypted, "{d:?} {cipher:?}");
        let f = c.ok().unwrap().file_id;
        let w = tree.write(f, 0, b"secret".to_vec(), false).await.unwrap();
        assert!(w.encrypted);
        w.ok().unwrap();
        let r = tree.read(f, 0, 6).await.unwrap();
        assert!(r.encrypted);
        assert_eq!(r.ok().unwrap().data, b"secret");
        tree.close(f).await.unwrap().ok().unwrap();
    }
    // SMB 2.1 cannot encrypt: the tree connect is refused.
    let (conn, _ev) = connect(&lab, "c1").await;
    conn.negotiate(
        &default_negotiate_request(&[Dialect::SMB2_1], Guid::random(), false),
        &RequestOptions::default(),
    )
    .await
    .unwrap()
    .ok()
    .unwrap();
    let session = conn
        .session_setup(&SessionSetupOptions::new(creds(&lab)))
        .await
        .unwrap();
    let err = session
        .tree_connect(&unc(&lab, "secret"))
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(NtStatus::STATUS_ACCESS_DENIED),
        "{err:?}"
    );
    lab.down().await.unwrap();
}

/// Wrong password: the exact status, no session.
#[tokio::test]
async fn wrong_password_is_logon_failure() {
    let lab = lab_up("smb2-logon").await;
    let (conn, _ev) = connect(&lab, "c1").await;
    conn.negotiate(
        &default_negotiate_request(&Dialect::ALL, Guid::random(), false),
        &RequestOptions::default(),
    )
    .await
    .unwrap()
    .ok()
    .unwrap();
    let (u, _) = lab.credentials();
    let err = conn
        .session_setup(&SessionSetupOptions::new(Credentials::new(u, "wrong")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(NtStatus::STATUS_LOGON_FAILURE));
    lab.down().await.unwrap();
}

/// A signed READ response altered in flight (by a proxy between client and
/// server) is rejected with Error::BadSignature, on every signing algorithm.
#[tokio::test]
async fn tampered_signed_response_is_rejected() {
    use smb2::transport::{read_frame, write_frame};
    let lab = lab_up("smb2-tamper").await;
    for d in [Dialect::SMB2_1, Dialect::SMB3_0, Dialect::SMB3_1_1] {
        let tcp = within(
            "a TCP connection from c1 to fs1:445",
            std::time::Duration::from_secs(10),
            lab.connect("c1", server(&lab)),
        )
        .await
        .unwrap();
        let (client_side, proxy_side) = tokio::io::duplex(1 << 20);
        let (mut sr, mut sw) = tokio::io::split(tcp);
        let (mut pr, mut pw) = tokio::io::split(proxy_side);
        tokio::spawn(async move {
            while let Ok(f) = read_frame(&mut pr).await {
                if write_frame(&mut sw, &f).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Ok(mut f) = read_frame(&mut sr).await {
                // READ response (command 8) with data: flip its last byte.
                if f.len() > 80 && f[..4] == [0xFE, b'S', b'M', b'B'] && f[12] == 8 {
                    let n = f.len() - 1;
                    f[n] ^= 0x01;
                }
                if write_frame(&mut pw, &f).await.is_err() {
                    break;
                }
            }
        });
        let (conn, _ev) = Connection::from_io(client_side);
        conn.negotiate(
            &default_negotiate_request(&[d], Guid::random(), true),
            &RequestOptions::default(),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
        let session = conn
            .session_setup(&SessionSetupOptions::new(creds(&lab)))
            .await
            .unwrap();
        let tree = session.tree_connect(&unc(&lab, "share")).await.unwrap();
        let f = tree
            .create(&CreateRequest::new(unique("tamper")))
            .await
            .unwrap()
            .ok()
            .unwrap()
            .file_id;
        tree.write(f, 0, b"0123456789".to_vec(), false)
            .await
            .unwrap()
            .ok()
            .unwrap();
        match tree.read(f, 0, 10).await {
            Err(Error::BadSignature { command, raw, .. }) => {
                assert_eq!(command, Command::Read);
                assert_eq!(raw.last(), Some(&(b'9' ^ 1)));
            }
            other => panic!("{d:?}: {other:?}"),
        }
        tree.close(f).await.unwrap().ok().unwrap();
    }
    lab.down().await.unwrap();
}

/// All dialects offered: the server picks 3.1.1. A client that asks for
/// encryption on an ordinary share gets every response encrypted.
#[tokio::test]
async fn multi_dialect_negotiate_and_client_chosen_encryption() {
    let lab = lab_up("smb2-multi").await;
    let (conn, _ev) = connect(&lab, "c1").await;
    let r = conn
        .negotiate(
            &default_negotiate_request(&Dialect::ALL, Guid::random(), false),
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.body().unwrap().dialect_revision, Dialect::SMB3_1_1);
    let mut o = SessionSetupOptions::new(creds(&lab));
    o.encrypt = true;
    let session = conn.session_setup(&o).await.unwrap();
    assert!(session.encrypts());
    let tree = session.tree_connect(&unc(&lab, "share")).await.unwrap();
    assert!(!tree.share().encrypt_data());
    let c = tree
        .create(&CreateRequest::new(unique("sess-enc")))
        .await
        .unwrap();
    assert!(c.encrypted);
    let f = c.ok().unwrap().file_id;
    let echo = conn.echo(&RequestOptions::default()).await.unwrap();
    assert!(!echo.encrypted, "ECHO outside the session stays plain");
    let cl = tree.close(f).await.unwrap();
    assert!(cl.encrypted);
    cl.ok().unwrap();
    lab.down().await.unwrap();
}
