//! The kernel's audit netlink interface, without auditd: the two requests semble makes
//! (`AUDIT_GET`: is audit on; `AUDIT_SET`: turn it on, only when the operator said so) and the
//! read-only multicast group that carries every record (`AUDIT_NLGRP_READLOG`).
//!
//! Messages are encoded and decoded by `netlink-packet-audit`; the sockets are plain netlink
//! sockets (nix). Nothing here needs `unsafe`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use netlink_packet_audit::{AuditMessage, StatusMessage, AUDIT_NLGRP_READLOG};
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

/// `AUDIT_STATUS_ENABLED` (`linux/audit.h`): the `enabled` field of an `AUDIT_SET` is valid.
const AUDIT_STATUS_ENABLED: u32 = 0x0001;

/// The part of the kernel's audit status semble reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// 0: off, 1: on, 2: on and locked (no change until reboot).
    pub enabled: u32,
    /// The registered audit daemon's pid (0: none; records then go to the kernel log).
    pub pid: u32,
}

fn netlink(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if nonblocking {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    Ok(socket(AddressFamily::Netlink, SockType::Raw, flags, SockProtocol::NetlinkAudit)?)
}

/// A socket that receives every audit record the kernel emits (Landlock's among them), from
/// now on. Binding to the group needs `CAP_AUDIT_READ`; the socket keeps working after the
/// caller drops it. Non-blocking.
pub fn reader() -> io::Result<OwnedFd> {
    let fd = netlink(true)?;
    // Records can come in bursts (a workload failing in a loop): room for a few thousand.
    let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1 << (AUDIT_NLGRP_READLOG - 1)))?;
    Ok(fd)
}

/// The records waiting on a [`reader`] socket: `(type, text)`, the text as auditd would log it
/// after `msg=` (`audit(SECONDS.MILLIS:SERIAL): key=value …`). Stops at the first empty read.
pub fn records(fd: &OwnedFd, out: &mut Vec<(u16, String)>) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) => return Ok(()),
            // The kernel dropped records for this socket (its buffer was full): go on.
            Err(nix::errno::Errno::ENOBUFS) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(());
        }
        // Multicast records are one message per datagram; the kernel's length field may not
        // count the text's end, so the datagram's size is what is read.
        if n < 16 {
            continue;
        }
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let text = String::from_utf8_lossy(&buf[16..n]).trim_end_matches(['\0', '\n']).to_string();
        out.push((kind, text));
    }
}

fn request(message: AuditMessage, flags: u16) -> io::Result<Vec<NetlinkMessage<AuditMessage>>> {
    let fd = netlink(false)?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(1, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(message));
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    sendto(fd.as_raw_fd(), &buf, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
    let mut out = Vec::new();
    let mut rbuf = vec![0u8; 8192];
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let n = match recv(fd.as_raw_fd(), &mut rbuf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => break,
            Err(e) => return Err(e.into()),
        };
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes([rbuf[at], rbuf[at + 1], rbuf[at + 2], rbuf[at + 3]]) as usize;
            if len < 16 || at + len > n {
                break;
            }
            let m = NetlinkMessage::<AuditMessage>::deserialize(&rbuf[at..at + len])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let done = match &m.payload {
                NetlinkPayload::Error(e) => {
                    if let Some(code) = e.code {
                        return Err(io::Error::from_raw_os_error(-code.get()));
                    }
                    true
                }
                NetlinkPayload::InnerMessage(_) => flags & NLM_F_ACK == 0,
                _ => false,
            };
            out.push(m);
            if done {
                return Ok(out);
            }
            at += (len + 3) & !3;
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "the kernel did not answer the audit request"));
    }
    Ok(out)
}

/// Whether audit is on, and who reads it (`AUDIT_GET`; needs `CAP_AUDIT_CONTROL`, and the
/// initial pid namespace).
pub fn status() -> io::Result<Status> {
    for m in request(AuditMessage::GetStatus(None), NLM_F_REQUEST)? {
        if let NetlinkPayload::InnerMessage(AuditMessage::GetStatus(Some(s))) = m.payload {
            return Ok(Status { enabled: s.enabled, pid: s.pid });
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "the kernel's answer to AUDIT_GET held no status"))
}

/// Turn audit on (`AUDIT_SET` enabled=1; needs `CAP_AUDIT_CONTROL`). Nothing else changes: no
/// rule is added, no daemon registered.
pub fn enable() -> io::Result<()> {
    let mut s = StatusMessage::new();
    s.mask = AUDIT_STATUS_ENABLED;
    s.enabled = 1;
    request(AuditMessage::SetStatus(s), NLM_F_REQUEST | NLM_F_ACK).map(drop)
}
