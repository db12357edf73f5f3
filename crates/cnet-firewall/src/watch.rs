//! Hears the table's deletion as it happens. nf_tables announces every committed change to the
//! netlink group `NFNLGRP_NFTABLES` (what `nft monitor` prints); [`TableWatch`] listens there and
//! tells when `table inet NAME` was deleted, so the daemon can put it back at once instead of
//! asking `nft` on a timer. Asking costs a process start and a ruleset dump each time; a profile of
//! the embedded DNS under load showed that `nft` run every 2 s taking a core for 2 ms, the one
//! stall of cnetd's own making (benches/results.md, "The DNS tail, profiled"). The watch only listens: every change still
//! goes through `nft` (the crate's rule).

use std::io;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE`.
const DELTABLE: u16 = (10 << 8) | 2;
/// `NFNLGRP_NFTABLES`.
const GROUP_NFTABLES: u32 = 7;
/// `NFTA_TABLE_NAME`.
const ATTR_TABLE_NAME: u16 = 1;
/// `NFPROTO_INET`: cnet's table is `inet`.
const FAMILY_INET: u8 = 1;
const NLMSG_HEADER: usize = 16;
const NFGENMSG: usize = 4;

/// What the watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableEvent {
    /// The table was deleted (by anyone, `nft flush ruleset` included).
    Deleted,
    /// Notifications were dropped (the socket's buffer overflowed): whatever happened is unknown,
    /// so the caller should look.
    Lost,
}

/// A netlink socket subscribed to nf_tables' notifications in the current network namespace.
pub struct TableWatch {
    socket: AsyncFd<netlink_sys::Socket>,
    table: Vec<u8>,
    buf: Vec<u8>,
}

impl TableWatch {
    /// Listens for the deletion of `table inet TABLE` in the caller's network namespace. Needs
    /// CAP_NET_ADMIN and a tokio runtime.
    pub fn new(table: &str) -> io::Result<TableWatch> {
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.add_membership(GROUP_NFTABLES)?;
        socket.set_non_blocking(true)?;
        // SAFETY: the socket owns its descriptor, closes it only when dropped (with the AsyncFd
        // that owns it) and answers as_raw_fd with that one descriptor for its whole life.
        let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?;
        Ok(TableWatch { socket, table: table.as_bytes().to_vec(), buf: vec![0; 64 * 1024] })
    }

    /// Waits for the table's deletion (or for lost notifications).
    pub async fn next(&mut self) -> io::Result<TableEvent> {
        loop {
            let mut ready = self.socket.readable().await?;
            match ready.try_io(|fd| fd.get_ref().recv(&mut &mut self.buf[..], 0)) {
                Ok(Ok(n)) => {
                    if deletes_table(&self.buf[..n], &self.table) {
                        return Ok(TableEvent::Deleted);
                    }
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(TableEvent::Lost),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Whether a datagram of nf_tables notifications holds the deletion of `table inet TABLE`.
pub fn deletes_table(datagram: &[u8], table: &[u8]) -> bool {
    let mut rest = datagram;
    while rest.len() >= NLMSG_HEADER {
        let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HEADER || len > rest.len() {
            return false;
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let payload = &rest[NLMSG_HEADER..len];
        if kind == DELTABLE
            && payload.len() >= NFGENMSG
            && payload[0] == FAMILY_INET
            && let Some(name) = attribute(&payload[NFGENMSG..], ATTR_TABLE_NAME)
            && name.split(|&b| b == 0).next() == Some(table)
        {
            return true;
        }
        rest = &rest[align4(len).min(rest.len())..];
    }
    false
}

/// The value of the first attribute of type `wanted` in a run of netlink attributes.
fn attribute(mut attrs: &[u8], wanted: u16) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == wanted {
            return Some(&attrs[4..len]);
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    None
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE`.
    const NEWTABLE: u16 = 10 << 8;

    fn message(kind: u16, family: u8, name: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        let value = [name.as_bytes(), &[0]].concat();
        attr.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        attr.extend_from_slice(&ATTR_TABLE_NAME.to_ne_bytes());
        attr.extend_from_slice(&value);
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let len = NLMSG_HEADER + NFGENMSG + attr.len();
        let mut msg = Vec::new();
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(&[family, 0, 0, 0]);
        msg.extend_from_slice(&attr);
        msg
    }

    #[test]
    fn the_deletion_of_the_table_is_told_from_others() {
        assert!(deletes_table(&message(DELTABLE, FAMILY_INET, "cnet"), b"cnet"));
        assert!(!deletes_table(&message(DELTABLE, FAMILY_INET, "cnet2"), b"cnet"));
        assert!(!deletes_table(&message(DELTABLE, FAMILY_INET, "cne"), b"cnet"));
        // ip cnet is another table than inet cnet; NFT_MSG_NEWTABLE is no deletion.
        assert!(!deletes_table(&message(DELTABLE, 2, "cnet"), b"cnet"));
        assert!(!deletes_table(&message(NEWTABLE, FAMILY_INET, "cnet"), b"cnet"));
    }

    #[test]
    fn a_deletion_later_in_a_datagram_is_found() {
        let datagram = [message(DELTABLE, FAMILY_INET, "other"), message(DELTABLE, FAMILY_INET, "cnet")].concat();
        assert!(deletes_table(&datagram, b"cnet"));
    }

    #[test]
    fn malformed_datagrams_are_not_deletions() {
        let whole = message(DELTABLE, FAMILY_INET, "cnet");
        for cut in 0..whole.len() {
            assert!(!deletes_table(&whole[..cut], b"cnet"), "cut at {cut}");
        }
        let mut bad_len = whole.clone();
        bad_len[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(!deletes_table(&bad_len, b"cnet"));
    }
}
