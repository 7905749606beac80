//! TAP devices made inside a node's namespace; the harness keeps the file descriptor, so every
//! frame the node sends comes to us, and every frame we write is what the node receives.
//!
//! Each frame is read and written behind a virtio-net header (`IFF_VNET_HDR`, see vnet.rs),
//! and the device offers checksum and TCPv4 segmentation offload, so the node's kernel hands
//! over one segment of up to 64 KiB where it would have sent many MTU frames: the wire
//! forwards those whole, at the kernel's pace, and splits them only where a fault needs
//! frames. TSO6 and UFO are not offered: the lab is IPv4, and the kernel segments anything
//! else itself before the wire sees it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::netns::NetNs;
use crate::LabError;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `_IOW('T', 208, unsigned int)`: which offloads the "device" (we) can finish.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// `_IOW('T', 220, int)`: the virtio-net header's fields are little-endian on any host.
const TUNSETVNETLE: libc::c_ulong = 0x4004_54dc;
const IFF_VNET_HDR: libc::c_int = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Create TAP `name` in `ns` (the device belongs to the namespace that opened /dev/net/tun).
/// The descriptor is non-blocking; the device vanishes when it is closed.
pub fn create(ns: &NetNs, name: &str) -> Result<OwnedFd, LabError> {
    let name = name.to_string();
    ns.run(move || {
        // SAFETY: a NUL-terminated path literal and plain flags; the result is checked.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if fd < 0 {
            return Err(LabError::io(
                "open /dev/net/tun (kernel needs CONFIG_TUN)",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` was just returned by open(2), is valid, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI | IFF_VNET_HDR) as libc::c_short,
            _pad: [0; 22],
        };
        let bytes = name.as_bytes();
        if bytes.len() >= libc::IFNAMSIZ {
            return Err(LabError::Other(format!("interface name {name} too long")));
        }
        req.name[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `IfReq` has its layout and size
        // (name + flags + padding) and lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
            return Err(LabError::io(
                format!("TUNSETIFF {name}"),
                std::io::Error::last_os_error(),
            ));
        }
        let le: libc::c_int = 1;
        // SAFETY: TUNSETVNETLE reads an int through the pointer, which lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETVNETLE as _, &le) } < 0 {
            return Err(LabError::io(
                format!("TUNSETVNETLE {name}"),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: TUNSETOFFLOAD takes its flags as the integer argument itself.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, TUN_F_CSUM | TUN_F_TSO4) } < 0 {
            return Err(LabError::io(
                format!("TUNSETOFFLOAD {name}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(fd)
    })
}
