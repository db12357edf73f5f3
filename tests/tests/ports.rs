//! End-to-end tests of published ports and the firewall's isolation, each against its own cnetd in
//! its own namespaces, through real clients (busybox wget and httpd, perl for UDP). They use the
//! API (sandboxes + ConnectRequest.ports), not the container CLI. They need root and the binaries
//! built: `cargo build --workspace --bins && cargo test -p cnet-tests --test ports`.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use cnet_api::v1::{
    ConnectRequest, CreateNetworkRequest, Endpoint, Ipam, IpamConfig, NetworkRef, PortBinding, Sandbox, SandboxRef,
};
use cnet_tests::{Api, Bg, SIGKILL, TestHost, Upstream, addr_of, fetch, proc_net_has_listener, wait_for};
use tonic::Code;

/// The host's address on its uplink (see the kit's Upstream).
const HOST_ADDR: &str = "198.51.100.1";

// ------------------------------------------------------------------------------------ helpers

fn port(proto: &str, host_ip: &str, host_port: u32, container_port: u32) -> PortBinding {
    PortBinding { protocol: proto.into(), host_ip: host_ip.into(), host_port, container_port }
}

fn tcp(host_port: u32, container_port: u32) -> PortBinding {
    port("tcp", "", host_port, container_port)
}

async fn create_network(api: &mut Api, name: &str, internal: bool, options: &[(&str, &str)]) {
    let req = CreateNetworkRequest {
        name: name.into(),
        internal,
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>(),
        ..Default::default()
    };
    api.networks.create_network(req).await.unwrap_or_else(|e| panic!("creating network {name}: {e:?}"));
}

/// A sandbox connected to `network` publishing `ports`.
async fn publish(api: &mut Api, name: &str, network: &str, ports: Vec<PortBinding>) -> (Sandbox, Endpoint) {
    let sandbox = api.create_sandbox(name).await;
    let ep = api
        .connect_with(ConnectRequest {
            sandbox: sandbox.id.clone(),
            network: network.into(),
            ports,
            ..Default::default()
        })
        .await;
    (sandbox, ep)
}

/// `busybox httpd -f -vv -p PORT` in the sandbox, serving a file that names the port; its log
/// (one line per request, with the client's address) goes to the returned path.
struct Web {
    _httpd: Bg,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn serve(host: &TestHost, sandbox: &Sandbox, port: u16) -> Web {
    let dir = tempfile::Builder::new().prefix("cnet-ports-www-").tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), format!("hello from {port}\n")).unwrap();
    let log = dir.path().join("httpd.log");
    let mut cmd = host.in_netns(&sandbox.netns_path, "busybox");
    cmd.args(["httpd", "-f", "-vv", "-p", &port.to_string(), "-h", dir.path().to_str().unwrap()])
        .stderr(File::create(&log).unwrap());
    let mut httpd = Bg::start(cmd);
    wait_for(&format!("httpd on :{port} to answer"), Duration::from_secs(10), || {
        httpd.assert_running();
        host.run_in(&sandbox.netns_path, &fetch(&format!("http://127.0.0.1:{port}/"), 2)).status.success()
    });
    Web { _httpd: httpd, log, _dir: dir }
}

impl Web {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| panic!("reading {}: {e}", self.log.display()))
    }
}

/// A UDP server on `port` in the sandbox that answers every datagram with `from <peer address>`.
fn udp_echo(host: &TestHost, sandbox: &Sandbox, port: u16) -> Bg {
    let script = format!(
        "$s=IO::Socket::INET->new(LocalPort=>{port},Proto=>'udp') or die $!; \
         while($s->recv($m,1000)){{ $s->send('from '.$s->peerhost) }}"
    );
    let mut cmd = host.in_netns(&sandbox.netns_path, "perl");
    cmd.args(["-MIO::Socket::INET", "-e", &script]);
    let mut bg = Bg::start(cmd);
    wait_bound(host, sandbox, &mut bg, port);
    bg
}

