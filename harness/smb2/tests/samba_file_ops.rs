//! Locks, query/set info (rename, delete-on-close), MxAc/QFid contexts and
//! batch-oplock breaks against a real Samba.

mod common;
use std::time::Duration;

use common::*;
use smb2::wire::create::{disposition, oplock_level};
use smb2::wire::info::{class, QueryInfoRequest, SetInfoRequest, SMB2_0_INFO_FILE};
use smb2::wire::lock::*;
use smb2::wire::oplock_break::BreakNotification;
use smb2::*;

#[tokio::test]
async fn locks_info_and_contexts() {
    let lab = lab_up("smb2-file-ops").await;
    let (_c, _e, _s, tree) =
        open_tree(&lab, "c1", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let (_c2, _e2, _s2, tree2) =
        open_tree(&lab, "c2", &[Dialect::SMB3_0_2], Guid::random(), "share").await;
    let name = unique("ops");
    let c = tree
        .create(
            &CreateRequest {
                create_disposition: disposition::FILE_CREATE,
                ..CreateRequest::new(name.clone())
            }
            .context(CreateContext::QueryMaximalAccessRequest { timestamp: None })
            .context(CreateContext::QueryOnDiskId),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let (mx_status, mx) = c.maximal_access().expect("MxAc response");
    assert_eq!(mx_status, 0);
    assert_eq!(mx & 0x1f01ff, 0x1f01ff);
    assert!(c
        .contexts
        .iter()
        .any(|x| matches!(x, CreateContext::OnDiskId { .. })));
    tree.write(c.file_id, 0, vec![7; 100], false)
        .await
        .unwrap()
        .ok()
        .unwrap();

    // Byte-range locks: exclusive 0..10 conflicts for another open.
    let excl = LockElement {
        offset: 0,
        length: 10,
        flags: SMB2_LOCKFLAG_EXCLUSIVE_LOCK | SMB2_LOCKFLAG_FAIL_IMMEDIATELY,
    };
    tree.lock(c.file_id, vec![excl])
        .await
        .unwrap()
        .ok()
        .unwrap();
    let other = tree2
        .create(&CreateRequest::new(name.clone()))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let conflict = tree2.lock(other.file_id, vec![excl]).await.unwrap();
    assert_eq!(conflict.status(), NtStatus::STATUS_LOCK_NOT_GRANTED);
    let w = tree2
        .write(other.file_id, 5, vec![1; 2], false)
        .await
        .unwrap();
    assert_eq!(w.status(), NtStatus::STATUS_FILE_LOCK_CONFLICT);
    let unlock = LockElement {
        offset: 0,
        length: 10,
        flags: SMB2_LOCKFLAG_UNLOCK,
    };
    tree.lock(c.file_id, vec![unlock])
        .await
        .unwrap()
        .ok()
        .unwrap();
    let again = tree.lock(c.file_id, vec![unlock]).await.unwrap();
    assert_eq!(again.status(), NtStatus::STATUS_RANGE_NOT_LOCKED);
    tree2
        .lock(other.file_id, vec![excl])
        .await
        .unwrap()
        .ok()
        .unwrap();
    tree2.close(other.file_id).await.unwrap().ok().unwrap();

    // Query FileStandardInformation.
    let q = tree
        .query_info(&QueryInfoRequest {
            info_type: SMB2_0_INFO_FILE,
            file_info_class: class::FILE_STANDARD_INFORMATION,
            output_buffer_length: 1024,
            file_id: c.file_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .ok()
        .unwrap();
    let std_info = q.standard().unwrap();
    assert_eq!(std_info.end_of_file, 100);
    assert!(!std_info.delete_pending);

    // Rename, then delete-on-close.
    let renamed = unique("renamed");
    tree.set_info(&SetInfoRequest::rename(c.file_id, &renamed, false))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let old = tree2
        .create(&CreateRequest {
            create_disposition: disposition::FILE_OPEN,
            ..CreateRequest::new(name.clone())
        })
        .await
        .unwrap();
    assert_eq!(old.status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    tree.set_info(&SetInfoRequest::disposition(c.file_id, true))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let pending = tree2
        .create(&CreateRequest {
            create_disposition: disposition::FILE_OPEN,
            ..CreateRequest::new(renamed.clone())
        })
        .await
        .unwrap();
    assert_eq!(pending.status(), NtStatus::STATUS_DELETE_PENDING);
    tree.close(c.file_id).await.unwrap().ok().unwrap();
    let gone = tree2
        .create(&CreateRequest {
            create_disposition: disposition::FILE_OPEN,
            ..CreateRequest::new(renamed)
        })
        .await
        .unwrap();
    assert_eq!(gone.status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    lab.down().await.unwrap();
}

/// A batch oplock is broken to level II by a second opener; the break ack
/// lets the second open complete.
#[tokio::test]
async fn batch_oplock_break_and_ack() {
    let lab = lab_up("smb2-oplock").await;
    let (_c, mut ev, _s, tree) =
        open_tree(&lab, "c1", &[Dialect::SMB2_1], Guid::random(), "share").await;
    let (_c2, _e2, _s2, tree2) =
        open_tree(&lab, "c2", &[Dialect::SMB2_1], Guid::random(), "share").await;
    let name = unique("oplock");
    let first = tree
        .create(&CreateRequest {
            requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_BATCH,
            ..CreateRequest::new(name.clone())
        })
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(first.oplock_level, oplock_level::SMB2_OPLOCK_LEVEL_BATCH);
    let second = tree2
        .submit(
            &CreateRequest::new(name.clone()),
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    // Samba breaks the oplock as soon as the second open arrives; 10 s for a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let brk = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, ev.recv()).await {
            Ok(Some(Event::Break { notification, .. })) => break notification.unwrap(),
            Ok(Some(e)) => seen.push(e),
            other => panic!("no oplock break within 10 s: {other:?}, after {seen:?}"),
        }
    };
    let BreakNotification::Oplock(o) = brk else {
        panic!("{brk:?}")
    };
    assert_eq!(o.file_id, first.file_id);
    assert_eq!(o.oplock_level, oplock_level::SMB2_OPLOCK_LEVEL_II);
    let ack = tree
        .oplock_break_ack(first.file_id, oplock_level::SMB2_OPLOCK_LEVEL_II)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(ack.0.oplock_level, oplock_level::SMB2_OPLOCK_LEVEL_II);
    let second = second.wait().await.unwrap();
    assert_eq!(second.status(), NtStatus::STATUS_SUCCESS);
    assert_eq!(
        second.body().unwrap().oplock_level,
        oplock_level::SMB2_OPLOCK_LEVEL_NONE
    );
    lab.down().await.unwrap();
}
