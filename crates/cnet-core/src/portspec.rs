//! Docker's port syntax: `-p/--publish` values, `--expose` values and the `ps`/`port` rendering.
//! Pure string handling; the daemon allocates random host ports (host_port 0) and programs them.

use std::net::IpAddr;

use crate::{Endpoint, Error, Network, PortBinding, Protocol, Result};

/// Parses one `-p/--publish` value in every Docker form: `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80` (random host port on that address),
/// `8080:80/udp`, `80/tcp`, `80` (random host port: host_port 0), `8000-8010:80-90` (ranges of equal length; `8000-8010:80`, where Docker
/// would pick one free host port from the range, is rejected with a clear error), `[::1]:8080:80`, `[2001:db8::1]::80`.
/// Errors name the bad value.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>> {
    let bad = |why: &str| Error::invalid(format!("invalid port specification {spec:?}: {why}"));
    let s = spec.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (rest, protocol) = split_proto(s).map_err(|e| bad(&e))?;
    let (raw_ip, raw_host, raw_container) = split_parts(rest).map_err(|e| bad(&e))?;

    let host_ip = match raw_ip {
        None => None,
        Some(ip) => {
            let inner = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
            if inner.is_empty() {
                None
            } else {
                Some(inner.parse::<IpAddr>().map_err(|_| bad(&format!("invalid IP address {ip:?}")))?)
            }
        }
    };

    let (c_start, c_end) = parse_range(raw_container, false).map_err(|e| bad(&format!("container port: {e}")))?;
    let c_len = u32::from(c_end - c_start) + 1;

    let host_ports: Vec<u16> = if raw_host.is_empty() {
        vec![0; c_len as usize]
    } else {
        let (h_start, h_end) = parse_range(raw_host, true).map_err(|e| bad(&format!("host port: {e}")))?;
        let h_len = u32::from(h_end - h_start) + 1;
        if h_start == 0 {
            if h_end != 0 {
                return Err(bad("host port range cannot start at 0"));
            }
            vec![0; c_len as usize]
        } else if h_len == c_len {
            (h_start..=h_end).collect()
        } else if c_len == 1 {
            return Err(bad(&format!(
                "a host port range ({raw_host}) for a single container port is not supported: publish one host port, e.g. {h_start}:{raw_container}"
            )));
        } else {
            return Err(bad(&format!(
                "host port range {raw_host} ({h_len} ports) and container port range {raw_container} ({c_len} ports) differ in length"
            )));
        }
    };

    Ok((c_start..=c_end)
        .zip(host_ports)
        .map(|(container_port, host_port)| PortBinding { protocol, host_ip, host_port, container_port })
        .collect())
}

/// `--expose 80`, `80/udp`, `8000-8010` and image ExposedPorts keys ("80/tcp"): (protocol, port) list, for -P.
pub fn parse_expose(spec: &str) -> Result<Vec<(Protocol, u16)>> {
    let bad = |why: &str| Error::invalid(format!("invalid exposed port {spec:?}: {why}"));
    let s = spec.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (rest, protocol) = split_proto(s).map_err(|e| bad(&e))?;
    if rest.contains(':') {
        return Err(bad("an exposed port cannot have a host part (use -p to publish)"));
    }
    let (start, end) = parse_range(rest, false).map_err(|e| bad(&e))?;
    Ok((start..=end).map(|p| (protocol, p)).collect())
}

/// Docker's rendering for `ps`/`port`: `0.0.0.0:8080->80/tcp`, `[::]:8080->80/tcp`, `127.0.0.1:8080->80/udp`.
/// A binding with host_ip None renders as `0.0.0.0:H->C/proto` (callers on IPv6 networks may add the `[::]` form
/// with [`format_binding_v6_wildcard`]).
pub fn format_binding(b: &PortBinding) -> String {
    let host = match b.host_ip {
        None => "0.0.0.0".to_string(),
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => format!("[{a}]"),
    };
    format!("{host}:{}->{}/{}", b.host_port, b.container_port, b.protocol.as_str())
}

/// The `[::]:H->C/proto` line docker shows next to `0.0.0.0:H->C/proto` for a wildcard binding on an IPv6 network.
pub fn format_binding_v6_wildcard(b: &PortBinding) -> String {
    format!("[::]:{}->{}/{}", b.host_port, b.container_port, b.protocol.as_str())
}

