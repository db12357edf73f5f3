//! An AF_PACKET socket with a TPACKET_V3 receive ring: the kernel writes packets into blocks of a
//! memory map shared with this process and hands over a whole block at a time (when it is full,
//! or after a timeout), so a batch of packets costs one wake-up and no copy through `recv`. That
//! is what lets one thread keep up with 100k packets/s where a `recv` per packet would not.
//!
//! All the unsafe code of `cnet capture` is here: the socket options, the map and the walk over
//! a block's packets.

use std::ffi::c_void;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail};

use super::filter::Filter;

/// The shape of the ring: `block_nr` blocks of `block_size` bytes, a block handed over at the
/// latest `retire_ms` after its first packet (so a slow trickle still shows up live).
#[derive(Debug, Clone, Copy)]
pub struct RingShape {
    pub block_size: u32,
    pub block_nr: u32,
    pub retire_ms: u32,
}

impl RingShape {
    /// About `kib` KiB of ring in 1 MiB blocks (at least two, so the kernel fills one while the
    /// other is written out).
    pub fn with_kib(kib: u32, retire_ms: u32) -> RingShape {
        const BLOCK: u32 = 1 << 20;
        RingShape { block_size: BLOCK, block_nr: (kib / 1024).max(2), retire_ms }
    }
}

/// Counters of the kernel, since the socket was opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets that passed the filter, including those dropped.
    pub received: u64,
    /// Packets that passed the filter but found no room in the ring.
    pub dropped: u64,
}

/// A receive ring bound to one interface of the calling thread's network namespace.
pub struct RxRing {
    fd: OwnedFd,
    map: NonNull<u8>,
    shape: RingShape,
    next: usize,
    stats: KernelStats,
}

// The map is owned by this value alone; the kernel is the only other writer.
unsafe impl Send for RxRing {}

/// One packet of a block, borrowed from the ring.
pub struct Packet<'a> {
    pub sec: u32,
    pub nsec: u32,
    /// Length on the wire (the captured bytes may be fewer).
    pub len: u32,
    /// The VLAN tag the kernel took out of the frame, if any, as (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
    pub data: &'a [u8],
}

impl RxRing {
    /// Opens a ring on `ifname` (in the namespace of the calling thread) with `filter` attached
    /// before any packet can arrive, so nothing unfiltered is ever seen.
    pub fn open(ifname: &str, filter: &Filter, shape: RingShape) -> anyhow::Result<RxRing> {
        let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(|e| match e {
            nix::errno::Errno::ENODEV => anyhow::anyhow!("no interface {ifname:?}"),
            e => anyhow::anyhow!("looking up interface {ifname:?}: {e}"),
        })?;
        // Protocol 0: the socket receives nothing until it is bound again with ETH_P_ALL below,
        // once the filter and the ring are in place.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("opening an AF_PACKET socket (cnet capture needs root)");
        }
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        bind(&fd, ifindex, 0).with_context(|| format!("binding to {ifname}"))?;
        check_link_type(&fd, ifname)?;