/// Waits until the UDP server `bg` in the sandbox has bound `port`.
fn wait_bound(host: &TestHost, sandbox: &Sandbox, bg: &mut Bg, port: u16) {
    wait_for(&format!("the UDP server in {} to bind port {port}", sandbox.name), Duration::from_secs(10), || {
        bg.assert_running();
        let sockets = host.run_in_ok(&sandbox.netns_path, "cat /proc/net/udp /proc/net/udp6");
        proc_net_has_listener(&sockets, port)
    });
}

/// A shell command sending a UDP datagram to addr:port and printing the answer: up to 10 tries a
/// second apart (the server may still be starting), failing after that.
fn udp_ask(addr: &str, port: u16) -> String {
    format!(
        "timeout 15 perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(PeerAddr=>\"{addr}:{port}\",Proto=>\"udp\") \
         or die; for (1..10) {{ $m=\"\"; $s->send(\"hi\"); eval {{ local $SIG{{ALRM}}=sub{{die}}; alarm 1; \
         $s->recv($m,1000); alarm 0 }}; if (length $m) {{ print $m; exit 0 }} select(undef,undef,undef,0.5) }} exit 1'"
    )
}

/// [`udp_echo`] on IPv6 (`::`): answers `from <peer IPv6 address>`.
fn udp_echo6(host: &TestHost, sandbox: &Sandbox, port: u16) -> Bg {
    let script = format!(
        "$s=IO::Socket::IP->new(LocalHost=>'::',LocalService=>{port},Proto=>'udp') or die $!; \
         while($s->recv($m,1000)){{ $s->send('from '.$s->peerhost) }}"
    );
    let mut cmd = host.in_netns(&sandbox.netns_path, "perl");
    cmd.args(["-MIO::Socket::IP", "-e", &script]);
    let mut bg = Bg::start(cmd);
    wait_bound(host, sandbox, &mut bg, port);
    bg
}

/// [`udp_ask`] for any address family (IO::Socket::IP).
fn udp_ask_ip(addr: &str, port: u16) -> String {
    format!(
        "timeout 15 perl -MIO::Socket::IP -e '$s=IO::Socket::IP->new(PeerHost=>\"{addr}\",PeerService=>{port},Proto=>\"udp\") \
         or die; for (1..10) {{ $m=\"\"; $s->send(\"hi\"); eval {{ local $SIG{{ALRM}}=sub{{die}}; alarm 1; \
         $s->recv($m,1000); alarm 0 }}; if (length $m) {{ print $m; exit 0 }} select(undef,undef,undef,0.5) }} exit 1'"
    )
}