/// Whether a binding is relayed by cnetd in user space rather than NATed by the driver: those on
/// the host's IPv6 loopback, `[::1]:8080:80`. The kernel never routes a packet with a loopback
/// address out of `lo`, and IPv6 has no `route_localnet`, so no DNAT can take it to a container.
pub fn is_relayed(b: &PortBinding) -> bool {
    b.host_ip == Some(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST))
}

/// Docker's range for random host ports (`-p 80`, `-P`).
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49153..=65535;

/// The holder's name as errors show it: the container (sandbox) name, else the short sandbox id.
pub fn holder_name(e: &Endpoint) -> &str {
    if e.name.is_empty() { crate::id::short(&e.sandbox_id) } else { &e.name }
}

/// `0.0.0.0:8080`, `[::1]:8080`, as Docker's "Bind for ... failed" shows it.
fn host_addr_port(ip: Option<IpAddr>, port: u16) -> String {
    match ip {
        None => format!("0.0.0.0:{port}"),
        Some(IpAddr::V4(a)) => format!("{a}:{port}"),
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
    }
}

/// Whether two host addresses of bindings share an address. None is every address of both
/// families; 0.0.0.0 and :: are every address of theirs.
fn addrs_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(x), Some(y)) => x.is_ipv4() == y.is_ipv4() && (x == y || x.is_unspecified() || y.is_unspecified()),
    }
}

/// Whether two bindings claim the same host (protocol, address, port).
pub fn bindings_clash(a: &PortBinding, b: &PortBinding) -> bool {
    a.protocol == b.protocol && a.host_port == b.host_port && addrs_overlap(a.host_ip, b.host_ip)
}

/// Makes the ports an endpoint asks to publish on `network` concrete, before anything is made:
/// the network's `host_binding_ipv4` becomes the host address of bindings without one, host port 0
/// gets the lowest free port of [`EPHEMERAL_PORTS`], and a port that another endpoint (`existing`)
/// or an earlier binding of the same request holds is refused, naming the holder:
/// `Bind for 0.0.0.0:8080 failed: port is already allocated by container web`.
/// Internal networks publish nothing; IPv6 host addresses need an IPv6 network.
pub fn resolve_ports<'a>(
    network: &Network,
    requested: &[PortBinding],
    existing: impl IntoIterator<Item = &'a Endpoint>,
) -> Result<Vec<PortBinding>> {
    if requested.is_empty() {
        return Ok(vec![]);
    }
    if network.internal {
        return Err(Error::invalid(format!(
            "network {} is internal: it has no way in or out, so it cannot publish ports ({})",
            network.name,
            requested.iter().map(format_binding).collect::<Vec<_>>().join(", ")
        )));
    }
    let default_ip = match network.option(crate::options::BRIDGE_HOST_BINDING_IPV4) {
        None => None,
        Some(v) => Some(v.parse::<IpAddr>().map_err(|_| {
            Error::invalid(format!(
                "invalid value {v:?} for option {}: expected an IPv4 address",
                crate::options::BRIDGE_HOST_BINDING_IPV4
            ))
        })?),
    };
    let held: Vec<(&PortBinding, &str)> =
        existing.into_iter().flat_map(|e| e.ports.iter().map(move |b| (b, holder_name(e)))).collect();
    let mut out: Vec<PortBinding> = Vec::with_capacity(requested.len());
    for b in requested {
        if b.container_port == 0 {
            return Err(Error::invalid(format!("invalid port binding {}: container port 0", format_binding(b))));
        }
        let mut b = b.clone();
        if b.host_ip.is_none() {
            b.host_ip = default_ip;
        }
        if let Some(ip @ IpAddr::V6(_)) = b.host_ip
            && !network.enable_ipv6
        {
            return Err(Error::invalid(format!(
                "cannot publish {} on network {}: the host address {ip} is IPv6 and the network has no IPv6 (create it with --ipv6)",
                format_binding(&b),
                network.name
            )));
        }
        if is_relayed(&b) && b.protocol == Protocol::Sctp {
            return Err(Error::invalid(format!(
                "cannot publish {}: ports on ::1 are relayed by cnetd (the kernel does not route ::1 out of lo), \
                 and it relays TCP and UDP only",
                format_binding(&b)
            )));
        }
        let clash = |cand: &PortBinding| -> Option<String> {
            if let Some((_, holder)) = held.iter().find(|(h, _)| bindings_clash(h, cand)) {
                return Some(format!("container {holder}"));
            }
            out.iter().find(|o| bindings_clash(o, cand)).map(|_| "this request".to_string())
        };
        if b.host_port == 0 {
            let free = EPHEMERAL_PORTS.clone().find(|&p| clash(&PortBinding { host_port: p, ..b.clone() }).is_none());
            match free {
                Some(p) => b.host_port = p,
                None => {
                    return Err(Error::precondition(format!(
                        "no free host port in {}-{} for {}/{}",
                        EPHEMERAL_PORTS.start(),
                        EPHEMERAL_PORTS.end(),
                        b.container_port,
                        b.protocol.as_str()
                    )));
                }
            }
        } else if let Some(holder) = clash(&b) {
            return Err(Error::exists(format!(
                "Bind for {} failed: port is already allocated by {holder}",
                host_addr_port(b.host_ip, b.host_port)
            )));
        }
        out.push(b);
    }
    Ok(out)
}

