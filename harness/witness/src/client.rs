//! The calls a witness client makes (MS-SWN 3.2): find the witness endpoint through the
//! endpoint mapper, bind at packet privacy, then GetInterfaceList, Register(Ex),
//! AsyncNotify (which the server answers only when it has something to say) and
//! UnRegister.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use smb2::ntlm::Credentials;
use tokio::net::TcpStream;

use crate::epm::{self, EptMapResponse, EPM_PORT, OPNUM_EPT_MAP};
use crate::ndr::ContextHandle;
use crate::pdu::AuthLevel;
use crate::rpc::{Association, Auth};
use crate::swn::{
    self, opnum, werror, InterfaceInfo, InterfaceList, NotifyResponse, RegisterEx, WITNESS,
};
use crate::Error;

/// Asks the endpoint mapper at `server`:135 for the witness interface's TCP port.
pub async fn ept_map_witness(server: IpAddr) -> Result<u16, Error> {
    let at = SocketAddr::new(server, EPM_PORT);
    let stream = TcpStream::connect(at).await.map_err(|source| Error::Io {
        context: format!("connect to the endpoint mapper at {at}"),
        source,
    })?;
    ept_map_witness_on(stream).await
}

/// Like [`ept_map_witness`], over a stream already connected to port 135.
pub async fn ept_map_witness_on(stream: TcpStream) -> Result<u16, Error> {
    let epm = Association::bind_stream(stream, epm::EPMAPPER, Auth::None).await?;
    let at = epm.peer();
    let stub = epm
        .call(OPNUM_EPT_MAP, &epm::ept_map_request(WITNESS, 4))
        .await?;
    let r = EptMapResponse::parse(&stub)?;
    r.towers
        .iter()
        .find(|t| t.interface.uuid == WITNESS.uuid && t.port != 0)
        .map(|t| t.port)
        .ok_or(Error::NotRegistered {
            at,
            status: r.status,
        })
}

fn check(call: &'static str, code: u32) -> Result<(), Error> {
    if code == werror::ERROR_SUCCESS {
        Ok(())
    } else {
        Err(Error::Werror {
            call,
            code,
            name: werror::name(code),
        })
    }
}

/// A bound witness association. Cheap to clone: clones share the association, so one
/// task can keep an AsyncNotify outstanding while another registers or unregisters.
#[derive(Debug, Clone)]
pub struct WitnessClient {
    assoc: Arc<Association>,
}

impl WitnessClient {
    /// Endpoint mapper, then bind to the witness endpoint with NTLMSSP at packet privacy.
    pub async fn connect(server: IpAddr, creds: &Credentials) -> Result<Self, Error> {
        let port = ept_map_witness(server).await?;
        Self::connect_port(SocketAddr::new(server, port), creds, AuthLevel::PktPrivacy).await
    }

    /// Bind to a known witness endpoint at `level`.
    pub async fn connect_port(
        at: SocketAddr,
        creds: &Credentials,
        level: AuthLevel,
    ) -> Result<Self, Error> {
        let assoc = Association::bind(at, WITNESS, Auth::Ntlm(creds.clone(), level)).await?;
        Ok(WitnessClient {
            assoc: Arc::new(assoc),
        })
    }

    /// Bind over a stream already connected to the witness endpoint.
    pub async fn bind_stream(
        stream: TcpStream,
        creds: &Credentials,
        level: AuthLevel,
    ) -> Result<Self, Error> {
        let assoc =
            Association::bind_stream(stream, WITNESS, Auth::Ntlm(creds.clone(), level)).await?;
        Ok(WitnessClient {
            assoc: Arc::new(assoc),
        })
    }

    pub fn association(&self) -> &Association {
        &self.assoc
    }

    /// WitnessrGetInterfaceList: the cluster's interfaces.
    pub async fn get_interface_list(&self) -> Result<Vec<InterfaceInfo>, Error> {
        let stub = self.assoc.call(opnum::GET_INTERFACE_LIST, &[]).await?;
        let list = InterfaceList::parse(&stub)?;
        check("WitnessrGetInterfaceList", list.status)?;
        Ok(list.interfaces)
    }

    /// WitnessrRegister (version 1).
    pub async fn register(
        &self,
        net_name: &str,
        ip_address: &str,
        client_computer_name: &str,
    ) -> Result<ContextHandle, Error> {
        let stub = swn::register_request(net_name, ip_address, client_computer_name);
        let out = self.assoc.call(opnum::REGISTER, &stub).await?;
        let (handle, status) = swn::parse_register_response(&out)?;
        check("WitnessrRegister", status)?;
        Ok(handle)
    }

    /// WitnessrRegisterEx (version 2).
    pub async fn register_ex(&self, args: &RegisterEx) -> Result<ContextHandle, Error> {
        let out = self.assoc.call(opnum::REGISTER_EX, &args.emit()).await?;
        let (handle, status) = swn::parse_register_response(&out)?;
        check("WitnessrRegisterEx", status)?;
        Ok(handle)
    }

    /// WitnessrAsyncNotify: waits until the server has a notification for `handle`.
    pub async fn async_notify(&self, handle: &ContextHandle) -> Result<NotifyResponse, Error> {
        let out = self
            .assoc
            .call(opnum::ASYNC_NOTIFY, &swn::handle_request(handle))
            .await?;
        let (resp, status) = swn::parse_async_notify_response(&out)?;
        check("WitnessrAsyncNotify", status)?;
        resp.ok_or_else(|| Error::Unexpected("AsyncNotify succeeded with no response".into()))
    }

    /// WitnessrUnRegister.
    pub async fn unregister(&self, handle: &ContextHandle) -> Result<(), Error> {
        let out = self
            .assoc
            .call(opnum::UNREGISTER, &swn::handle_request(handle))
            .await?;
        check("WitnessrUnRegister", swn::parse_status_response(&out)?)
    }
}