fn body(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nft list table inet cnet` as a sorted multiset of its tokens between braces, commas and
/// newlines, so that the order nft happens to list hash elements in does not matter.
fn normalised(table: &str) -> Vec<String> {
    let mut items: Vec<String> = table
        .split(['\n', ',', '{', '}'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.starts_with("# handle"))
        .collect();
    items.sort();
    items
}

fn rule_count(table: &str, needle: &str) -> usize {
    table.lines().filter(|l| l.contains(needle)).count()
}

// ------------------------------------------------------------------------------------ paths

#[tokio::test]
async fn published_ports_reach_the_container_from_everywhere() {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.start_cnetd();
    let mut api = host.api().await;
    create_network(&mut api, "front", false, &[]).await;
    create_network(&mut api, "other", false, &[]).await;

    let ports = vec![tcp(8080, 80), tcp(0, 80), tcp(9000, 80), tcp(9001, 81), port("udp", "", 5353, 7777)];
    let (web, ep) = publish(&mut api, "web", "front", ports).await;
    let random = ep.ports.iter().find(|p| p.container_port == 80 && p.host_port != 8080 && p.host_port != 9000);
    let random = random.unwrap_or_else(|| panic!("no random host port in {:?}", ep.ports)).host_port;
    assert_eq!(random, 49153, "the first random port is Docker's first: {:?}", ep.ports);
    let web_ip = addr_of(&ep.ipv4_address).to_string();
    let http = serve(&host, &web, 80);
    let _http81 = serve(&host, &web, 81);
    let _udp = udp_echo(&host, &web, 7777);

    // From outside, through the host's address: the client's address is preserved.
    let out = upstream.ns().run(&fetch(&format!("http://{HOST_ADDR}:8080/"), 5));
    assert_eq!(body(&out), "hello from 80\n", "outside -> {HOST_ADDR}:8080: {out:?}\n{}", host.log_tail());
    assert!(http.log().contains(upstream.addr()), "source not preserved: httpd saw\n{}", http.log());
    let out = upstream.ns().run(&fetch(&format!("http://{HOST_ADDR}:{random}/"), 5));
    assert_eq!(body(&out), "hello from 80\n", "random port {random}: {out:?}");
    let out = upstream.ns().run(&fetch(&format!("http://{HOST_ADDR}:9001/"), 5));
    assert_eq!(body(&out), "hello from 81\n", "range 9000-9001:80-81: {out:?}");
    let out = upstream.ns().run(&udp_ask(HOST_ADDR, 5353));
    assert_eq!(body(&out), format!("from {}", upstream.addr()), "udp from outside: {out:?}");

    // From the host itself: 127.0.0.1, its uplink address, the bridge's gateway address.
    let (_, gateway) = {
        let net = api.network("front").await;
        let c = net.ipam.unwrap().config.remove(0);
        (c.subnet, addr_of(&c.gateway).to_string())
    };
    for addr in ["127.0.0.1", HOST_ADDR, gateway.as_str()] {
        let out = host.ns().run(&fetch(&format!("http://{addr}:8080/"), 5));
        assert_eq!(body(&out), "hello from 80\n", "host -> {addr}:8080: {out:?}");
    }
    let out = host.ns().run(&udp_ask("127.0.0.1", 5353));
    assert!(body(&out).starts_with("from "), "udp from the host on 127.0.0.1: {out:?}");

    // From a container on the same network (hairpin) and on another one, via the host address.
    let (same, _) = publish(&mut api, "same", "front", vec![]).await;
    let (other, _) = publish(&mut api, "far", "other", vec![]).await;
    for (who, sb) in [("same network", &same), ("other network", &other)] {
        let out = host.run_in(&sb.netns_path, &fetch(&format!("http://{HOST_ADDR}:8080/"), 5));
        assert_eq!(body(&out), "hello from 80\n", "{who} -> {HOST_ADDR}:8080: {out:?}");
        let out = host.run_in(&sb.netns_path, &udp_ask(HOST_ADDR, 5353));
        assert!(body(&out).starts_with("from "), "{who} udp -> {HOST_ADDR}:5353: {out:?}");
    }
    // ...but not directly: networks are isolated.
    let out = host.run_in(&other.netns_path, &fetch(&format!("http://{web_ip}/"), 2));
    assert!(!out.status.success(), "a container on another network reached {web_ip}:80 directly");
    assert!(!host.ping_once(&other.netns_path, &web_ip), "other network pings {web_ip}");

    // Unpublished on disconnect.
    api.disconnect(&web.id, "front").await;
    let out = upstream.ns().run(&fetch(&format!("http://{HOST_ADDR}:8080/"), 2));
    assert!(!out.status.success(), "port 8080 still published after disconnect: {out:?}");
    let table = host.nft_table();
    assert!(!table.contains("8080"), "8080 left in the table:\n{table}");
}

#[tokio::test]
async fn a_container_reaches_its_own_published_port_through_the_host() {
    let mut host = TestHost::new();
    let _upstream = Upstream::new(&host);
    host.start_cnetd();
    let mut api = host.api().await;
    create_network(&mut api, "front", false, &[]).await;
    let (web, ep) = publish(&mut api, "web", "front", vec![tcp(8080, 80), port("udp", "", 5353, 7777)]).await;
    let http = serve(&host, &web, 80);
    let _udp = udp_echo(&host, &web, 7777);
    let gateway = {
        let net = api.network("front").await;
        addr_of(&net.ipam.unwrap().config.remove(0).gateway).to_string()
    };

    let bridge = format!("br-{}", &ep.network_id[..12]);
    let hairpin = |host: &TestHost| host.ns().run_ok(&format!("ip -d -o link show master {bridge}"));
    let ports = hairpin(&host);
    assert!(ports.contains("hairpin on"), "the port of {bridge} is not in hairpin mode:\n{ports}");

    // The packet leaves by the container's own bridge port and must come back in by it: the port
    // needs hairpin mode (the bridge never sends a frame back where it came from otherwise), and
    // the reply must be masqueraded, or it would go straight to the container's own address.
    for addr in [HOST_ADDR, gateway.as_str()] {
        let out = host.run_in(&web.netns_path, &fetch(&format!("http://{addr}:8080/"), 5));
        assert_eq!(body(&out), "hello from 80\n", "web -> its own {addr}:8080: {out:?}\n{}", host.log_tail());
        let out = host.run_in(&web.netns_path, &udp_ask(addr, 5353));
        assert_eq!(body(&out), format!("from {gateway}"), "web -> its own udp {addr}:5353: {out:?}");
    }
    assert!(http.log().contains(&gateway), "the hairpin was not masqueraded: httpd saw\n{}", http.log());

    // Still so after a crash and a restart that re-creates the bridge.
    drop(api);
    host.kill_cnetd(SIGKILL);
    host.ns().run_ok(&format!("ip link del {bridge}"));
    host.start_cnetd();
    let ports = hairpin(&host);
    assert!(ports.contains("hairpin on"), "after restart, the port of {bridge} is not in hairpin mode:\n{ports}");
    let out = host.run_in(&web.netns_path, &fetch(&format!("http://{HOST_ADDR}:8080/"), 5));
    assert_eq!(body(&out), "hello from 80\n", "after restart: {out:?}\n{}", host.log_tail());
}

#[tokio::test]
async fn a_taken_port_is_refused_naming_its_holder_and_nothing_is_left() {
    let (host, mut api) = {
        let mut host = TestHost::new();
        host.start_cnetd();
        let api = host.api().await;
        (host, api)
    };
    create_network(&mut api, "n1", false, &[]).await;
    create_network(&mut api, "n2", false, &[]).await;
    let (web, _) = publish(&mut api, "web", "n1", vec![tcp(8080, 80), port("udp", "127.0.0.1", 53, 53)]).await;

    let table = host.nft_table();
    let vethes = host.links_starting("veth");
    let second = api.create_sandbox("second").await;
    for (bad, holder_msg) in [
        (tcp(8080, 81), "Bind for 0.0.0.0:8080 failed: port is already allocated by container web"),
        (
            port("tcp", "127.0.0.1", 8080, 80),
            "Bind for 127.0.0.1:8080 failed: port is already allocated by container web",
        ),
        (port("udp", "", 53, 53), "Bind for 0.0.0.0:53 failed: port is already allocated by container web"),
    ] {
        for network in ["n1", "n2"] {
            let err = api
                .sandboxes
                .connect_network(ConnectRequest {
                    sandbox: second.id.clone(),
                    network: network.into(),
                    ports: vec![tcp(7000, 70), bad.clone()],
                    ..Default::default()
                })
                .await
                .expect_err("a taken port was published twice");
            assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
            assert!(err.message().contains(holder_msg), "{:?} does not say {holder_msg:?}", err.message());
        }
    }
    assert_eq!(host.links_starting("veth"), vethes, "a veth was left behind");
    assert_eq!(host.nft_table(), table, "the table changed");
    let sb = api.sandboxes.inspect_sandbox(SandboxRef { sandbox: second.id.clone() }).await.unwrap().into_inner();
    assert!(sb.endpoints.is_empty(), "an endpoint was left behind: {sb:?}");
    let n1 = api.networks.inspect_network(NetworkRef { network: "n1".into() }).await.unwrap().into_inner();
    assert_eq!(n1.endpoints.len(), 1, "{n1:?}");

    // Other protocol or address: free. And once the holder goes, the port is free.
    api.connect_with(ConnectRequest {
        sandbox: second.id.clone(),
        network: "n2".into(),
        ports: vec![port("udp", "", 8080, 80), port("tcp", "127.0.0.2", 53, 53)],
        ..Default::default()
    })
    .await;
    api.remove_sandbox(&web.id).await;
    let (_, ep) = publish(&mut api, "third", "n1", vec![tcp(8080, 80)]).await;
    assert_eq!(ep.ports, vec![tcp(8080, 80)]);
}

// ------------------------------------------------------------------------------------ isolation

#[tokio::test]
async fn icc_false_internal_and_no_masquerade() {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.start_cnetd();
    let mut api = host.api().await;
    create_network(&mut api, "noicc", false, &[("com.docker.network.bridge.enable_icc", "false")]).await;
    create_network(&mut api, "inside", true, &[]).await;
    create_network(&mut api, "nomasq", false, &[("com.docker.network.bridge.enable_ip_masquerade", "false")]).await;

    // icc=false: no traffic between containers of the network; the gateway and the world still work.
    let (a, _) = publish(&mut api, "a", "noicc", vec![]).await;
    let (_, eb) = publish(&mut api, "b", "noicc", vec![]).await;
    assert!(!host.ping_once(&a.netns_path, &eb.ipv4_address), "icc=false, yet a pings b");
    let out = host.run_in(&a.netns_path, &fetch(&upstream.url(), 5));
    assert_eq!(body(&out), upstream.body(), "icc=false network cannot reach the upstream: {out:?}");

    // internal: ports are refused, and nothing gets out.
    let c = api.create_sandbox("c").await;
    let err = api
        .sandboxes
        .connect_network(ConnectRequest {
            sandbox: c.id.clone(),
            network: "inside".into(),
            ports: vec![tcp(8080, 80)],
            ..Default::default()
        })
        .await
        .expect_err("an internal network published a port");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("internal"), "{err:?}");
    let (d, _) = publish(&mut api, "d", "inside", vec![]).await;
    assert!(!host.run_in(&d.netns_path, &fetch(&upstream.url(), 2)).status.success(), "internal got out");

    // enable_ip_masquerade=false: packets leave un-NATed, and the upstream has no route back.
    let (e, _) = publish(&mut api, "e", "nomasq", vec![]).await;
    assert!(!host.run_in(&e.netns_path, &fetch(&upstream.url(), 2)).status.success(), "nomasq was NATed");
    let (subnet, _) = {
        let net = api.network("nomasq").await;
        let c = net.ipam.unwrap().config.remove(0);
        (c.subnet, c.gateway)
    };
    for set in ["masq4", "masq4_own"] {
        let listed = host.ns().run_ok(&format!("nft list set inet cnet {set}"));
        assert!(!listed.contains(&subnet), "{subnet} of nomasq is in {set}:\n{listed}");
    }
    // Its published ports reached from its own bridge are still masqueraded (on the host only).
    let listed = host.ns().run_ok("nft list set inet cnet hairpin4");
    assert!(listed.contains(&subnet), "{subnet} of nomasq is not in hairpin4:\n{listed}");
}

#[tokio::test]
async fn host_binding_ipv4_is_the_default_host_address() {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.start_cnetd();
    let mut api = host.api().await;
    create_network(&mut api, "lo-only", false, &[("com.docker.network.bridge.host_binding_ipv4", "127.0.0.1")]).await;
    let (web, ep) = publish(&mut api, "web", "lo-only", vec![tcp(8080, 80)]).await;
    assert_eq!(ep.ports, vec![port("tcp", "127.0.0.1", 8080, 80)]);
    let _http = serve(&host, &web, 80);
    let out = host.ns().run(&fetch("http://127.0.0.1:8080/", 5));
    assert_eq!(body(&out), "hello from 80\n", "{out:?}");
    let out = upstream.ns().run(&fetch(&format!("http://{HOST_ADDR}:8080/"), 2));
    assert!(!out.status.success(), "published on 127.0.0.1 only, yet reached from outside: {out:?}");
}

// ------------------------------------------------------------------------------------ IPv6

#[tokio::test]
async fn ipv6_host_addresses() {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.ns().run_ok("ip addr add 2001:db8:1::1/64 dev up0 nodad");
    upstream.ns().run_ok("ip addr add 2001:db8:1::2/64 dev eth0 nodad");
    host.start_cnetd();
    let mut api = host.api().await;
    let req = CreateNetworkRequest {
        name: "six".into(),
        enable_ipv6: true,
        ipam: Some(Ipam {
            config: vec![IpamConfig { subnet: "fd00:c0de::/64".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    };
    api.networks.create_network(req).await.unwrap();
    let ports = vec![port("tcp", "2001:db8:1::1", 8086, 80), tcp(8087, 80)];
    let (web, ep) = publish(&mut api, "web", "six", ports).await;
    assert!(!ep.ipv6_address.is_empty(), "{ep:?}");
    let _http = serve(&host, &web, 80);
    for url in ["http://[2001:db8:1::1]:8086/", "http://[2001:db8:1::1]:8087/", &format!("http://{HOST_ADDR}:8087/")] {
        let out = upstream.ns().run(&fetch(url, 5));
        assert_eq!(body(&out), "hello from 80\n", "outside -> {url}: {out:?}");
        let out = host.ns().run(&fetch(url, 5));
        assert_eq!(body(&out), "hello from 80\n", "host -> {url}: {out:?}");
    }
    // A v4-only network refuses an IPv6 host address.
    create_network(&mut api, "four", false, &[]).await;
    let s = api.create_sandbox("s").await;
    let err = api
        .sandboxes
        .connect_network(ConnectRequest {
            sandbox: s.id.clone(),
            network: "four".into(),
            ports: vec![port("tcp", "::1", 8088, 80)],
            ..Default::default()
        })
        .await
        .expect_err("IPv6 host address on a v4-only network");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

#[tokio::test]
async fn ports_on_ipv6_loopback_are_relayed_from_the_host() {
    let mut host = TestHost::new();
    host.start_cnetd();
    let mut api = host.api().await;
    let req = CreateNetworkRequest {
        name: "six".into(),
        enable_ipv6: true,
        ipam: Some(Ipam {
            config: vec![IpamConfig { subnet: "fd00:c0de::/64".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    };
    api.networks.create_network(req).await.unwrap();
    let ports = vec![port("tcp", "::1", 8080, 80), port("udp", "::1", 5353, 7777), port("tcp", "127.0.0.1", 8080, 80)];
    let (web, _) = publish(&mut api, "web", "six", ports).await;
    let http = serve(&host, &web, 80);
    let _udp = udp_echo6(&host, &web, 7777);
    let reachable = |host: &TestHost| {
        for url in ["http://[::1]:8080/", "http://127.0.0.1:8080/"] {
            let out = host.ns().run(&fetch(url, 5));
            assert_eq!(body(&out), "hello from 80\n", "host -> {url}: {out:?}\n{}", host.log_tail());
        }
        let out = host.ns().run(&udp_ask_ip("::1", 5353));
        assert_eq!(body(&out), "from fd00:c0de::1", "host -> udp [::1]:5353: {out:?}\n{}", host.log_tail());
    };
    reachable(&host);
    // Relayed by cnetd from the bridge's address, not NATed: no ::1 in the table.
    assert!(http.log().contains("fd00:c0de::1"), "httpd saw\n{}", http.log());
    let table = host.nft_table();
    assert!(!table.contains("::1 . tcp") && !table.contains("::1 . udp"), "::1 in the table:\n{table}");

    // A port on ::1 that some other program of the host holds is refused, and nothing is left.
    let mut squatter = host.ns().spawn(
        "perl",
        &[
            "-MIO::Socket::IP",
            "-e",
            "$s=IO::Socket::IP->new(LocalHost=>'::1',LocalService=>9090,Listen=>1) or die $!; sleep 600",
        ],
    );
    wait_for("the squatter to listen on [::1]:9090", Duration::from_secs(10), || {
        squatter.assert_running();
        proc_net_has_listener(&host.ns().run_ok("cat /proc/net/tcp6"), 9090)
    });
    let vethes = host.links_starting("veth");
    let other = api.create_sandbox("other").await;
    let err = api
        .sandboxes
        .connect_network(ConnectRequest {
            sandbox: other.id.clone(),
            network: "six".into(),
            ports: vec![port("tcp", "::1", 9091, 91), port("tcp", "::1", 9090, 90)],
            ..Default::default()
        })
        .await
        .expect_err("::1:9090 is taken by another program");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("[::1]:9090"), "{err:?}");
    assert_eq!(host.links_starting("veth"), vethes, "a veth was left behind");
    // ...and the port it did bind first is free again.
    api.connect_with(ConnectRequest {
        sandbox: other.id.clone(),
        network: "six".into(),
        ports: vec![port("tcp", "::1", 9091, 91)],
        ..Default::default()
    })
    .await;

    // Relayed again after a crash.
    drop(api);
    host.kill_cnetd(SIGKILL);
    host.start_cnetd();
    reachable(&host);

    // Stopped at disconnect.
    let mut api = host.api().await;
    api.disconnect(&web.id, "six").await;
    let out = host.ns().run(&fetch("http://[::1]:8080/", 2));
    assert!(!out.status.success(), "[::1]:8080 still relayed after disconnect: {out:?}");
    let (_, again) = publish(&mut api, "again", "six", vec![port("tcp", "::1", 8080, 80)]).await;
    assert_eq!(again.ports, vec![port("tcp", "::1", 8080, 80)]);
}

// ------------------------------------------------------------------------------------ recovery

#[tokio::test]
async fn rules_come_back_exactly_after_a_deleted_table_and_a_crash() {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.start_cnetd();
    let mut api = host.api().await;
    create_network(&mut api, "front", false, &[]).await;
    create_network(&mut api, "back", false, &[("com.docker.network.bridge.enable_icc", "false")]).await;
    create_network(&mut api, "priv", true, &[]).await;
    let (web, _) = publish(&mut api, "web", "front", vec![tcp(8080, 80), port("udp", "127.0.0.1", 5353, 53)]).await;
    publish(&mut api, "db", "back", vec![tcp(0, 5432)]).await;
    publish(&mut api, "p", "priv", vec![]).await;
    let _http = serve(&host, &web, 80);
    let reachable = |host: &TestHost| {
        let out = upstream.ns().run(&fetch(&format!("http://{HOST_ADDR}:8080/"), 3));
        assert_eq!(body(&out), "hello from 80\n", "{out:?}\n{}", host.log_tail());
    };
    reachable(&host);
    let before = host.nft_table();
    for needle in ["8080", "5353", "49153", "ct status dnat accept"] {
        assert!(before.contains(needle), "{needle} missing:\n{before}");
    }

    // Deleted by hand: the watcher rebuilds it within a few seconds.
    host.ns().run_ok("nft delete table inet cnet");
    wait_for("the watcher to rebuild the deleted table", Duration::from_secs(10), || host.has_nft_table());
    let rebuilt = host.nft_table();
    assert_eq!(normalised(&rebuilt), normalised(&before), "rebuilt:\n{rebuilt}\nbefore:\n{before}");
    assert!(host.log().contains("rebuil"), "no warning logged:\n{}", host.log_tail());
    reachable(&host);

    // kill -9 and restart: the same table, no duplicates.
    drop(api);
    host.kill_cnetd(SIGKILL);
    host.start_cnetd();
    let after = host.nft_table();
    assert_eq!(normalised(&after), normalised(&before), "after restart:\n{after}\nbefore:\n{before}");
    assert_eq!(rule_count(&after, "dnat ip to"), 4, "{after}");
    assert_eq!(rule_count(&after, "ct status dnat accept"), 1, "{after}");
    reachable(&host);
    let mut api = host.api().await;
    // Still held after the restart.
    let s = api.create_sandbox("late").await;
    let err = api
        .sandboxes
        .connect_network(ConnectRequest {
            sandbox: s.id.clone(),
            network: "front".into(),
            ports: vec![tcp(8080, 80)],
            ..Default::default()
        })
        .await
        .expect_err("8080 is taken");
    assert!(err.message().contains("container web"), "{err:?}");
}