/// Splits a trailing `/proto` off (default tcp).
fn split_proto(s: &str) -> std::result::Result<(&str, Protocol), String> {
    match s.rsplit_once('/') {
        None => Ok((s, Protocol::Tcp)),
        Some((rest, proto)) => {
            if proto.is_empty() {
                return Err("empty protocol after '/'".into());
            }
            let p = proto.parse::<Protocol>().map_err(|e| e.to_string())?;
            Ok((rest, p))
        }
    }
}

/// `[ip:][hostPort:]containerPort` -> (ip, hostPort, containerPort), ip bracketed or not (Docker's splitParts).
fn split_parts(s: &str) -> std::result::Result<(Option<&str>, &str, &str), String> {
    if let Some(after) = s.strip_prefix('[') {
        let close = after.find(']').ok_or("unterminated '[' in IPv6 address")?;
        let ip = &s[..close + 2];
        let rest = &s[close + 2..];
        let rest = rest.strip_prefix(':').ok_or("expected ':' after the bracketed IPv6 address")?;
        let (host, container) = rest.split_once(':').ok_or("expected [ip]:hostPort:containerPort")?;
        return Ok((Some(ip), host, container));
    }
    let parts: Vec<&str> = s.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    match n {
        1 => Ok((None, "", container)),
        2 => Ok((None, parts[0], container)),
        _ => {
            // Everything before the host port is the address (an unbracketed IPv6 address keeps its colons).
            let ip_len: usize = parts[..n - 2].iter().map(|p| p.len() + 1).sum::<usize>() - 1;
            Ok((Some(&s[..ip_len]), parts[n - 2], container))
        }
    }
}

