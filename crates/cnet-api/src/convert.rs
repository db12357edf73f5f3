//! Conversions between the protobuf messages and cnet-core's types, in one place: what enters cnetd
//! is parsed here once (`TryFrom`, with errors naming the bad value), what leaves is built here.

use cnet_core::ipam::{self, PoolRequest};
use cnet_core::shaping::Shaping;
use cnet_core::{Endpoint, Error, IpamPool, Network, PortBinding};

use crate::v1 as pb;

impl From<&PortBinding> for pb::PortBinding {
    fn from(p: &PortBinding) -> pb::PortBinding {
        pb::PortBinding {
            protocol: p.protocol.as_str().into(),
            host_ip: p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: p.host_port.into(),
            container_port: p.container_port.into(),
        }
    }
}

impl TryFrom<&pb::PortBinding> for PortBinding {
    type Error = Error;

    /// A host port of 0 means "cnetd picks one"; a container port must be given.
    fn try_from(p: &pb::PortBinding) -> Result<PortBinding, Error> {
        let port = |what: &str, v: u32, zero_ok: bool| -> Result<u16, Error> {
            match u16::try_from(v) {
                Ok(x) if x != 0 || zero_ok => Ok(x),
                _ => Err(Error::invalid(format!("invalid {what} port {v}: expected 1 to 65535"))),
            }
        };
        Ok(PortBinding {
            protocol: p.protocol.parse()?,
            host_ip: if p.host_ip.is_empty() { None } else { Some(ipam::parse_ip("host address", &p.host_ip)?) },
            host_port: port("host", p.host_port, true)?,
            container_port: port("container", p.container_port, false)?,
        })
    }
}

impl TryFrom<&pb::IpamConfig> for PoolRequest {
    type Error = Error;

    /// `--subnet`, `--gateway`, `--ip-range` and `--aux-address` as cnetd receives them.
    fn try_from(c: &pb::IpamConfig) -> Result<PoolRequest, Error> {
        PoolRequest::parse(&c.subnet, &c.gateway, &c.ip_range, c.aux_addresses.clone())
    }
}

impl From<&IpamPool> for pb::IpamConfig {
    fn from(p: &IpamPool) -> pb::IpamConfig {
        pb::IpamConfig {
            subnet: p.subnet.to_string(),
            gateway: p.gateway.map(|g| g.to_string()).unwrap_or_default(),
            ip_range: p.ip_range.map(|r| r.to_string()).unwrap_or_default(),
            aux_addresses: p.aux_addresses.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        }
    }
}

impl From<&Endpoint> for pb::EndpointSummary {
    /// A local endpoint as `network inspect` lists it.
    fn from(e: &Endpoint) -> pb::EndpointSummary {
        pb::EndpointSummary {
            endpoint_id: e.id.to_string(),
            sandbox_id: e.sandbox_id.to_string(),
            name: e.name.clone(),
            mac_address: e.mac.to_string(),
            ipv4_address: e.ipv4.map(|a| a.to_string()).unwrap_or_default(),
            ipv6_address: e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
            node: String::new(),
            remote: false,
        }
    }
}

impl pb::Network {
    /// A network with its local endpoints, as the API shows it.
    pub fn from_records(n: &Network, endpoints: &[Endpoint]) -> pb::Network {
        pb::Network {
            id: n.id.to_string(),
            name: n.name.clone(),
            driver: n.driver.clone(),
            scope: n.scope.as_str().into(),
            ipam: Some(pb::Ipam {
                driver: "default".into(),
                config: n.pools.iter().map(pb::IpamConfig::from).collect(),
            }),
            options: n.options.clone().into_iter().collect(),
            labels: n.labels.clone().into_iter().collect(),
            internal: n.internal,
            attachable: n.attachable,
            enable_ipv6: n.enable_ipv6,
            created: n.created.clone(),
            builtin: n.builtin,
            endpoints: endpoints.iter().map(pb::EndpointSummary::from).collect(),
        }
    }
}

