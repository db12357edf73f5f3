//! End-to-end tests of the embedded DNS (127.0.0.11 in every sandbox on a user-defined network),
//! with real clients (`dig`, `busybox nslookup`) run inside the sandboxes' namespaces. "The
//! internet's" resolver is the kit's upstream namespace running `fake-dns` on 198.51.100.2:53,
//! and cnetd is started with `--dns 198.51.100.2`. They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test dns`.

use std::collections::BTreeSet;
use std::time::Duration;

use cnet_api::v1::{ConnectRequest, CreateNetworkRequest, CreateSandboxRequest, Endpoint, Sandbox};
use cnet_tests::{Api, Bg, SIGKILL, TestHost, Upstream, addr_of, bin, wait_for};

const UPSTREAM_DNS: &str = "198.51.100.2";
/// What fake-dns answers for `www.upstream.test`.
const WWW_ADDR: &str = "192.0.2.80";

/// A host whose cnetd forwards to a fake upstream DNS server (kept alive by the returned values).
struct DnsLab {
    host: TestHost,
    api: Api,
    dns: Option<Bg>,
    _upstream: Upstream,
}

async fn lab() -> DnsLab {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    let fake = bin("fake-dns");
    let dns = upstream.ns().spawn(fake.to_str().unwrap(), &[&format!("{UPSTREAM_DNS}:53")]);
    wait_for("fake-dns to answer", Duration::from_secs(10), || {
        let out = host.ns().run(&format!("dig +time=1 +tries=1 +short @{UPSTREAM_DNS} www.upstream.test"));
        String::from_utf8_lossy(&out.stdout).trim() == WWW_ADDR
    });
    host.start_cnetd_with(&["--dns", UPSTREAM_DNS]);
    let api = host.api().await;
    DnsLab { host, api, dns: Some(dns), _upstream: upstream }
}

/// What dig saw: status, header flags, and the answer records' data.
#[derive(Debug)]
struct Dig {
    /// dig's exit code: 0 for any answer (NXDOMAIN included), 9 when no server replied.
    exit: Option<i32>,
    status: String,
    flags: Vec<String>,
    answers: Vec<String>,
    raw: String,
}

impl Dig {
    fn ok(&self) -> &Self {
        assert_eq!(self.status, "NOERROR", "{}", self.raw);
        self
    }

    /// The resolver answered, with `status` and no records. A dead resolver fails this: it gives
    /// no status at all.
    fn empty(&self, status: &str) {
        assert_eq!((self.exit, self.status.as_str()), (Some(0), status), "{}", self.raw);
        assert!(self.answers.is_empty(), "{}", self.raw);
    }

    /// No server replied at all (dig's exit code 9: refused, unreachable or timed out).
    fn no_reply(&self) {
        assert_eq!((self.exit, self.status.as_str()), (Some(9), "NO ANSWER"), "{}", self.raw);
    }
}

/// `dig @127.0.0.11 ARGS` inside the sandbox (one try, `secs` seconds).
fn dig_in(host: &TestHost, sandbox: &Sandbox, args: &str, secs: u32) -> Dig {
    let script = format!("dig +time={secs} +tries=1 +noall +comments +answer @127.0.0.11 {args}");
    let out = host.run_in(&sandbox.netns_path, &script);
    let raw = format!(
        "`{script}` in {}:\n{}{}",
        sandbox.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut status = String::new();
    let mut flags = Vec::new();
    let mut answers = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            status = rest.split(',').next().unwrap_or("").trim().to_string();
        } else if let Some(rest) = line.strip_prefix(";; flags: ") {
            flags = rest.split(';').next().unwrap_or("").split_whitespace().map(str::to_string).collect();
        } else if !line.starts_with(';') && !line.trim().is_empty() {
            // name ttl class type rdata...
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 {
                answers.push(fields[4..].join(" "));
            }
        }
    }
    if status.is_empty() {
        status = "NO ANSWER".into();
    }
    Dig { exit: out.status.code(), status, flags, answers, raw }
}

fn dig(host: &TestHost, sandbox: &Sandbox, args: &str) -> Dig {
    dig_in(host, sandbox, args, 3)
}