/// `80` or `8000-8010` -> (start, end). Port 0 is only allowed on the host side (random).
fn parse_range(s: &str, allow_zero: bool) -> std::result::Result<(u16, u16), String> {
    let port = |p: &str| -> std::result::Result<u16, String> {
        let p = p.trim();
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid port {p:?}"));
        }
        let v: u32 = p.parse().map_err(|_| format!("invalid port {p:?}"))?;
        if v > 65535 {
            return Err(format!("port {v} out of range 1-65535"));
        }
        if v == 0 && !allow_zero {
            return Err("port 0 is not allowed".into());
        }
        Ok(v as u16)
    };
    if s.is_empty() {
        return Err("no port given".into());
    }
    match s.split_once('-') {
        None => {
            let p = port(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("invalid range {s:?}: end before start"));
            }
            Ok((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn pb(protocol: Protocol, host_ip: Option<IpAddr>, host_port: u16, container_port: u16) -> PortBinding {
        PortBinding { protocol, host_ip, host_port, container_port }
    }
    const LO: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

    #[test]
    fn simple_forms() {
        assert_eq!(parse_publish("8080:80").unwrap(), vec![pb(Protocol::Tcp, None, 8080, 80)]);
        assert_eq!(parse_publish("127.0.0.1:8080:80").unwrap(), vec![pb(Protocol::Tcp, LO, 8080, 80)]);
        assert_eq!(parse_publish("127.0.0.1::80").unwrap(), vec![pb(Protocol::Tcp, LO, 0, 80)]);
        assert_eq!(parse_publish("8080:80/udp").unwrap(), vec![pb(Protocol::Udp, None, 8080, 80)]);
        assert_eq!(parse_publish("8080:80/UDP").unwrap(), vec![pb(Protocol::Udp, None, 8080, 80)]);
        assert_eq!(parse_publish("80/tcp").unwrap(), vec![pb(Protocol::Tcp, None, 0, 80)]);
        assert_eq!(parse_publish("80").unwrap(), vec![pb(Protocol::Tcp, None, 0, 80)]);
        assert_eq!(parse_publish("0:80").unwrap(), vec![pb(Protocol::Tcp, None, 0, 80)]);
        assert_eq!(parse_publish("9000:80/sctp").unwrap(), vec![pb(Protocol::Sctp, None, 9000, 80)]);
        assert_eq!(parse_publish(":80").unwrap(), vec![pb(Protocol::Tcp, None, 0, 80)]);
        assert_eq!(
            parse_publish("0.0.0.0:8080:80").unwrap(),
            vec![pb(Protocol::Tcp, Some(Ipv4Addr::UNSPECIFIED.into()), 8080, 80)]
        );
    }

    #[test]
    fn ranges() {
        let v = parse_publish("8000-8010:80-90").unwrap();
        assert_eq!(v.len(), 11);
        assert_eq!(v[0], pb(Protocol::Tcp, None, 8000, 80));
        assert_eq!(v[10], pb(Protocol::Tcp, None, 8010, 90));
        let v = parse_publish("127.0.0.1:7000-7001:70-71/udp").unwrap();
        assert_eq!(v, vec![pb(Protocol::Udp, LO, 7000, 70), pb(Protocol::Udp, LO, 7001, 71)]);
        let v = parse_publish("80-82").unwrap();
        assert_eq!(
            v,
            vec![pb(Protocol::Tcp, None, 0, 80), pb(Protocol::Tcp, None, 0, 81), pb(Protocol::Tcp, None, 0, 82)]
        );
        let v = parse_publish("127.0.0.1::80-81").unwrap();
        assert_eq!(v, vec![pb(Protocol::Tcp, LO, 0, 80), pb(Protocol::Tcp, LO, 0, 81)]);
        assert_eq!(parse_publish("8080-8080:80").unwrap(), vec![pb(Protocol::Tcp, None, 8080, 80)]);
    }

    #[test]
    fn ipv6() {
        let one: IpAddr = Ipv6Addr::LOCALHOST.into();
        assert_eq!(parse_publish("[::1]:8080:80").unwrap(), vec![pb(Protocol::Tcp, Some(one), 8080, 80)]);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_publish("[2001:db8::1]::80").unwrap(), vec![pb(Protocol::Tcp, Some(a), 0, 80)]);
        assert_eq!(parse_publish("[2001:db8::1]:53:53/udp").unwrap(), vec![pb(Protocol::Udp, Some(a), 53, 53)]);
        // Docker also accepts an unbracketed address.
        assert_eq!(parse_publish("::1:8080:80").unwrap(), vec![pb(Protocol::Tcp, Some(one), 8080, 80)]);
        assert_eq!(
            parse_publish("[::]:8080:80").unwrap(),
            vec![pb(Protocol::Tcp, Some(Ipv6Addr::UNSPECIFIED.into()), 8080, 80)]
        );
    }

    #[test]
    fn errors_name_the_value() {
        for bad in [
            "",
            "abc",
            "8080:abc",
            "70000:80",
            "8080:0",
            "8080:80/xyz",
            "8080:80/",
            "300.1.1.1:8080:80",
            "[::1:8080:80",
            "[::1]8080:80",
            "[::1]:80",
            "8000-8010:80-85",
            "8000-8010:80",
            "90-80",
            "8080:-80",
            "1.2.3.4:x:80",
            "8080:80:",
        ] {
            let e = parse_publish(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        let e = parse_publish("8000-8010:80").unwrap_err().to_string();
        assert!(e.contains("single container port"), "{e}");
        let e = parse_publish("8000-8010:80-85").unwrap_err().to_string();
        assert!(e.contains("differ in length"), "{e}");
        let e = parse_publish("8080:80/xyz").unwrap_err().to_string();
        assert!(e.contains("xyz"), "{e}");
    }

    #[test]
    fn expose() {
        assert_eq!(parse_expose("80").unwrap(), vec![(Protocol::Tcp, 80)]);
        assert_eq!(parse_expose("80/tcp").unwrap(), vec![(Protocol::Tcp, 80)]);
        assert_eq!(parse_expose("53/udp").unwrap(), vec![(Protocol::Udp, 53)]);
        assert_eq!(
            parse_expose("8000-8002").unwrap(),
            vec![(Protocol::Tcp, 8000), (Protocol::Tcp, 8001), (Protocol::Tcp, 8002)]
        );
        for bad in ["", "0", "x", "80/foo", "8080:80", "99999", "10-5"] {
            let e = parse_expose(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    fn network(internal: bool, v6: bool, opts: &[(&str, &str)]) -> Network {
        Network {
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            internal,
            enable_ipv6: v6,
            ..Network::new("ab".repeat(32).into(), "net", "bridge")
        }
    }

    fn endpoint(name: &str, ports: Vec<PortBinding>) -> Endpoint {
        Endpoint {
            id: "e".repeat(64).into(),
            name: name.into(),
            network_id: "ab".repeat(32).into(),
            sandbox_id: "0123456789abcdef".repeat(4).into(),
            ifname: "eth0".into(),
            mac: crate::MacAddr::new([0x02, 0x42, 0, 0, 0, 1]),
            ipv4: None,
            ipv6: None,
            aliases: vec![],
            ports,
            driver_data: Default::default(),
            driver_opts: Default::default(),
            gw_priority: 0,
            gateway_v4: None,
            gateway_v6: None,
            link: Default::default(),
        }
    }

    fn parse(specs: &[&str]) -> Vec<PortBinding> {
        specs.iter().flat_map(|s| parse_publish(s).unwrap()).collect()
    }

    #[test]
    fn resolve_conflicts_name_the_holder() {
        let net = network(false, true, &[]);
        let web = endpoint("web", parse(&["8080:80", "127.0.0.1:9000:90/udp"]));
        let anon = endpoint("", parse(&["[::1]:7000:70"]));
        let eps = [web, anon];
        let e = resolve_ports(&net, &parse(&["8080:8080"]), &eps).unwrap_err();
        assert!(matches!(e, Error::AlreadyExists(_)));
        assert_eq!(e.to_string(), "Bind for 0.0.0.0:8080 failed: port is already allocated by container web");
        // A specific address overlaps the wildcard of its family.
        let e = resolve_ports(&net, &parse(&["127.0.0.1:8080:80"]), &eps).unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:8080") && e.to_string().contains("web"), "{e}");
        let e = resolve_ports(&net, &parse(&["0.0.0.0:9000:90/udp"]), &eps).unwrap_err();
        assert!(e.to_string().contains("web"), "{e}");
        let e = resolve_ports(&net, &parse(&["7000:70"]), &eps).unwrap_err();
        assert!(e.to_string().contains("container 012345678"), "{e}");
        // Other protocol, other address of the same port, other family: all free.
        assert!(
            resolve_ports(&net, &parse(&["8080:80/udp", "127.0.0.2:9000:90/udp", "[::1]:9000:90/udp"]), &eps).is_ok()
        );
        assert!(resolve_ports(&net, &parse(&["127.0.0.1:7000:70"]), &eps).is_ok());
        // Within one request.
        let e = resolve_ports(&net, &parse(&["5000:50", "5000:51"]), []).unwrap_err();
        assert!(e.to_string().contains("this request"), "{e}");
    }

    #[test]
    fn resolve_allocates_random_ports() {
        let net = network(false, false, &[]);
        let taken = endpoint("web", vec![pb(Protocol::Tcp, None, 49153, 80), pb(Protocol::Tcp, LO, 49155, 80)]);
        let got = resolve_ports(&net, &parse(&["80-82", "127.0.0.1::80/udp"]), [&taken]).unwrap();
        let ports: Vec<u16> = got.iter().map(|b| b.host_port).collect();
        assert_eq!(ports, vec![49154, 49156, 49157, 49153]);
        assert_eq!(got[3].host_ip, LO);
    }

    #[test]
    fn resolve_rules_of_networks() {
        let e = resolve_ports(&network(true, false, &[]), &parse(&["8080:80"]), []).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("internal"), "{e}");
        assert_eq!(resolve_ports(&network(true, false, &[]), &[], []).unwrap(), vec![]);
        let e = resolve_ports(&network(false, false, &[]), &parse(&["[::1]:8080:80"]), []).unwrap_err();
        assert!(e.to_string().contains("IPv6"), "{e}");
        let v6 = network(false, true, &[]);
        assert!(resolve_ports(&v6, &parse(&["[::1]:8080:80", "[::1]:8080:80/udp"]), []).is_ok());
        let e = resolve_ports(&v6, &parse(&["[::1]:8080:80/sctp"]), []).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("[::1]:8080->80/sctp"), "{e}");
        assert!(is_relayed(&parse(&["[::1]:8080:80"])[0]));
        assert!(!is_relayed(&parse(&["[::]:8080:80"])[0]) && !is_relayed(&parse(&["127.0.0.1:8080:80"])[0]));
        let net = network(false, false, &[("com.docker.network.bridge.host_binding_ipv4", "127.0.0.1")]);
        let got = resolve_ports(&net, &parse(&["8080:80", "10.0.0.1:8081:81"]), []).unwrap();
        assert_eq!(got[0].host_ip, LO);
        assert_eq!(got[1].host_ip, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn format() {
        assert_eq!(format_binding(&pb(Protocol::Tcp, None, 8080, 80)), "0.0.0.0:8080->80/tcp");
        assert_eq!(format_binding(&pb(Protocol::Udp, LO, 8080, 80)), "127.0.0.1:8080->80/udp");
        assert_eq!(
            format_binding(&pb(Protocol::Tcp, Some(Ipv6Addr::UNSPECIFIED.into()), 8080, 80)),
            "[::]:8080->80/tcp"
        );
        assert_eq!(format_binding(&pb(Protocol::Tcp, Some(Ipv6Addr::LOCALHOST.into()), 1, 2)), "[::1]:1->2/tcp");
        assert_eq!(format_binding_v6_wildcard(&pb(Protocol::Tcp, None, 8080, 80)), "[::]:8080->80/tcp");
        // round trip
        for s in ["127.0.0.1:8080:80/udp", "[::1]:8080:80"] {
            let b = &parse_publish(s).unwrap()[0];
            let f = format_binding(b);
            assert!(f.ends_with(if s.ends_with("udp") { "/udp" } else { "/tcp" }), "{f}");
        }
    }
}

/// Fuzzing (issue 14): any text as `-p`, `--expose` and the IPAM flags gives a value or an error,
/// never a panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;
    use crate::ipam::{PoolRequest, parse_cidr};

    proptest! {
        #[test]
        fn fuzz_port_specs(spec in "\\PC{0,40}", shaped in "(\\[[0-9a-f:]{0,12}\\]:|[0-9.]{0,15}:)?[0-9]{0,6}(-[0-9]{0,6})?(:[0-9]{0,6}(-[0-9]{0,6})?)?(/(tcp|udp|sctp|x))?") {
            for s in [&spec, &shaped] {
                if let Ok(bindings) = parse_publish(s) {
                    for b in &bindings {
                        let _ = format_binding(b);
                    }
                }
                let _ = parse_expose(s);
            }
        }

        #[test]
        fn fuzz_ipam_flags(subnet in "\\\\PC{0,24}", gateway in "[0-9a-f.:]{0,20}", range in "[0-9./]{0,20}") {
            let _ = parse_cidr("subnet", &subnet);
            if let Ok(req) = PoolRequest::parse(&subnet, &gateway, &range, [("aux".to_string(), gateway.clone())])
                && let Some(net) = req.subnet
            {
                let _ = crate::ipam::build_pool(&req, net, true);
            }
        }
    }
}
