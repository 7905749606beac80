//! Node links over rtnetlink: the kernel wire (one bridge in the switch namespace, one veth
//! pair per node: switch end named after the node, node end `eth0`; one network only), and
//! addressing a node's interfaces (`eth0`, `eth1`, ...: one per network it joins).

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

use crate::netns::NetNs;
use crate::LabError;

/// Without `topology.networks` every node's address is on-link for every other: one flat /15.
/// Each network is on-link only for its own subnet; no gateway, no default route anywhere.
pub const LAB_PREFIX_LEN: u8 = 15;
pub const BRIDGE: &str = "br0";
pub const NODE_IF: &str = "eth0";

/// An rtnetlink handle whose socket lives in `ns`.
pub fn handle_in(ns: &NetNs) -> Result<Handle, LabError> {
    // The socket must be made inside `ns`; registering it with the reactor needs the runtime.
    let runtime = tokio::runtime::Handle::current();
    let (conn, handle) = ns.run(move || {
        let _enter = runtime.enter();
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| LabError::io("open rtnetlink socket", e))?;
        Ok((conn, handle))
    })?;
    tokio::spawn(conn);
    Ok(handle)
}

pub async fn index_of(handle: &Handle, name: &str) -> Result<u32, LabError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(LabError::Other(format!("no interface {name}"))),
        Err(e) => Err(LabError::netlink(format!("find interface {name}"), e)),
    }
}

pub async fn set_up(handle: &Handle, name: &str) -> Result<(), LabError> {
    let index = index_of(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| LabError::netlink(format!("set {name} up"), e))
}

/// Create the switch: bridge `br0`, up.
pub async fn create_switch(switch: &Handle) -> Result<(), LabError> {
    switch
        .link()
        .add(LinkBridge::new(BRIDGE).up().build())
        .execute()
        .await
        .map_err(|e| LabError::netlink("create bridge", e))?;
    set_up(switch, "lo").await
}

/// Plug a node into the switch: a veth pair made in one request, its peer born inside the
/// node's namespace as `eth0`, the switch end enslaved to the bridge.
pub async fn plug(
    switch: &Handle,
    node_name: &str,
    node_ns: &NetNs,
    address: Ipv4Addr,
    prefix_len: u8,
    mtu: u32,
) -> Result<(), LabError> {
    let bridge = index_of(switch, BRIDGE).await?;
    let peer = LinkUnspec::new_with_name(NODE_IF)
        .setns_by_fd(node_ns.raw_fd())
        .mtu(mtu)
        .build();
    let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(node_name.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .controller(bridge)
        .mtu(mtu)
        .up()
        .build();
    switch
        .link()
        .add(veth)
        .execute()
        .await
        .map_err(|e| LabError::netlink(format!("create link for {node_name}"), e))?;

    prepare_node(node_ns).await?;
    configure_link(node_name, node_ns, NODE_IF, address, prefix_len, Some(mtu)).await
}

/// Inside a node: `lo` up, and `eth0` (a veth end or a TAP) addressed on the flat /15, sized
/// and up.
pub async fn configure_node(
    node_name: &str,
    node_ns: &NetNs,
    address: Ipv4Addr,
    mtu: Option<u32>,
) -> Result<(), LabError> {
    prepare_node(node_ns).await?;
    configure_link(node_name, node_ns, NODE_IF, address, LAB_PREFIX_LEN, mtu).await
}

/// Inside a node, once: IPv6 off and `lo` up.
pub async fn prepare_node(node_ns: &NetNs) -> Result<(), LabError> {
    // IPv4 only: no IPv6 autoconfiguration chatter on the lab's links and captures.
    node_ns.run(|| {
        for conf in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
            if std::path::Path::new(&path).exists() {
                std::fs::write(&path, "1").map_err(|e| LabError::io(format!("write {path}"), e))?;
            }
        }
        Ok(())
    })?;
    let node = handle_in(node_ns)?;
    set_up(&node, "lo").await
}

/// A node on several networks: `ip_forward=0` (nothing is routed between networks),
/// `arp_ignore=1` and `arp_announce=2` (an address is answered for and announced only on its
/// own network's interface, as on a multi-homed storage host; the kernel's default answers ARP
/// for any of its addresses on any interface, which would let a frame for one network's
/// address arrive through another).
pub fn separate_networks(node_ns: &NetNs) -> Result<(), LabError> {
    node_ns.run(|| {
        for (path, value) in [
            ("/proc/sys/net/ipv4/ip_forward", "0"),
            ("/proc/sys/net/ipv4/conf/all/arp_ignore", "1"),
            ("/proc/sys/net/ipv4/conf/all/arp_announce", "2"),
        ] {
            std::fs::write(path, value).map_err(|e| LabError::io(format!("write {path}"), e))?;
        }
        Ok(())
    })
}

/// Inside a node: interface `interface` addressed (`address/prefix_len`, so only its own
/// subnet is on-link), sized and up.
pub async fn configure_link(
    node_name: &str,
    node_ns: &NetNs,
    interface: &str,
    address: Ipv4Addr,
    prefix_len: u8,
    mtu: Option<u32>,
) -> Result<(), LabError> {
    let node = handle_in(node_ns)?;
    let eth = index_of(&node, interface).await?;
    if let Some(mtu) = mtu {
        node.link()
            .set(LinkUnspec::new_with_index(eth).mtu(mtu).build())
            .execute()
            .await
            .map_err(|e| LabError::netlink(format!("MTU {mtu} on {node_name}"), e))?;
    }
    node.address()
        .add(eth, address.into(), prefix_len)
        .execute()
        .await
        .map_err(|e| LabError::netlink(format!("address {address} on {node_name}"), e))?;
    set_up(&node, interface).await
}