/// The addresses a name resolves to from the sandbox (A records, in answer order).
fn a_of(host: &TestHost, sandbox: &Sandbox, name: &str) -> Vec<String> {
    // `-q`: dig would take a bare `a` for the query type.
    let d = dig(host, sandbox, &format!("-q {name}"));
    assert_eq!(
        d.status,
        "NOERROR",
        "{}\n--- cnetd log ---\n{}",
        d.raw,
        host.log().lines().filter(|l| !l.contains("h2::")).collect::<Vec<_>>().join("\n")
    );
    d.answers
}

fn ip(ep: &Endpoint) -> String {
    addr_of(&ep.ipv4_address).to_string()
}

async fn create_network(api: &mut Api, name: &str) {
    let req = CreateNetworkRequest { name: name.into(), ..Default::default() };
    api.networks.create_network(req).await.unwrap_or_else(|e| panic!("CreateNetwork({name}): {e}"));
}

async fn sandbox_with(api: &mut Api, req: CreateSandboxRequest) -> Sandbox {
    api.sandboxes.create_sandbox(req).await.unwrap_or_else(|e| panic!("CreateSandbox: {e}")).into_inner()
}

async fn connect_alias(api: &mut Api, sandbox: &Sandbox, network: &str, aliases: &[&str]) -> Endpoint {
    api.connect_with(ConnectRequest {
        sandbox: sandbox.id.clone(),
        network: network.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    })
    .await
}

// ------------------------------------------------------------------------------------ names

#[tokio::test]
async fn names_resolve_on_user_networks_only() {
    let lab = &mut lab().await;
    let (host, api) = (&lab.host, &mut lab.api);
    create_network(api, "net1").await;
    create_network(api, "net2").await;
    let (a, _) = api.sandbox_on("a", "net1").await;
    let b =
        sandbox_with(api, CreateSandboxRequest { name: "b".into(), hostname: "bhost".into(), ..Default::default() })
            .await;
    let eb = connect_alias(api, &b, "net1", &["bee"]).await;
    let (c, ec) = api.sandbox_on("c", "net2").await;
    let (d, _) = api.sandbox_on("d", "bridge").await;

    // resolv.conf: the embedded resolver on user networks, the host's on the default bridge.
    let a_msg = api.sandbox(&a.id).await;
    assert!(a_msg.resolv_conf.contains("nameserver 127.0.0.11\n"), "{}", a_msg.resolv_conf);
    assert!(a_msg.resolv_conf.contains("options ndots:0"), "{}", a_msg.resolv_conf);
    let d_msg = api.sandbox(&d.id).await;
    assert!(!d_msg.resolv_conf.contains("127.0.0.11"), "{}", d_msg.resolv_conf);

    // Container name, hostname, alias, name.network, any case.
    for name in ["b", "B", "bhost", "bee", "b.net1", "BEE.NET1", "bhost.net1"] {
        assert_eq!(a_of(host, &a, name), vec![ip(&eb)], "{name}");
    }
    let r = dig(host, &a, "b");
    assert!(r.flags.contains(&"aa".to_string()), "{}", r.raw);
    // Over TCP too.
    assert_eq!(dig(host, &a, "+tcp b").ok().answers, vec![ip(&eb)]);
    // busybox's resolver.
    let out = host.run_in_ok(&a.netns_path, "busybox nslookup b 127.0.0.11");
    assert!(out.contains(&ip(&eb)), "busybox nslookup b:\n{out}");

    // A name with no record of the asked type: NOERROR, no answer.
    dig(host, &a, "AAAA b").empty("NOERROR");

    // PTR of a container address.
    assert_eq!(dig(host, &a, &format!("-x {}", ip(&eb))).ok().answers, vec!["b.net1.".to_string()]);

    // Containers on another network are not seen (the upstream says NXDOMAIN), either way.
    for (from, name) in [(&a, "c"), (&a, "c.net2"), (&c, "a"), (&c, "b.net1"), (&c, "bee")] {
        dig(host, from, &format!("-q {name}")).empty("NXDOMAIN");
    }
    dig(host, &c, &format!("-x {}", ip(&eb))).empty("NXDOMAIN");
    assert_eq!(a_of(host, &c, "c"), vec![ip(&ec)]);
    assert_eq!(dig(host, &c, &format!("-x {}", ip(&ec))).ok().answers, vec!["c.net2.".to_string()]);

    // No resolver on the default bridge (where dig does reach the host's resolver, through NAT),
    // and none outside the sandboxes (where lab() proved dig reaches the upstream).
    let upstream =
        host.run_in_ok(&d.netns_path, &format!("dig +time=3 +tries=1 +short @{UPSTREAM_DNS} www.upstream.test"));
    assert_eq!(upstream.trim(), WWW_ADDR, "d asks the host's resolver directly");
    dig_in(host, &d, "-q a", 1).no_reply();
    let out = host.ns().run("dig +time=1 +tries=1 +short @127.0.0.11 -q a");
    assert_eq!(out.status.code(), Some(9), "the host namespace answers on 127.0.0.11: {out:?}");
}

