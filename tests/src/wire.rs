//! Hand-made packets and packet counters for tests that check what a firewall lets through.

/// The UDP payload of a VXLAN packet for `vni`: the header (flag I, the VNI) and an inner
/// broadcast ARP frame from a made-up MAC, which any VXLAN device taking it counts as received.
pub fn vxlan_broadcast_frame(vni: u32) -> Vec<u8> {
    let mut packet = vec![0x08, 0, 0, 0];
    packet.extend((vni << 8).to_be_bytes());
    packet.extend([0xff; 6]); // to everyone
    packet.extend([0x02, 0, 0, 0, 0, 0x99]); // from a made-up MAC
    packet.extend([0x08, 0x06]); // ARP
    packet.extend([0; 28]);
    packet
}

/// The packets `dev` has received, read from the text of a `/proc/net/dev`; panics, naming the
/// device, when it is not there.
pub fn rx_packets_in(proc_net_dev: &str, dev: &str) -> u64 {
    let line = proc_net_dev
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{dev}:")))
        .unwrap_or_else(|| panic!("no {dev} in /proc/net/dev:\n{proc_net_dev}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{dev}:{line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_names_its_vni_where_the_guard_reads_it() {
        let frame = vxlan_broadcast_frame(0x00ab_cdef);
        assert_eq!(frame[0], 0x08, "flag I");
        // nft's @th,96,24: bits 96..120 after the UDP header's 64, i.e. payload bytes 4..7.
        assert_eq!(&frame[4..7], &[0xab, 0xcd, 0xef]);
        assert_eq!(frame.len(), 8 + 14 + 28);
    }

    #[test]
    fn received_packets_are_the_second_column_of_the_devices_line() {
        let text =
            "Inter-|   Receive\n face |bytes    packets errs\n    lo:     0       0    0\n  vx-1:  9000      12    0\n";
        assert_eq!(rx_packets_in(text, "vx-1"), 12);
        assert_eq!(rx_packets_in(text, "lo"), 0);
    }
}
