//! End-to-end tests of `cnet capture NODE:IFACE`, each against a cnetd of its own in its own
//! namespaces (see the kit in `tests/src`): the pcap it writes is parsed here, record by record,
//! and read back by tcpdump; traffic is pings and UDP between containers of the test (addresses
//! in 192.0.2.0/24 and 198.51.100.0/24, inside the test's namespaces). They need root, tcpdump and
//! the binaries built: `cargo build --workspace --bins && cargo test -p cnet-tests --test capture`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Stdio};
use std::time::Duration;

use cnet_tests::{Bg, Lab, Ns, TestHost, bin, describe_output, link, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long a test waits for a state it needs (generous: two copies of the suite may share 2 cores).
const WAIT: Duration = Duration::from_secs(30);
/// Upper bound of one background capture (the kit's `timeout` kills it after that).
const CAPTURE_SECS: u32 = 60;

// ------------------------------------------------------------------------------------ pcap

/// One record of a pcap file.
#[derive(Debug)]
struct Record {
    orig_len: u32,
    data: Vec<u8>,
}

/// A classic pcap (microseconds, this machine's byte order, as `cnet capture` writes it): the link
/// type and the records. Anything else fails the test.
fn parse_pcap(bytes: &[u8]) -> (u32, Vec<Record>) {
    assert!(bytes.len() >= 24, "no pcap header in {} bytes", bytes.len());
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "not a microsecond pcap of this byte order");
    assert_eq!(&bytes[4..8], [2u16.to_ne_bytes(), 4u16.to_ne_bytes()].concat(), "not pcap 2.4");
    let (snaplen, linktype) = (u32_at(16), u32_at(20));
    let mut records = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        assert!(at + 16 <= bytes.len(), "a record header cut short at byte {at}");
        let (caplen, orig_len) = (u32_at(at + 8) as usize, u32_at(at + 12));
        assert!(caplen as u32 <= snaplen && caplen as u32 <= orig_len, "record at {at}: caplen {caplen}");
        let data = bytes.get(at + 16..at + 16 + caplen).unwrap_or_else(|| panic!("a record cut short at byte {at}"));
        records.push(Record { orig_len, data: data.to_vec() });
        at += 16 + caplen;
    }
    (linktype, records)
}

fn read_pcap(path: &Path) -> (u32, Vec<Record>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_pcap(&bytes)
}

/// The IPv4 packet of an Ethernet frame.
struct Ipv4<'a> {
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    payload: &'a [u8],
}

fn ipv4(frame: &[u8]) -> Option<Ipv4<'_>> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    Some(Ipv4 {
        proto: ip[9],
        src: ip[12..16].try_into().ok()?,
        dst: ip[16..20].try_into().ok()?,
        payload: ip.get(ihl..)?,
    })
}

/// The ICMP type of an IPv4 ICMP frame (8 echo request, 0 echo reply).
fn icmp_type(frame: &[u8]) -> Option<u8> {
    ipv4(frame).filter(|p| p.proto == 1).and_then(|p| p.payload.first().copied())
}

/// The destination port of an IPv4 UDP frame.
fn udp_dport(frame: &[u8]) -> Option<u16> {
    ipv4(frame)
        .filter(|p| p.proto == 17)
        .and_then(|p| Some(u16::from_be_bytes([*p.payload.get(2)?, *p.payload.get(3)?])))
}

fn octets(ip: &str) -> [u8; 4] {
    ip.parse::<std::net::Ipv4Addr>().unwrap_or_else(|e| panic!("{ip:?}: {e}")).octets()
}

// ------------------------------------------------------------------------------------ helpers

/// `cnet run -d --name NAME --network N… busybox sleep 1000`.
fn sleeper(host: &TestHost, name: &str, networks: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    for n in networks {
        all.extend_from_slice(&["--network", n]);
    }
    all.extend_from_slice(&["busybox", "sleep", "1000"]);
    host.cnet_ok(&all);
}

/// The container's address on `network`.
fn ip_on(host: &TestHost, container: &str, network: &str) -> String {
    let json = host.inspect(container);
    match json["NetworkSettings"]["Networks"][network]["IPAddress"].as_str() {
        Some(ip) if !ip.is_empty() => ip.to_string(),
        _ => panic!("{container} has no address on {network}: {:#}", json["NetworkSettings"]),
    }
}