#[tokio::test]
async fn ipv6_networks_answer_aaaa_and_ip6_ptr() {
    let lab = &mut lab().await;
    let (host, api) = (&lab.host, &mut lab.api);
    let req = CreateNetworkRequest { name: "v6net".into(), enable_ipv6: true, ..Default::default() };
    api.networks.create_network(req).await.unwrap_or_else(|e| panic!("CreateNetwork(v6net): {e}"));
    let (a, _) = api.sandbox_on("a", "v6net").await;
    let (_, eb) = api.sandbox_on("b", "v6net").await;
    let v6 = addr_of(&eb.ipv6_address).to_string();
    assert!(v6.contains(':'), "b has no IPv6 address: {eb:?}");

    assert_eq!(a_of(host, &a, "b"), vec![ip(&eb)]);
    let aaaa = dig(host, &a, "AAAA b");
    let answers: Vec<std::net::Ipv6Addr> = aaaa.answers.iter().map(|x| x.parse().unwrap()).collect();
    assert_eq!(answers, vec![v6.parse::<std::net::Ipv6Addr>().unwrap()], "{}", aaaa.raw);
    assert_eq!(dig(host, &a, &format!("-x {v6}")).ok().answers, vec!["b.v6net.".to_string()]);
}

#[tokio::test]
async fn shared_alias_is_round_robin() {
    let lab = &mut lab().await;
    let (host, api) = (&lab.host, &mut lab.api);
    create_network(api, "rr").await;
    let (client, _) = api.sandbox_on("client", "rr").await;
    let x = api.create_sandbox("x").await;
    let y = api.create_sandbox("y").await;
    let ex = connect_alias(api, &x, "rr", &["svc"]).await;
    let ey = connect_alias(api, &y, "rr", &["svc"]).await;
    let both: BTreeSet<String> = [ip(&ex), ip(&ey)].into();

    let mut firsts = BTreeSet::new();
    for _ in 0..4 {
        let answers = a_of(host, &client, "svc");
        assert_eq!(answers.iter().cloned().collect::<BTreeSet<_>>(), both, "svc: {answers:?}");
        assert_eq!(answers.len(), 2);
        firsts.insert(answers[0].clone());
    }
    assert_eq!(firsts, both, "the first address does not rotate");
    // Each container still has its own name.
    assert_eq!(a_of(host, &client, "x"), vec![ip(&ex)]);
}

// ------------------------------------------------------------------------------------ forwarding

