//! A tree connect and the file operations that run on it.

use crate::connection::RequestOptions;
use crate::error::Result;
use crate::response::Response;
use crate::session::{Pending, Session};
use crate::wire::close::{CloseRequest, CloseResponse};
use crate::wire::create::{CreateRequest, CreateResponse};
use crate::wire::flush::{FlushRequest, FlushResponse};
use crate::wire::info::{QueryInfoRequest, QueryInfoResponse, SetInfoRequest, SetInfoResponse};
use crate::wire::lock::{LockElement, LockRequest, LockResponse};
use crate::wire::oplock_break::{
    LeaseBreakAck, LeaseBreakAcknowledgment, LeaseBreakResponse, OplockBreak,
    OplockBreakAcknowledgment, OplockBreakResponse,
};
use crate::wire::read::{ReadRequest, ReadResponse};
use crate::wire::tree_connect::TreeConnectResponse;
use crate::wire::tree_disconnect::{TreeDisconnectRequest, TreeDisconnectResponse};
use crate::wire::write::{WriteRequest, WriteResponse, SMB2_WRITEFLAG_WRITE_THROUGH};
use crate::wire::{FileId, HeaderRepr, RequestBody};

/// A connected share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tree {
    session: Session,
    tree_id: u32,
    response: TreeConnectResponse,
    header: HeaderRepr,
}

impl Tree {
    pub(crate) fn new(
        session: Session,
        tree_id: u32,
        response: TreeConnectResponse,
        header: HeaderRepr,
    ) -> Self {
        Tree {
            session,
            tree_id,
            response,
            header,
        }
    }
    pub fn id(&self) -> u32 {
        self.tree_id
    }
    pub fn session(&self) -> &Session {
        &self.session
    }
    /// The TREE_CONNECT response: ShareType, ShareFlags, Capabilities
    /// (CONTINUOUS_AVAILABILITY, SCALEOUT, CLUSTER), MaximalAccess.
    pub fn share(&self) -> &TreeConnectResponse {
        &self.response
    }
    /// The TREE_CONNECT response header.
    pub fn connect_header(&self) -> &HeaderRepr {
        &self.header
    }
    /// Whether requests on this tree are encrypted by default.
    pub fn encrypts(&self) -> bool {
        self.session.encrypts()
            || (self.response.encrypt_data() && self.session.dialect().is_smb3())
    }

    /// Sends any request on this tree.
    pub async fn submit<B: RequestBody>(
        &self,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<Pending<B::Response>> {
        self.session
            .submit(self.tree_id, self.response.encrypt_data(), body, opts)
            .await
    }

    /// Sends any request on this tree and waits for the final response.
    pub async fn request<B: RequestBody>(
        &self,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<Response<B::Response>> {
        self.submit(body, opts).await?.wait().await
    }

    pub async fn create(&self, req: &CreateRequest) -> Result<Response<CreateResponse>> {
        self.request(req, &RequestOptions::default()).await
    }
    pub async fn close(&self, file_id: FileId) -> Result<Response<CloseResponse>> {
        self.request(
            &CloseRequest { flags: 0, file_id },
            &RequestOptions::default(),
        )
        .await
    }
    pub async fn flush(&self, file_id: FileId) -> Result<Response<FlushResponse>> {
        self.request(&FlushRequest { file_id }, &RequestOptions::default())
            .await
    }
    pub async fn read(
        &self,
        file_id: FileId,
        offset: u64,
        length: u32,
    ) -> Result<Response<ReadResponse>> {
        self.request(
            &ReadRequest {
                length,
                offset,
                file_id,
                ..Default::default()
            },
            &RequestOptions::default(),
        )
        .await
    }
    /// WRITE; `write_through` sets SMB2_WRITEFLAG_WRITE_THROUGH.
    pub async fn write(
        &self,
        file_id: FileId,
        offset: u64,
        data: Vec<u8>,
        write_through: bool,
    ) -> Result<Response<WriteResponse>> {
        self.request(
            &WriteRequest {
                offset,
                file_id,
                remaining_bytes: 0,
                flags: if write_through {
                    SMB2_WRITEFLAG_WRITE_THROUGH
                } else {
                    0
                },
                data,
            },
            &RequestOptions::default(),
        )
        .await
    }
    /// LOCK with the given elements (use SMB2_LOCKFLAG_UNLOCK to unlock).
    pub async fn lock(
        &self,
        file_id: FileId,
        locks: Vec<LockElement>,
    ) -> Result<Response<LockResponse>> {
        self.request(
            &LockRequest {
                lock_sequence: 0,
                file_id,
                locks,
            },
            &RequestOptions::default(),
        )
        .await
    }
    pub async fn query_info(&self, req: &QueryInfoRequest) -> Result<Response<QueryInfoResponse>> {
        self.request(req, &RequestOptions::default()).await
    }
    pub async fn set_info(&self, req: &SetInfoRequest) -> Result<Response<SetInfoResponse>> {
        self.request(req, &RequestOptions::default()).await
    }
    /// Oplock Break Acknowledgment.
    pub async fn oplock_break_ack(
        &self,
        file_id: FileId,
        oplock_level: u8,
    ) -> Result<Response<OplockBreakResponse>> {
        self.request(
            &OplockBreakAcknowledgment(OplockBreak {
                oplock_level,
                file_id,
            }),
            &RequestOptions::default(),
        )
        .await
    }
    /// Lease Break Acknowledgment.
    pub async fn lease_break_ack(
        &self,
        lease_key: [u8; 16],
        lease_state: u32,
    ) -> Result<Response<LeaseBreakResponse>> {
        self.request(
            &LeaseBreakAcknowledgment(LeaseBreakAck {
                flags: 0,
                lease_key,
                lease_state,
                lease_duration: 0,
            }),
            &RequestOptions::default(),
        )
        .await
    }
    /// TREE_DISCONNECT.
    pub async fn disconnect(&self) -> Result<Response<TreeDisconnectResponse>> {
        self.request(&TreeDisconnectRequest, &RequestOptions::default())
            .await
    }
}