        let prog = libc::sock_fprog { len: filter.insns.len() as u16, filter: filter.insns.as_ptr().cast_mut() };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog).context("attaching the filter")?;
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version).context("asking for TPACKET_V3")?;
        const FRAME: u32 = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: shape.block_size,
            tp_block_nr: shape.block_nr,
            tp_frame_size: FRAME,
            tp_frame_nr: shape.block_size / FRAME * shape.block_nr,
            tp_retire_blk_tov: shape.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .with_context(|| format!("making a receive ring of {} x {} bytes", shape.block_nr, shape.block_size))?;
        let len = shape.block_size as usize * shape.block_nr as usize;
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error()).context("mapping the receive ring");
        }
        let map = NonNull::new(map.cast::<u8>()).context("mmap gave a null map")?;
        let ring = RxRing { fd, map, shape, next: 0, stats: KernelStats::default() };
        bind(&ring.fd, ifindex, (libc::ETH_P_ALL as u16).to_be()).with_context(|| format!("binding to {ifname}"))?;
        Ok(ring)
    }

    /// Waits up to `timeout_ms` for the next block the kernel hands over and passes its packets,
    /// in order, to `each`; then gives the block back. Returns how many packets it passed (0 on a
    /// timeout). An error of `each` stops the walk (the block is given back all the same); an
    /// error of the socket (`ENETDOWN`: the interface went down or away) is returned.
    pub fn next_block<E>(
        &mut self,
        timeout_ms: i32,
        mut each: impl FnMut(&Packet<'_>) -> Result<(), E>,
    ) -> io::Result<Result<usize, E>> {
        let block = self.block(self.next);
        if !block.ready() {
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN | libc::POLLERR, revents: 0 };
            let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            if n < 0 {
                let err = io::Error::last_os_error();
                // A signal: the caller looks at its stop flag and comes back.
                return if err.kind() == io::ErrorKind::Interrupted { Ok(Ok(0)) } else { Err(err) };
            }
            if pfd.revents & libc::POLLERR != 0 {
                let err = socket_error(&self.fd)?;
                if err != 0 {
                    return Err(io::Error::from_raw_os_error(err));
                }
            }
            if !block.ready() {
                return Ok(Ok(0));
            }
        }
        let result = block.walk(&mut each);
        block.give_back();
        self.next = (self.next + 1) % self.shape.block_nr as usize;
        Ok(result)
    }

    /// The kernel's counters so far (reading them resets the kernel's, so they are summed here).
    pub fn stats(&mut self) -> io::Result<KernelStats> {
        let mut st: libc::tpacket_stats_v3 = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast::<c_void>(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.stats.received += u64::from(st.tp_packets);
        self.stats.dropped += u64::from(st.tp_drops);
        Ok(self.stats)
    }

    fn block(&self, i: usize) -> Block<'_> {
        // In bounds: i < block_nr, and the map is block_nr blocks long.
        let start = unsafe { self.map.as_ptr().add(i * self.shape.block_size as usize) };
        Block { start, _ring: std::marker::PhantomData }
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        let len = self.shape.block_size as usize * self.shape.block_nr as usize;
        unsafe { libc::munmap(self.map.as_ptr().cast::<c_void>(), len) };
    }
}

/// One block of the ring. The kernel owns it while its status lacks `TP_STATUS_USER`; then it
/// is this process's until `give_back`.
struct Block<'a> {
    start: *mut u8,
    _ring: std::marker::PhantomData<&'a RxRing>,
}

impl Block<'_> {
    fn desc(&self) -> *mut libc::tpacket_block_desc {
        self.start.cast()
    }

    fn status(&self) -> &AtomicU32 {
        // The kernel writes the status last, after the block's packets, with a barrier; an
        // acquire load of it makes those packets visible here.
        unsafe { AtomicU32::from_ptr(&raw mut (*self.desc()).hdr.bh1.block_status) }
    }

    fn ready(&self) -> bool {
        self.status().load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    fn walk<E>(&self, each: &mut impl FnMut(&Packet<'_>) -> Result<(), E>) -> Result<usize, E> {
        let (num, first) = unsafe {
            let h = &(*self.desc()).hdr.bh1;
            (h.num_pkts as usize, h.offset_to_first_pkt as usize)
        };
        let mut at = unsafe { self.start.add(first) };
        for _ in 0..num {
            // The kernel lays packets out aligned to TPACKET_ALIGNMENT inside the block and
            // fills every header before setting the block's status.
            let h = unsafe { &*at.cast::<libc::tpacket3_hdr>() };
            let data = unsafe { std::slice::from_raw_parts(at.add(usize::from(h.tp_mac)), h.tp_snaplen as usize) };
            let vlan = (h.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 { h.hv1.tp_vlan_tpid } else { 0x8100 };
                (tpid, h.hv1.tp_vlan_tci as u16)
            });
            each(&Packet { sec: h.tp_sec, nsec: h.tp_nsec, len: h.tp_len, vlan, data })?;
            at = unsafe { at.add(h.tp_next_offset as usize) };
        }
        Ok(num)
    }

    fn give_back(self) {
        self.status().store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

fn bind(fd: &OwnedFd, ifindex: u32, protocol_be: u16) -> io::Result<()> {
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol_be;
    sll.sll_ifindex = ifindex as i32;
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Refuses interfaces whose frames do not start with an Ethernet header (the pcap written says
/// Ethernet, and the filter was compiled for it): veth, macvlan and loopback all do.
fn check_link_type(fd: &OwnedFd, ifname: &str) -> anyhow::Result<()> {
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    let r = unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut sll).cast::<libc::sockaddr>(), &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("reading the link type of {ifname}"));
    }
    match sll.sll_hatype {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Ok(()),
        other => bail!(
            "{ifname} is not an Ethernet-like interface (ARPHRD type {other}); cnet capture reads veth, macvlan \
             and loopback interfaces"
        ),
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn socket_error(fd: &OwnedFd) -> io::Result<i32> {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast::<c_void>(), &mut len)
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(err) }
}