#[tokio::test]
async fn other_names_are_forwarded() {
    let lab = &mut lab().await;
    let (host, api) = (&lab.host, &mut lab.api);
    create_network(api, "fwd").await;
    let (a, _) = api.sandbox_on("a", "fwd").await;

    assert_eq!(a_of(host, &a, "www.upstream.test"), vec![WWW_ADDR.to_string()]);
    assert_eq!(dig(host, &a, "+tcp www.upstream.test").ok().answers, vec![WWW_ADDR.to_string()]);
    let out = host.run_in_ok(&a.netns_path, "busybox nslookup www.upstream.test 127.0.0.11");
    assert!(out.contains(WWW_ADDR), "{out}");

    // A large answer: truncated over UDP (the upstream sends it whole; the resolver cuts it to
    // the client's size), whole over TCP, and dig's automatic retry over TCP gets it all.
    let udp = dig(host, &a, "+ignore +bufsize=1232 TXT big.upstream.test");
    assert!(udp.flags.contains(&"tc".to_string()), "no TC: {}", udp.raw);
    let tcp = dig(host, &a, "+tcp TXT big.upstream.test");
    assert_eq!(tcp.ok().answers.len(), 1, "{}", tcp.raw);
    assert!(tcp.answers[0].len() > 2900, "{}", tcp.raw);
    let retried = dig(host, &a, "+bufsize=1232 TXT big.upstream.test");
    assert_eq!(retried.ok().answers.len(), 1, "{}", retried.raw);

    // A sandbox's own --dns servers win: here one that does not exist, so SERVFAIL in time.
    let lost = sandbox_with(
        api,
        CreateSandboxRequest { name: "lost".into(), dns_servers: vec!["198.51.100.99".into()], ..Default::default() },
    )
    .await;
    api.connect(&lost.id, "fwd").await;
    // SERVFAIL within dig's own 5 s: an answer, not a hang.
    let r = dig_in(host, &lost, "www.upstream.test", 5);
    assert_eq!(r.status, "SERVFAIL", "{}", r.raw);
    // Local names still resolve there.
    assert_eq!(a_of(host, &lost, "a").len(), 1);

    // The upstream goes down: SERVFAIL, not a hang.
    lab.dns.take();
    let r = dig_in(&lab.host, &a, "www.upstream.test", 5);
    assert_eq!(r.status, "SERVFAIL", "{}", r.raw);
}

// ------------------------------------------------------------------------------------ lifecycle

#[tokio::test]
async fn records_follow_connect_disconnect_remove_and_restart() {
    let lab = &mut lab().await;
    let (host, api) = (&mut lab.host, &mut lab.api);
    create_network(api, "live").await;
    let (a, _) = api.sandbox_on("a", "live").await;
    let b = api.create_sandbox("b").await;
    let eb = api.connect(&b.id, "live").await;
    assert_eq!(a_of(host, &a, "b"), vec![ip(&eb)]);
    assert_eq!(a_of(host, &b, "a").len(), 1);

    api.disconnect(&b.id, "live").await;
    let r = dig(host, &a, "b");
    assert_eq!(r.status, "NXDOMAIN", "b still resolves after disconnect: {}", r.raw);
    dig(host, &a, &format!("-x {}", ip(&eb))).empty("NXDOMAIN");

    let eb = api.connect(&b.id, "live").await;
    assert_eq!(a_of(host, &a, "b"), vec![ip(&eb)]);
    api.remove_sandbox(&b.id).await;
    let r = dig(host, &a, "b");
    assert_eq!(r.status, "NXDOMAIN", "b still resolves after removal: {}", r.raw);

    let (c, ec) = api.sandbox_on("c", "live").await;
    host.kill_cnetd(SIGKILL);
    // The daemon is gone, and so is the resolver (its sockets were the daemon's).
    dig_in(host, &a, "c", 1).no_reply();

    host.start_cnetd_with(&["--dns", UPSTREAM_DNS]);
    let mut api = host.api().await;
    assert_eq!(a_of(host, &a, "c"), vec![ip(&ec)]);
    assert_eq!(a_of(host, &c, "a").len(), 1);
    assert_eq!(a_of(host, &c, "www.upstream.test"), vec![WWW_ADDR.to_string()]);
    assert_eq!(dig(host, &c, "b").status, "NXDOMAIN");
    // And it keeps following changes.
    let (d, ed) = api.sandbox_on("d", "live").await;
    assert_eq!(a_of(host, &a, "d"), vec![ip(&ed)]);
    api.remove_sandbox(&d.id).await;
    assert_eq!(dig(host, &a, "d").status, "NXDOMAIN");
}
