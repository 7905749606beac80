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