/// The container's network namespace (`NetworkSettings.SandboxKey`).
fn sandbox_key(host: &TestHost, container: &str) -> String {
    match &host.inspect(container)["NetworkSettings"]["SandboxKey"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => panic!("{container} has no SandboxKey: {other}"),
    }
}

/// `count` pings from `from` to `ip`, by `cnet exec` (succeeding: the neighbour answers).
fn ping(host: &TestHost, from: &str, ip: &str, count: u32) {
    host.cnet_ok(&["exec", from, "ping", "-c", &count.to_string(), "-i", "0.2", "-W", "2", ip]);
}

/// Pings from `from` to `ip` for as long as the returned process lives (a second each, 60 at most).
fn ping_on(host: &TestHost, from: &str, ip: &str) -> Bg {
    let mut cmd = host.cnet_command(70, &["exec", from, "ping", "-c", "60", "-i", "0.2", ip]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    Bg::start(cmd)
}

/// One UDP datagram from the container's namespace to `ip:port` (bash's /dev/udp: busybox's nc
/// has no UDP).
fn send_udp(host: &TestHost, from: &str, ip: &str, port: u16) {
    host.run_in_ok(&sandbox_key(host, from), &format!("bash -c 'echo hello > /dev/udp/{ip}/{port}'"));
}

/// A `cnet capture ARGS…` running in the background, its stdout and stderr piped.
struct Capture {
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: BufReader<ChildStderr>,
    /// What it wrote to stderr so far.
    log: String,
    what: String,
}

impl Capture {
    /// Starts the capture and waits for its "listening on" line: from then on, the ring is bound
    /// to the interface and every packet is seen.
    fn start(host: &TestHost, args: &[&str]) -> Capture {
        let mut all = vec!["capture"];
        all.extend_from_slice(args);
        let mut cmd = host.cnet_command(CAPTURE_SECS, &all);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start cnet capture");
        let stdout = child.stdout.take();
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut c = Capture { child, stdout, stderr, log: String::new(), what: format!("cnet {}", all.join(" ")) };
        loop {
            let mut line = String::new();
            let n = c.stderr.read_line(&mut line).expect("read the capture's stderr");
            c.log.push_str(&line);
            if n == 0 {
                let status = c.child.wait().expect("wait for cnet capture");
                panic!("`{}` ended ({status}) before listening:\n{}", c.what, c.log);
            }
            if line.starts_with("listening on ") {
                return c;
            }
        }
    }

    fn stdout(&mut self) -> &mut ChildStdout {
        self.stdout.as_mut().expect("stdout is still open")
    }

    /// Waits for the capture to exit; panics unless it exits 0. Returns all its stderr.
    fn finish(mut self) -> String {
        self.stderr.read_to_string(&mut self.log).expect("read the capture's stderr");
        let status = self.child.wait().expect("wait for cnet capture");
        assert!(status.success(), "`{}` failed ({status}):\n{}", self.what, self.log);
        self.log
    }

    fn signal(&self, sig: Signal) {
        // The kit runs `nsenter … timeout … cnet`: nsenter execs timeout, which passes the signal on.
        kill(Pid::from_raw(self.child.id() as i32), sig).expect("signal cnet capture");
    }
}

/// The counts of the closing lines (`N packets captured`, `… received by filter`, `… dropped by
/// kernel`); panics if one is missing.
fn counts(stderr: &str) -> (u64, u64, u64) {
    let find = |what: &str| -> u64 {
        stderr
            .lines()
            .find_map(|l| l.strip_suffix(what).and_then(|n| n.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no `N {what}` line in:\n{stderr}"))
    };
    (find("packets captured"), find("packets received by filter"), find("packets dropped by kernel"))
}

/// `tcpdump -n -r FILE`'s output (fails the test if tcpdump cannot read the file).
fn tcpdump_read(path: &Path) -> String {
    let out = std::process::Command::new("tcpdump")
        .arg("-n")
        .arg("-r")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tcpdump (scripts/setup.sh installs it): {e}"));
    assert!(out.status.success(), "{}", describe_output("tcpdump -r", &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn file(host: &TestHost, name: &str) -> PathBuf {
    host.dir().join(name)
}

/// Reads one pcap record from a stream (after its header was read).
fn read_record(r: &mut impl Read) -> Record {
    let mut h = [0u8; 16];
    r.read_exact(&mut h).expect("read a record header from the capture's stdout");
    let caplen = u32::from_ne_bytes(h[8..12].try_into().unwrap()) as usize;
    let mut data = vec![0u8; caplen];
    r.read_exact(&mut data).expect("read a record from the capture's stdout");
    Record { orig_len: u32::from_ne_bytes(h[12..16].try_into().unwrap()), data }
}

/// A host with containers `ca` and `cb` on a bridge network `br1` (198.51.100.0/24); `ca`'s address.
fn bridge_pair() -> (TestHost, String) {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "--subnet", "198.51.100.0/24", "br1"]);
    sleeper(&host, "ca", &["br1"]);
    sleeper(&host, "cb", &["br1"]);
    let ip = ip_on(&host, "ca", "br1");
    (host, ip)
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn a_capture_of_a_p2p_link_to_a_file_holds_the_pings_and_tcpdump_reads_it() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "-d", "p2p", "--subnet", "192.0.2.0/31", "l1"]);
    // eth0 on the default bridge, eth1 the link: a lab node's wiring.
    sleeper(&host, "ca", &["bridge", "l1"]);
    sleeper(&host, "cb", &["bridge", "l1"]);
    let (ip_a, ip_b) = (ip_on(&host, "ca", "l1"), ip_on(&host, "cb", "l1"));
    let pcap = file(&host, "l1.pcap");
    let cap = Capture::start(&host, &["ca:eth1", "-c", "3", "-w", pcap.to_str().unwrap()]);
    // Three echoes and their replies, after an ARP exchange: more than the 3 packets asked for.
    ping(&host, "cb", &ip_a, 3);
    let stderr = cap.finish();
    assert_eq!(counts(&stderr).0, 3, "{stderr}");

    let (linktype, records) = read_pcap(&pcap);
    assert_eq!(linktype, 1, "not Ethernet");
    assert_eq!(records.len(), 3, "{records:?}");
    let request = records
        .iter()
        .find(|r| icmp_type(&r.data) == Some(8))
        .unwrap_or_else(|| panic!("no ICMP echo request among {records:?}"));
    let ip = ipv4(&request.data).unwrap();
    assert_eq!((ip.src, ip.dst), (octets(&ip_b), octets(&ip_a)), "the request is not cb's to ca");
    assert_eq!(request.orig_len as usize, request.data.len(), "a ping is captured whole");
    let text = tcpdump_read(&pcap);
    assert!(text.contains(&format!("{ip_b} > {ip_a}: ICMP echo request")), "tcpdump reads:\n{text}");
}

#[test]
fn filters_run_in_the_kernel_and_bad_ones_are_refused() {
    let (host, ip_a) = bridge_pair();
    let icmp = file(&host, "icmp.pcap");
    let cap = Capture::start(&host, &["ca:eth0", "-f", "icmp", "-c", "4", "-w", icmp.to_str().unwrap()]);
    ping(&host, "cb", &ip_a, 2);
    let stderr = cap.finish();
    let (_, records) = read_pcap(&icmp);
    let types: Vec<Option<u8>> = records.iter().map(|r| icmp_type(&r.data)).collect();
    assert_eq!(types, vec![Some(8), Some(0), Some(8), Some(0)], "not only the pings (no ARP): {records:?}");
    let (captured, received, dropped) = counts(&stderr);
    assert_eq!((captured, dropped), (4, 0), "{stderr}");
    assert!(received >= 4, "{stderr}");

    // Pings first, then one datagram to port 9: the one packet kept must be that datagram.
    let udp = file(&host, "udp9.pcap");
    let cap = Capture::start(&host, &["ca:eth0", "--filter", "udp port 9", "-c", "1", "-w", udp.to_str().unwrap()]);
    ping(&host, "cb", &ip_a, 2);
    send_udp(&host, "cb", &ip_a, 9);
    cap.finish();
    let (_, records) = read_pcap(&udp);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(udp_dport(&records[0].data), Some(9), "{records:?}");

    let err = host.cnet_err(&["capture", "ca:eth0", "-f", "udp port nine", "-w", "/dev/null"]);
    assert!(err.contains("bad filter expression \"udp port nine\""), "{err}");
    let err = host.cnet_err(&["capture", "ca:eth0", "-f", "tcp and (", "-w", "/dev/null"]);
    assert!(err.contains("\"tcp and (\"") && err.contains("syntax error"), "{err}");
}

#[test]
fn bad_nodes_and_interfaces_are_refused_and_leave_no_file() {
    let (host, _) = bridge_pair();
    let out = file(&host, "never.pcap");
    let out_arg = out.to_str().unwrap();
    let err = host.cnet_err(&["capture", "nosuch:eth0", "-w", out_arg]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let err = host.cnet_err(&["capture", "ca:eth9", "-w", out_arg]);
    assert!(err.contains("ca:eth9") && err.contains("no interface \"eth9\""), "{err}");
    let err = host.cnet_err(&["capture", "ca", "-w", out_arg]);
    assert!(err.contains("NODE:IFACE"), "{err}");
    assert!(!out.exists(), "a refused capture made {}", out.display());
    // The container's own `lo` is an interface like any other; `-s` cuts what is kept.
    let lo = file(&host, "lo.pcap");
    let cap = Capture::start(&host, &["ca:lo", "-c", "1", "-f", "icmp", "-s", "64", "-w", lo.to_str().unwrap()]);
    host.cnet_ok(&["exec", "ca", "ping", "-c", "1", "127.0.0.1"]);
    cap.finish();
    let (_, records) = read_pcap(&lo);
    assert_eq!(records.len(), 1, "{records:?}");
    // `-s 64`: the first 64 bytes of a 98-byte ping.
    assert_eq!((records[0].data.len(), records[0].orig_len), (64, 98), "{records:?}");
}

#[test]
fn stdout_streams_live_until_a_signal_and_a_closed_pipe_ends_it_cleanly() {
    let (host, ip_a) = bridge_pair();
    // Live: the header at once, then each ping while the capture still runs.
    let mut cap = Capture::start(&host, &["ca:eth0", "-f", "icmp"]);
    let mut header = [0u8; 24];
    cap.stdout().read_exact(&mut header).expect("read the pcap header before any packet");
    assert_eq!(u32::from_ne_bytes(header[0..4].try_into().unwrap()), 0xa1b2_c3d4);
    ping(&host, "cb", &ip_a, 1);
    let (request, reply) = (read_record(cap.stdout()), read_record(cap.stdout()));
    assert_eq!((icmp_type(&request.data), icmp_type(&reply.data)), (Some(8), Some(0)));
    cap.signal(Signal::SIGINT);
    let stderr = cap.finish();
    assert_eq!(counts(&stderr).0, 2, "{stderr}");

    // SIGTERM ends it as cleanly (whatever it saw: ARP may come and go on eth0 unfiltered).
    let cap = Capture::start(&host, &["ca:eth0"]);
    cap.signal(Signal::SIGTERM);
    counts(&cap.finish());

    // `| head -c 24` reads the header and leaves: the next write meets a closed pipe, and the
    // capture ends with its counts and status 0, as tcpdump would.
    let _pings = ping_on(&host, "cb", &ip_a);
    let script = format!(
        "{} capture ca:eth0 2>{err} | head -c 24 >/dev/null; echo \"status ${{PIPESTATUS[0]}}\"",
        cnet_line(&host),
        err = file(&host, "epipe.err").display()
    );
    let out = host.ns().cmd("timeout").args(["-k", "5", "60", "bash", "-c", &script]).output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = std::fs::read_to_string(file(&host, "epipe.err")).unwrap_or_default();
    assert!(stdout.contains("status 0"), "{}\n--- capture's stderr ---\n{stderr}", describe_output(&script, &out));
    counts(&stderr);

    // And what `cnet capture … | tcpdump -r -` is for.
    let script = format!("{} capture ca:eth0 -f icmp -c 2 | tcpdump -n -l -r - 2>/dev/null", cnet_line(&host));
    let out = host.ns().cmd("timeout").args(["-k", "5", "60", "bash", "-c", &script]).output().expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ICMP echo"), "{}", describe_output(&script, &out));
}

#[test]
fn an_overlay_interface_is_captured_inside_the_tunnel() {
    let mut lab = Lab::new(2);
    lab.start_all();
    lab.host(0).cnet_ok(&["network", "create", "-d", "overlay", "ov"]);
    sleeper(lab.host(0), "ca", &["ov"]);
    sleeper(lab.host(1), "cb", &["ov"]);
    let (ip_a, ip_b) = (ip_on(lab.host(0), "ca", "ov"), ip_on(lab.host(1), "cb", "ov"));
    let pcap = file(lab.host(0), "ov.pcap");
    let cap = Capture::start(lab.host(0), &["ca:eth0", "-f", "icmp", "-c", "2", "-w", pcap.to_str().unwrap()]);
    // From the other host, through VXLAN: the container's end sees the inner frames, not the
    // tunnel's.
    ping(lab.host(1), "cb", &ip_a, 2);
    cap.finish();
    let (_, records) = read_pcap(&pcap);
    let types: Vec<Option<u8>> = records.iter().map(|r| icmp_type(&r.data)).collect();
    assert_eq!(types, vec![Some(8), Some(0)], "{records:?}");
    let ip = ipv4(&records[0].data).unwrap();
    assert_eq!((ip.src, ip.dst), (octets(&ip_b), octets(&ip_a)), "the request is not cb's to ca");
}

#[test]
fn a_lab_node_is_captured_by_its_name_in_the_file() {
    let host = TestHost::with_cnetd();
    let lab = "name: cap\ntopology:\n  defaults: {image: busybox, cmd: sleep 1000}\n  nodes: {r1: {}, r2: {}}\n  \
               links:\n    - endpoints: [r1:eth1, r2:eth1]\n      ipv4: [10.0.0.0/31, 10.0.0.1/31]\n";
    let path = host.dir().join("cap.yml");
    std::fs::write(&path, lab).expect("write the lab file");
    host.cnet_ok(&["lab", "deploy", "-t", path.to_str().unwrap()]);
    let pcap = file(&host, "r1.pcap");
    let cap = Capture::start(&host, &["r1:eth1", "-f", "icmp", "-c", "2", "-w", pcap.to_str().unwrap()]);
    ping(&host, "clab-cap-r2", "10.0.0.0", 1);
    cap.finish();
    let (_, records) = read_pcap(&pcap);
    assert_eq!(records.len(), 2, "{records:?}");
    // With --lab, a node of that lab only.
    let err = host.cnet_err(&["capture", "--lab", "other", "r1:eth1", "-c", "1", "-w", "/dev/null"]);
    assert!(err.contains("lab other has no node r1"), "{err}");
    host.cnet_ok(&["lab", "destroy", "--name", "cap"]);
}

#[test]
fn a_macvlan_interface_is_captured_like_a_veth() {
    let mut host = TestHost::new();
    let lan = Ns::new();
    link(host.ns(), "up0", "", &lan, "lan0", "192.0.2.1/24");
    host.start_cnetd();
    host.cnet_ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "192.0.2.0/24",
        "--gateway",
        "192.0.2.1",
        "-o",
        "parent=up0",
        "lan",
    ]);
    sleeper(&host, "ca", &["lan"]);
    let ip = ip_on(&host, "ca", "lan");
    let pcap = file(&host, "macvlan.pcap");
    let cap = Capture::start(&host, &["ca:eth0", "-f", "icmp", "-c", "2", "-w", pcap.to_str().unwrap()]);
    // macvlan links cannot talk to their parent's namespace: the LAN pings.
    wait_for("the LAN to reach ca", WAIT, || lan.run(&format!("busybox ping -c 1 -W 1 {ip}")).status.success());
    cap.finish();
    let (_, records) = read_pcap(&pcap);
    let types: Vec<Option<u8>> = records.iter().map(|r| icmp_type(&r.data)).collect();
    assert_eq!(types, vec![Some(8), Some(0)], "{records:?}");
}

#[test]
fn a_capture_ends_with_an_error_when_its_interface_goes_away() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "-d", "p2p", "--subnet", "192.0.2.0/31", "l1"]);
    sleeper(&host, "ca", &["bridge", "l1"]);
    let mut cap = Capture::start(&host, &["ca:eth1", "-w", "/dev/null"]);
    host.cnet_ok(&["network", "disconnect", "l1", "ca"]);
    wait_for("the capture to end", WAIT, || cap.child.try_wait().expect("wait for cnet capture").is_some());
    cap.stderr.read_to_string(&mut cap.log).expect("read the capture's stderr");
    let status = cap.child.wait().unwrap();
    assert!(!status.success() && cap.log.contains("went down or away"), "{status}:\n{}", cap.log);
}

/// The `cnet` command line [`TestHost::cnet`] runs, for a shell pipeline inside the host.
fn cnet_line(host: &TestHost) -> String {
    format!("{} -H {} --root {}", bin("cnet").display(), host.socket().display(), host.runtime_dir().display())
}