impl pb::Endpoint {
    /// An endpoint of network `n`, with the gateways it routes through.
    pub fn from_records(e: &Endpoint, n: &Network) -> pb::Endpoint {
        let gw = |v6: bool| {
            let pool = if v6 { n.pool_v6() } else { n.pool_v4() };
            let has_addr = if v6 { e.ipv6.is_some() } else { e.ipv4.is_some() };
            pool.filter(|_| has_addr).and_then(|p| p.gateway).map(|g| g.to_string()).unwrap_or_default()
        };
        let addressed = e.ipv4.is_some() || e.ipv6.is_some();
        pb::Endpoint {
            id: e.id.to_string(),
            name: e.name.clone(),
            network_id: n.id.to_string(),
            network_name: n.name.clone(),
            sandbox_id: e.sandbox_id.to_string(),
            interface_name: if addressed { e.ifname.clone() } else { String::new() },
            mac_address: if addressed { e.mac.to_string() } else { String::new() },
            ipv4_address: e.ipv4.map(|a| a.to_string()).unwrap_or_default(),
            ipv6_address: e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
            ipv4_gateway: gw(false),
            ipv6_gateway: gw(true),
            aliases: e.aliases.clone(),
            ports: e.ports.iter().map(pb::PortBinding::from).collect(),
            conflict: String::new(),
            driver_opts: e.driver_opts.clone().into_iter().collect(),
            gw_priority: e.gw_priority,
        }
    }
}

impl From<&Shaping> for pb::LinkShaping {
    fn from(s: &Shaping) -> pb::LinkShaping {
        pb::LinkShaping {
            rate_bps: s.rate_bps,
            delay_us: s.delay_us,
            jitter_us: s.jitter_us,
            loss_ppm: s.loss_ppm,
            corrupt_ppm: s.corrupt_ppm,
        }
    }
}

impl TryFrom<&pb::LinkShaping> for Shaping {
    type Error = Error;

    /// A link's shaping as cnetd receives it, checked (jitter needs a delay, at most 100%).
    fn try_from(s: &pb::LinkShaping) -> Result<Shaping, Error> {
        let shaping = Shaping {
            rate_bps: s.rate_bps,
            delay_us: s.delay_us,
            jitter_us: s.jitter_us,
            loss_ppm: s.loss_ppm,
            corrupt_ppm: s.corrupt_ppm,
        };
        shaping.validate()?;
        Ok(shaping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_round_trip_and_bad_ones_name_the_value() {
        let p = pb::PortBinding { protocol: "udp".into(), host_ip: "".into(), host_port: 0, container_port: 53 };
        let core = PortBinding::try_from(&p).unwrap();
        assert_eq!(core.protocol, cnet_core::Protocol::Udp);
        assert_eq!(pb::PortBinding::from(&core), p);
        let on_lo = pb::PortBinding { host_ip: "::1".into(), host_port: 8080, ..p.clone() };
        assert_eq!(pb::PortBinding::from(&PortBinding::try_from(&on_lo).unwrap()), on_lo);
        for (bad, needle) in [
            (pb::PortBinding { container_port: 70000, ..p.clone() }, "70000"),
            (pb::PortBinding { container_port: 0, ..p.clone() }, "container port 0"),
            (pb::PortBinding { protocol: "icmp".into(), ..p.clone() }, "icmp"),
            (pb::PortBinding { host_ip: "1.2.3".into(), ..p.clone() }, "1.2.3"),
        ] {
            let err = PortBinding::try_from(&bad).unwrap_err();
            assert!(matches!(&err, Error::InvalidArgument(m) if m.contains(needle)), "{err}");
        }
    }

    #[test]
    fn link_shaping_round_trips_and_is_checked() {
        let s = Shaping { rate_bps: 1_000_000, delay_us: 10_000, jitter_us: 1_000, loss_ppm: 1, corrupt_ppm: 2 };
        assert_eq!(Shaping::try_from(&pb::LinkShaping::from(&s)).unwrap(), s);
        let bad = pb::LinkShaping { jitter_us: 5, ..Default::default() };
        assert!(Shaping::try_from(&bad).unwrap_err().to_string().contains("--jitter"));
    }

    #[test]
    fn ipam_configs_are_parsed_once_here() {
        let c = pb::IpamConfig {
            subnet: "10.10.0.0/24".into(),
            gateway: "10.10.0.254".into(),
            ip_range: String::new(),
            aux_addresses: [("router".to_string(), "10.10.0.2".to_string())].into(),
        };
        let req = PoolRequest::try_from(&c).unwrap();
        assert_eq!(req.subnet, Some("10.10.0.0/24".parse().unwrap()));
        assert_eq!(req.gateway, Some("10.10.0.254".parse().unwrap()));
        assert_eq!(req.ip_range, None);
        let bad = pb::IpamConfig { gateway: "10.10.0.x".into(), ..c };
        assert!(PoolRequest::try_from(&bad).unwrap_err().to_string().contains("10.10.0.x"));
    }
}
