//! The controller's records in memory: networks with their address pools, sandboxes, endpoints,
//! and what the cluster store told about other nodes. One type keeps them in step: a network
//! comes and goes with its pools, an endpoint with its leases. The checks of a request against
//! these records are plain functions of this type, unit-tested without a kernel.

use std::collections::HashMap;
use std::net::IpAddr;

use cnet_cluster::EndpointRecord;
use cnet_core::driver::{Capabilities, PoolPlan};
use cnet_core::ipam::{self, AddressPool, PoolRequest};
use cnet_core::{Endpoint, EndpointId, Error, IpamPool, Network, NetworkId, Result, Sandbox, SandboxId, id};
use ipnetwork::IpNetwork;

use super::ConnectRequest;

#[derive(Default)]
pub(super) struct Records {
    pub(super) networks: HashMap<NetworkId, Network>,
    /// The address pools of each network, by network id; kept by insert/remove_network.
    pools: HashMap<NetworkId, Vec<AddressPool>>,
    pub(super) endpoints: HashMap<EndpointId, Endpoint>,
    pub(super) sandboxes: HashMap<SandboxId, Sandbox>,
    /// Endpoints of global networks that live on other nodes, by endpoint id.
    pub(super) remote: HashMap<EndpointId, EndpointRecord>,
    /// Local endpoints the cluster store refused when they were registered again (their address
    /// was taken while this node was away), with why.
    pub(super) conflicts: HashMap<EndpointId, String>,
}

impl Records {
    /// Adds (or replaces) a network, with fresh address pools made from its IPAM config.
    pub(super) fn insert_network(&mut self, network: Network) {
        self.pools.insert(network.id.clone(), network.pools.iter().cloned().map(AddressPool::new).collect());
        self.networks.insert(network.id.clone(), network);
    }

    /// Removes a network and its pools.
    pub(super) fn remove_network(&mut self, network_id: &str) -> Option<Network> {
        self.pools.remove(network_id);
        self.networks.remove(network_id)
    }

    /// Adds an endpoint read back from the store, marking its addresses as leased. A record
    /// written before endpoints kept their gateways gets them from its network, as every driver's
    /// join gives them (none on internal networks, the pool's gateway of each family it has an
    /// address of), so that it takes part in the default route's election.
    pub(super) fn restore_endpoint(&mut self, mut endpoint: Endpoint) {
        if endpoint.gateway_v4.is_none()
            && endpoint.gateway_v6.is_none()
            && let Some(network) = self.networks.get(&endpoint.network_id)
            && !network.internal
        {
            let gateway =
                |addr: Option<IpNetwork>, pool: Option<&cnet_core::IpamPool>| addr.and(pool.and_then(|p| p.gateway));
            endpoint.gateway_v4 = gateway(endpoint.ipv4, network.pool_v4());
            endpoint.gateway_v6 = gateway(endpoint.ipv6, network.pool_v6());
        }
        self.for_each_lease(&endpoint, AddressPool::restore);
        self.endpoints.insert(endpoint.id.clone(), endpoint);
    }

    /// Adds an endpoint whose addresses [`Records::lease`] gave.
    pub(super) fn insert_endpoint(&mut self, endpoint: Endpoint) {
        self.endpoints.insert(endpoint.id.clone(), endpoint);
    }

    /// Removes an endpoint and returns its addresses to the pools.
    pub(super) fn remove_endpoint(&mut self, endpoint: &Endpoint) {
        self.release(endpoint);
        self.endpoints.remove(&endpoint.id);
    }

    /// Returns an endpoint's addresses to the pools (a lease given up before the endpoint was
    /// inserted, or with it).
    pub(super) fn release(&mut self, endpoint: &Endpoint) {
        self.for_each_lease(endpoint, AddressPool::release);
    }

    fn for_each_lease(&mut self, endpoint: &Endpoint, mut apply: impl FnMut(&mut AddressPool, IpAddr)) {
        if let Some(pools) = self.pools.get_mut(&endpoint.network_id) {
            for addr in [endpoint.ipv4, endpoint.ipv6].into_iter().flatten() {
                for pool in pools.iter_mut().filter(|p| p.pool().subnet.contains(addr.ip())) {
                    apply(pool, addr.ip());
                }
            }
        }
    }

    /// A network by name, id, or an id prefix only one network has.
    pub(super) fn find_network(&self, reference: &str) -> Result<&Network> {
        self.networks
            .values()
            .find(|n| n.name == reference || n.id == reference)
            .or_else(|| unique_by_id_prefix(self.networks.values(), |n| &n.id, reference))
            .ok_or_else(|| Error::not_found(format!("network {reference} not found")))
    }

    /// A sandbox by id, name, or an id prefix only one sandbox has.
    pub(super) fn find_sandbox(&self, reference: &str) -> Result<&Sandbox> {
        self.sandboxes
            .get(reference)
            .or_else(|| self.sandboxes.values().find(|s| !s.name.is_empty() && s.name == reference))
            .or_else(|| unique_by_id_prefix(self.sandboxes.values(), |s| &s.id, reference))
            .ok_or_else(|| Error::not_found(format!("sandbox {reference} not found")))
    }

    pub(super) fn endpoints_of_network<'a>(&'a self, network_id: &'a str) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.endpoints.values().filter(move |e| e.network_id == network_id)
    }

    pub(super) fn endpoints_of_sandbox<'a>(&'a self, sandbox_id: &'a str) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.endpoints.values().filter(move |e| e.sandbox_id == sandbox_id)
    }

    /// Refuses a requested subnet that overlaps a network this node knows (local or global) whose
    /// subnets `reserves` (not a link's: a point-to-point link's subnet is only in its two
    /// containers, never routed on the host, so links reuse addresses as labs do).
    pub(super) fn check_subnet_free(&self, subnet: &IpNetwork, reserves: &dyn Fn(&Network) -> bool) -> Result<()> {
        let overlapping = |n: &&Network| reserves(n) && n.pools.iter().any(|q| ipam::overlaps(&q.subnet, subnet));
        match self.networks.values().find(overlapping) {
            Some(other) => Err(Error::precondition(format!(
                "subnet {subnet} overlaps with network {} ({})",
                other.name,
                other.pools.iter().map(|p| p.subnet.to_string()).collect::<Vec<_>>().join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// The pools a network create asks for, checked: each has a subnet, overlapping neither a
    /// network this node knows nor another subnet of the request, and its gateway, range and aux
    /// addresses fit it. Without `with_gateway`, a pool has a gateway only if the request names one.
    /// A link's (`PoolPlan::LinkOnly`) subnets are not checked against other networks (see
    /// [`Records::check_subnet_free`]).
    pub(super) fn requested_pools(
        &self,
        requests: &[PoolRequest],
        plan: PoolPlan,
        reserves: &dyn Fn(&Network) -> bool,
    ) -> Result<Vec<IpamPool>> {
        let with_gateway = plan == PoolPlan::Routed;
        let mut pools: Vec<IpamPool> = Vec::with_capacity(requests.len());
        for request in requests {
            let Some(subnet) = request.subnet else {
                return Err(Error::invalid(
                    "an IPAM config needs a subnet: pass --subnet with --gateway, --ip-range or --aux-address",
                ));
            };
            if plan == PoolPlan::Routed {
                self.check_subnet_free(&subnet, reserves)?;
            }
            if pools.iter().any(|q| ipam::overlaps(&q.subnet, &subnet)) {
                return Err(Error::invalid(format!("subnet {subnet} overlaps with another subnet of this request")));
            }
            pools.push(ipam::build_pool(request, subnet, with_gateway)?);
        }
        Ok(pools)
    }

    pub(super) fn taken_subnets(&self) -> Vec<IpNetwork> {
        self.networks.values().flat_map(|n| n.pools.iter().map(|p| p.subnet)).collect()
    }

    /// Whether `sandbox` may join `network` (whose driver has `caps`) as `req` asks: the checks
    /// that need only the records, made before anything is leased or built.
    pub(super) fn check_connect(
        &self,
        sandbox: &Sandbox,
        network: &Network,
        caps: &Capabilities,
        req: &ConnectRequest,
    ) -> Result<()> {
        if sandbox.host_network == caps.needs_sandbox_netns {
            return Err(Error::precondition(if sandbox.host_network {
                format!("a container on the host network cannot be connected to network {}", network.name)
            } else {
                format!("a container with its own namespace cannot be connected to network {}", network.name)
            }));
        }
        if self.endpoints_of_sandbox(&sandbox.id).any(|e| e.network_id == network.id) {
            return Err(Error::exists(format!(
                "endpoint with name {} already exists in network {}",
                if sandbox.name.is_empty() { sandbox.id.as_str() } else { &sandbox.name },
                network.name
            )));
        }
        if network.name == "none" && self.endpoints_of_sandbox(&sandbox.id).next().is_some() {
            return Err(Error::precondition("a container connected to other networks cannot join the none network"));
        }
        if let Some(n) = self
            .endpoints_of_sandbox(&sandbox.id)
            .find_map(|e| self.networks.get(&e.network_id))
            .filter(|n| n.name == "none")
        {
            return Err(Error::precondition(format!(
                "a container on the {} network cannot join other networks",
                n.name
            )));
        }
        for (wanted, v6) in [(req.ipv4, false), (req.ipv6, true)] {
            let configured = network.pools.iter().any(|p| p.subnet.is_ipv6() == v6 && p.configured);
            if let Some(ip) = wanted
                && !configured
            {
                return Err(Error::invalid(format!(
                    "address {ip}: user specified IP address is supported only when connecting to networks with \
                     user configured subnets (network {} has no --subnet of its IPv{} family)",
                    network.name,
                    if v6 { 6 } else { 4 }
                )));
            }
        }
        if let Some(mac) = req.mac
            && !mac.is_unicast()
        {
            return Err(Error::invalid(format!(
                "MAC address {mac} is a multicast address: an endpoint's must be unicast"
            )));
        }
        for a in &req.aliases {
            if a.is_empty() || a.len() > 255 {
                return Err(Error::invalid(format!("invalid alias {a:?}")));
            }
        }
        Ok(())
    }

    /// Refuses an endpoint beyond the most a network's driver takes (`max`: p2p links take two),
    /// naming the containers already on it.
    pub(super) fn check_room(&self, network: &Network, max: Option<usize>) -> Result<()> {
        let Some(max) = max else { return Ok(()) };
        let mut on_it: Vec<String> = self
            .endpoints_of_network(&network.id)
            .map(|e| if e.name.is_empty() { id::short(&e.sandbox_id) } else { e.name.as_str() }.to_string())
            .collect();
        // A global network's endpoints on other nodes count too (as the watch last reported them).
        on_it.extend(self.remote.values().filter(|r| r.network_id == network.id).map(|r| {
            let name = if r.name.is_empty() { id::short(&r.id) } else { r.name.as_str() };
            format!("{name} (on node {})", r.node)
        }));
        if on_it.len() < max {
            return Ok(());
        }
        on_it.sort_unstable();
        Err(Error::precondition(format!(
            "network {} (driver {}) takes at most {max} endpoints and already has them: containers {}; \
             disconnect one of them first",
            network.name,
            network.driver,
            on_it.join(" and ")
        )))
    }

    /// Refuses an interface name (`com.docker.network.endpoint.ifname`) that another endpoint of
    /// the sandbox already has, naming that endpoint's network.
    pub(super) fn check_ifname_free(&self, sandbox: &Sandbox, ifname: &str) -> Result<()> {
        match self.endpoints_of_sandbox(&sandbox.id).find(|e| e.ifname == ifname) {
            Some(e) => Err(Error::precondition(format!(
                "interface {ifname} already exists in container {}: it is its endpoint on network {}",
                if sandbox.name.is_empty() { id::short(&sandbox.id) } else { &sandbox.name },
                self.networks.get(&e.network_id).map_or("?", |n| n.name.as_str())
            ))),
            None => Ok(()),
        }
    }

    /// Which endpoint gives the sandbox its default route of one family: of its endpoints with a
    /// gateway of that family (`extra` counted in, `without` left out), the highest
    /// `gw_priority`, then the network name that sorts first (Docker's rule), then the endpoint
    /// id, so that the answer never depends on the order of a hash map.
    pub(super) fn default_route_holder(
        &self,
        sandbox_id: &str,
        v6: bool,
        extra: Option<&Endpoint>,
        without: Option<&str>,
    ) -> Option<Endpoint> {
        let network_name = |e: &Endpoint| self.networks.get(&e.network_id).map_or("", |n| n.name.as_str());
        self.endpoints_of_sandbox(sandbox_id)
            .filter(|e| Some(e.id.as_str()) != without && extra.is_none_or(|x| x.id != e.id))
            .chain(extra)
            .filter(|e| e.gateway(v6).is_some())
            .min_by(|a, b| {
                b.gw_priority
                    .cmp(&a.gw_priority)
                    .then_with(|| network_name(a).cmp(network_name(b)))
                    .then_with(|| a.id.as_str().cmp(b.id.as_str()))
            })
            .cloned()
    }

    /// The first `ethN` the sandbox does not use yet.
    pub(super) fn next_ifname(&self, sandbox_id: &str) -> String {
        let used: Vec<&str> = self.endpoints_of_sandbox(sandbox_id).map(|e| e.ifname.as_str()).collect();
        (0..).map(|i| format!("eth{i}")).find(|n| !used.contains(&n.as_str())).expect("an unused ethN exists")
    }

    /// Leases the addresses of a new endpoint of a local network: `ipv4`/`ipv6` if given, else
    /// the next free ones; an IPv6 address only where the network has IPv6 or one is asked for.
    /// Nothing stays leased when it fails.
    pub(super) fn lease(
        &mut self,
        network: &Network,
        ipv4: Option<IpAddr>,
        ipv6: Option<IpAddr>,
    ) -> Result<(Option<IpNetwork>, Option<IpNetwork>)> {
        let pools = self.pools.get_mut(&network.id).ok_or_else(|| Error::internal("network has no address pools"))?;
        let mut take = |v6: bool, wanted: Option<IpAddr>| -> Result<Option<IpNetwork>> {
            let Some(pool) = pools.iter_mut().find(|p| p.pool().subnet.is_ipv6() == v6) else {
                return match wanted {
                    Some(ip) => Err(Error::invalid(format!(
                        "address {ip}: network {} has no IPv{} subnet",
                        network.name,
                        if v6 { 6 } else { 4 }
                    ))),
                    None => Ok(None),
                };
            };
            let ip = pool.allocate(wanted)?;
            Ok(Some(IpNetwork::new(ip, pool.pool().subnet.prefix()).expect("prefix of a valid subnet")))
        };
        let v4 = take(false, ipv4)?;
        let v6 = if network.enable_ipv6 || ipv6.is_some() {
            match take(true, ipv6) {
                Ok(v6) => v6,
                Err(e) => {
                    if let (Some(a), Some(pool)) = (v4, pools.iter_mut().find(|p| p.pool().subnet.is_ipv4())) {
                        pool.release(a.ip());
                    }
                    return Err(e);
                }
            }
        } else {
            None
        };
        Ok((v4, v6))
    }
}

/// The one item whose id starts with `prefix`; none when no item or several do, or when `prefix`
/// cannot be (part of) an id.
fn unique_by_id_prefix<'a, T>(
    items: impl Iterator<Item = &'a T>,
    id_of: impl Fn(&T) -> &str,
    prefix: &str,
) -> Option<&'a T> {
    if !id::looks_like_id_prefix(prefix) {
        return None;
    }
    let mut hits = items.filter(|item| id_of(item).starts_with(prefix));
    match (hits.next(), hits.next()) {
        (Some(item), None) => Some(item),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cnet_core::{IpamPool, Scope};

    use super::*;

    const BRIDGE: Capabilities = Capabilities {
        scope: Scope::Local,
        needs_ipam: true,
        needs_sandbox_netns: true,
        user_creatable: true,
        interface_goes_with_endpoint: false,
    };
    const HOST: Capabilities = Capabilities {
        scope: Scope::Local,
        needs_ipam: false,
        needs_sandbox_netns: false,
        user_creatable: false,
        interface_goes_with_endpoint: false,
    };

    fn network(id_digit: char, name: &str, subnets: &[&str]) -> Network {
        Network {
            pools: subnets
                .iter()
                .map(|s| {
                    let subnet: IpNetwork = s.parse().unwrap();
                    IpamPool {
                        subnet,
                        gateway: subnet.iter().nth(1),
                        ip_range: None,
                        aux_addresses: BTreeMap::new(),
                        configured: true,
                    }
                })
                .collect(),
            enable_ipv6: subnets.iter().any(|s| s.contains(':')),
            ..Network::new(id_digit.to_string().repeat(64).into(), name, "bridge")
        }
    }

    fn sandbox(id: &str, name: &str, host_network: bool) -> Sandbox {
        Sandbox {
            id: id.into(),
            name: name.into(),
            hostname: name.into(),
            domainname: String::new(),
            netns_path: format!("/run/cnet/netns/{id}"),
            host_network,
            dns: Default::default(),
            extra_hosts: vec![],
            created: String::new(),
            owner: String::new(),
            sysctls: Default::default(),
        }
    }

    fn endpoint(n: &Network, s: &Sandbox, ifname: &str, ipv4: Option<IpNetwork>) -> Endpoint {
        Endpoint {
            id: format!("ep-{}-{}", s.id, n.name).into(),
            name: s.name.clone(),
            network_id: n.id.clone(),
            sandbox_id: s.id.clone(),
            ifname: ifname.into(),
            mac: cnet_core::MacAddr::new([0x02, 0x42, 0x0a, 0, 0, 0x02]),
            ipv4,
            ipv6: None,
            aliases: vec![],
            ports: vec![],
            driver_data: BTreeMap::new(),
            driver_opts: Default::default(),
            gw_priority: 0,
            gateway_v4: None,
            gateway_v6: None,
            link: Default::default(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn records_with(networks: &[Network], sandboxes: &[Sandbox]) -> Records {
        let mut r = Records::default();
        for n in networks {
            r.insert_network(n.clone());
        }
        for s in sandboxes {
            r.sandboxes.insert(s.id.clone(), s.clone());
        }
        r
    }

    #[test]
    fn networks_are_found_by_name_id_and_unique_prefix() {
        let mut a = network('a', "front", &["10.1.0.0/24"]);
        a.id = format!("ab{}", "1".repeat(62)).into();
        let mut b = network('a', "back", &["10.2.0.0/24"]);
        b.id = format!("ac{}", "2".repeat(62)).into();
        let r = records_with(&[a.clone(), b.clone()], &[]);
        assert_eq!(r.find_network("front").unwrap().id, a.id);
        assert_eq!(r.find_network(&b.id).unwrap().name, "back");
        assert_eq!(r.find_network("ab1").unwrap().name, "front");
        // "a" is a prefix of both: ambiguous, so not found.
        let err = r.find_network("a").unwrap_err();
        assert!(matches!(&err, Error::NotFound(m) if m.contains("network a ")), "{err}");
        assert!(matches!(r.find_network("nosuch"), Err(Error::NotFound(m)) if m.contains("nosuch")));
    }

    #[test]
    fn sandboxes_are_found_by_id_name_and_prefix_but_not_by_an_empty_name() {
        let r = records_with(&[], &[sandbox("c0ffee11", "web", false), sandbox("deadbeef", "", false)]);
        assert_eq!(r.find_sandbox("web").unwrap().id, "c0ffee11");
        assert_eq!(r.find_sandbox("c0ffee11").unwrap().name, "web");
        assert_eq!(r.find_sandbox("dead").unwrap().id, "deadbeef");
        assert!(matches!(r.find_sandbox(""), Err(Error::NotFound(_))));
        assert!(matches!(r.find_sandbox("db"), Err(Error::NotFound(m)) if m.contains("db")));
    }

    #[test]
    fn a_subnet_overlapping_a_known_network_is_refused_naming_it() {
        let r = records_with(&[network('1', "lab", &["10.10.0.0/16", "fd00:1::/64"])], &[]);
        let all = |_: &Network| true;
        let err = r.check_subnet_free(&"10.10.5.0/24".parse().unwrap(), &all).unwrap_err();
        assert!(
            matches!(&err, Error::FailedPrecondition(m) if m.contains("10.10.5.0/24") && m.contains("network lab") && m.contains("10.10.0.0/16")),
            "{err}"
        );
        assert!(r.check_subnet_free(&"10.11.0.0/16".parse().unwrap(), &all).is_ok());
        // A network whose subnets do not count (a link's) is no obstacle.
        assert!(r.check_subnet_free(&"10.10.5.0/24".parse().unwrap(), &|n: &Network| n.name != "lab").is_ok());
        assert_eq!(r.taken_subnets().len(), 2);
    }

    #[test]
    fn leases_follow_endpoints_in_and_out() {
        let net = network('1', "lab", &["10.10.0.0/24"]);
        let web = sandbox("s1", "web", false);
        let mut r = records_with(std::slice::from_ref(&net), std::slice::from_ref(&web));
        let (first, v6) = r.lease(&net, None, None).unwrap();
        assert_eq!((first, v6), (Some("10.10.0.2/24".parse().unwrap()), None));
        let (second, _) = r.lease(&net, None, None).unwrap();
        assert_ne!(first, second);
        // A static address: given once, then refused.
        let (fixed, _) = r.lease(&net, Some(ip("10.10.0.50")), None).unwrap();
        assert_eq!(fixed, Some("10.10.0.50/24".parse().unwrap()));
        assert!(r.lease(&net, Some(ip("10.10.0.50")), None).is_err());

        // Removing the endpoint returns its address; restoring one takes it again.
        let ep = endpoint(&net, &web, "eth0", fixed);
        r.insert_endpoint(ep.clone());
        r.remove_endpoint(&ep);
        assert!(r.endpoints.is_empty());
        assert_eq!(r.lease(&net, Some(ip("10.10.0.50")), None).unwrap().0, fixed);
        let mut restored = endpoint(&net, &web, "eth0", Some("10.10.0.60/24".parse().unwrap()));
        restored.id = "restored".into();
        r.restore_endpoint(restored);
        assert!(r.lease(&net, Some(ip("10.10.0.60")), None).is_err(), "a restored endpoint's address is taken");

        // Without its pools (the network is gone), nothing can be leased.
        r.remove_network(&net.id);
        assert!(matches!(r.lease(&net, None, None), Err(Error::Internal { .. })));
    }

    #[test]
    fn a_failed_ipv6_lease_gives_the_ipv4_one_back() {
        let net = network('1', "v4only", &["10.10.0.0/24"]);
        let mut r = records_with(std::slice::from_ref(&net), &[]);
        let err = r.lease(&net, Some(ip("10.10.0.9")), Some(ip("fd00::9"))).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("fd00::9") && m.contains("no IPv6 subnet")),
            "{err}"
        );
        assert_eq!(r.lease(&net, Some(ip("10.10.0.9")), None).unwrap().0, Some("10.10.0.9/24".parse().unwrap()));

        let dual = network('2', "dual", &["10.20.0.0/24", "fd00:20::/64"]);
        r.insert_network(dual.clone());
        let (v4, v6) = r.lease(&dual, None, None).unwrap();
        assert!(v4.is_some_and(|a| a.is_ipv4()) && v6.is_some_and(|a| a.is_ipv6()), "{v4:?} {v6:?}");
    }

    #[test]
    fn connect_checks_need_only_the_records() {
        let lab = network('1', "lab", &["10.10.0.0/24"]);
        let other = network('2', "other", &["10.20.0.0/24"]);
        let none = network('3', "none", &[]);
        let web = sandbox("s1", "web", false);
        let on_host = sandbox("s2", "hosted", true);
        let isolated = sandbox("s3", "alone", false);
        let mut r = records_with(
            &[lab.clone(), other.clone(), none.clone()],
            &[web.clone(), on_host.clone(), isolated.clone()],
        );
        let plain = ConnectRequest::default();
        assert!(r.check_connect(&web, &lab, &BRIDGE, &plain).is_ok());

        let err = r.check_connect(&on_host, &lab, &BRIDGE, &plain).unwrap_err();
        assert!(
            matches!(&err, Error::FailedPrecondition(m) if m.contains("host network") && m.contains("lab")),
            "{err}"
        );
        let err = r.check_connect(&web, &none, &HOST, &plain).unwrap_err();
        assert!(matches!(&err, Error::FailedPrecondition(m) if m.contains("own namespace")), "{err}");

        r.insert_endpoint(endpoint(&lab, &web, "eth0", None));
        let err = r.check_connect(&web, &lab, &BRIDGE, &plain).unwrap_err();
        assert!(matches!(&err, Error::AlreadyExists(m) if m.contains("web") && m.contains("lab")), "{err}");
        let none_caps = Capabilities { needs_ipam: false, ..BRIDGE };
        let err = r.check_connect(&web, &none, &none_caps, &plain).unwrap_err();
        assert!(matches!(&err, Error::FailedPrecondition(m) if m.contains("none network")), "{err}");

        r.insert_endpoint(endpoint(&none, &isolated, "eth0", None));
        let err = r.check_connect(&isolated, &other, &BRIDGE, &plain).unwrap_err();
        assert!(matches!(&err, Error::FailedPrecondition(m) if m.contains("none network")), "{err}");

        let long = "a".repeat(256);
        for (req, bad) in [
            (ConnectRequest { aliases: vec![String::new()], ..Default::default() }, "\"\""),
            (ConnectRequest { aliases: vec![long.clone()], ..Default::default() }, long.as_str()),
        ] {
            let err = r.check_connect(&web, &other, &BRIDGE, &req).unwrap_err();
            assert!(matches!(&err, Error::InvalidArgument(m) if m.contains(bad)), "{err}");
        }
        let multicast = ConnectRequest { mac: Some("01:00:5e:00:00:01".parse().unwrap()), ..Default::default() };
        let err = r.check_connect(&web, &other, &BRIDGE, &multicast).unwrap_err();
        assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("01:00:5e:00:00:01")), "{err}");
        let good = ConnectRequest {
            aliases: vec!["db".into()],
            mac: Some("02:42:0a:00:00:09".parse().unwrap()),
            ..Default::default()
        };
        assert!(r.check_connect(&web, &other, &BRIDGE, &good).is_ok());
    }

    #[test]
    fn static_addresses_only_in_subnets_the_user_gave() {
        let mut auto = network('1', "auto", &["10.10.0.0/24"]);
        auto.pools[0].configured = false;
        let given = network('2', "given", &["10.20.0.0/24"]);
        let web = sandbox("s1", "web", false);
        let r = records_with(&[auto.clone(), given.clone()], std::slice::from_ref(&web));
        let fixed = ConnectRequest { ipv4: Some(ip("10.10.0.9")), ..Default::default() };
        let err = r.check_connect(&web, &auto, &BRIDGE, &fixed).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("10.10.0.9") && m.contains("user configured subnets")),
            "{err}"
        );
        let fixed = ConnectRequest { ipv4: Some(ip("10.20.0.9")), ..Default::default() };
        assert!(r.check_connect(&web, &given, &BRIDGE, &fixed).is_ok());
        let fixed6 = ConnectRequest { ipv6: Some(ip("fd00::9")), ..Default::default() };
        assert!(
            matches!(r.check_connect(&web, &given, &BRIDGE, &fixed6), Err(Error::InvalidArgument(m)) if m.contains("IPv6"))
        );
    }

    #[test]
    fn interface_names_fill_the_first_gap() {
        let (a, b, c) = (
            network('1', "a", &["10.1.0.0/24"]),
            network('2', "b", &["10.2.0.0/24"]),
            network('3', "c", &["10.3.0.0/24"]),
        );
        let web = sandbox("s1", "web", false);
        let mut r = records_with(&[a.clone(), b.clone(), c.clone()], std::slice::from_ref(&web));
        assert_eq!(r.next_ifname("s1"), "eth0");
        r.insert_endpoint(endpoint(&a, &web, "eth0", None));
        r.insert_endpoint(endpoint(&c, &web, "eth2", None));
        assert_eq!(r.next_ifname("s1"), "eth1");
        r.insert_endpoint(endpoint(&b, &web, "eth1", None));
        assert_eq!(r.next_ifname("s1"), "eth3");
        assert_eq!(r.next_ifname("other"), "eth0");
    }

    #[test]
    fn a_chosen_interface_name_must_be_free_in_the_sandbox() {
        let (a, b) = (network('1', "a", &["10.1.0.0/24"]), network('2', "b", &["10.2.0.0/24"]));
        let web = sandbox("s1", "web", false);
        let mut r = records_with(&[a.clone(), b.clone()], std::slice::from_ref(&web));
        r.insert_endpoint(endpoint(&a, &web, "eth3", None));
        r.check_ifname_free(&web, "eth0").unwrap();
        let err = r.check_ifname_free(&web, "eth3").unwrap_err();
        assert!(
            matches!(&err, Error::FailedPrecondition(m) if m.contains("eth3") && m.contains("web") && m.contains("network a")),
            "{err}"
        );
        // The next automatic name skips a chosen one.
        assert_eq!(r.next_ifname("s1"), "eth0");
        r.insert_endpoint(endpoint(&b, &web, "eth0", None));
        assert_eq!(r.next_ifname("s1"), "eth1");
    }

    #[test]
    fn the_default_route_goes_to_the_highest_priority_then_the_first_network_name() {
        let (zeta, alpha, inside) = (
            network('1', "zeta", &["10.1.0.0/24"]),
            network('2', "alpha", &["10.2.0.0/24"]),
            network('3', "inside", &["10.3.0.0/24"]),
        );
        let web = sandbox("s1", "web", false);
        let mut r = records_with(&[zeta.clone(), alpha.clone(), inside.clone()], std::slice::from_ref(&web));
        let with_gw = |n: &Network, ifname: &str, prio: i64| Endpoint {
            gateway_v4: n.pools[0].gateway,
            gw_priority: prio,
            ..endpoint(
                n,
                &web,
                ifname,
                Some(format!("{}/24", n.pools[0].subnet.iter().nth(2).unwrap()).parse().unwrap()),
            )
        };
        let holder = |r: &Records, extra: Option<&Endpoint>, without: Option<&str>| {
            r.default_route_holder("s1", false, extra, without).map(|e| e.ifname)
        };
        assert_eq!(holder(&r, None, None), None);
        let z = with_gw(&zeta, "eth0", 0);
        r.insert_endpoint(z.clone());
        assert_eq!(holder(&r, None, None).as_deref(), Some("eth0"));
        assert_eq!(r.default_route_holder("s1", true, None, None), None, "no IPv6 gateway");
        // A tie: the network name that sorts first wins, whatever the order of joins.
        let a = with_gw(&alpha, "eth1", 0);
        assert_eq!(holder(&r, Some(&a), None).as_deref(), Some("eth1"));
        // A higher priority wins over the name; negative priorities lose to the default 0.
        let z_high = Endpoint { gw_priority: 5, ..z.clone() };
        r.insert_endpoint(z_high);
        assert_eq!(holder(&r, Some(&a), None).as_deref(), Some("eth0"));
        let a_low = Endpoint { gw_priority: -1, ..a.clone() };
        r.insert_endpoint(Endpoint { gw_priority: 0, ..z.clone() });
        assert_eq!(holder(&r, Some(&a_low), None).as_deref(), Some("eth0"));
        // An endpoint without a gateway (an internal network) never holds it, whatever its priority.
        let i = Endpoint { gw_priority: 100, ..endpoint(&inside, &web, "eth2", None) };
        r.insert_endpoint(i.clone());
        assert_eq!(holder(&r, None, None).as_deref(), Some("eth0"));
        // Leaving out the holder (a disconnect) hands it to the next.
        r.insert_endpoint(a.clone());
        assert_eq!(holder(&r, None, None).as_deref(), Some("eth1"));
        assert_eq!(holder(&r, None, Some(a.id.as_str())).as_deref(), Some("eth0"));
        assert_eq!(holder(&r, None, Some(z.id.as_str())).as_deref(), Some("eth1"));
    }

    #[test]
    fn records_from_before_kept_gateways_get_them_from_their_network() {
        let (net, mut sealed) = (network('1', "net", &["10.1.0.0/24"]), network('2', "sealed", &["10.2.0.0/24"]));
        sealed.internal = true;
        let web = sandbox("s1", "web", false);
        let mut r = records_with(&[net.clone(), sealed.clone()], std::slice::from_ref(&web));
        r.restore_endpoint(endpoint(&net, &web, "eth0", Some("10.1.0.2/24".parse().unwrap())));
        r.restore_endpoint(endpoint(&sealed, &web, "eth1", Some("10.2.0.2/24".parse().unwrap())));
        let gw = |ifname: &str| r.endpoints.values().find(|e| e.ifname == ifname).unwrap().gateway_v4;
        assert_eq!(gw("eth0"), Some(ip("10.1.0.1")));
        assert_eq!(gw("eth1"), None, "an internal network gives no gateway");
    }

    #[test]
    fn a_full_network_is_refused_naming_who_is_on_it() {
        let mut link = network('1', "l1", &[]);
        link.driver = "p2p".into();
        let (a, b, unnamed) =
            (sandbox("s1", "alpha", false), sandbox("s2", "beta", false), sandbox(&"c".repeat(64), "", false));
        let mut r = records_with(std::slice::from_ref(&link), &[a.clone(), b.clone(), unnamed.clone()]);
        r.check_room(&link, Some(2)).unwrap();
        r.insert_endpoint(endpoint(&link, &b, "eth0", None));
        r.check_room(&link, Some(2)).unwrap();
        r.insert_endpoint(endpoint(&link, &a, "eth0", None));
        let err = r.check_room(&link, Some(2)).unwrap_err();
        assert!(
            matches!(&err, Error::FailedPrecondition(m) if m.contains("network l1 (driver p2p) takes at most 2 endpoints")
            && m.contains("containers alpha and beta")),
            "{err}"
        );
        // No limit: any number.
        r.check_room(&link, None).unwrap();
        // A sandbox without a name is named by its short id.
        r.remove_endpoint(&endpoint(&link, &a, "eth0", None));
        r.insert_endpoint(endpoint(&link, &unnamed, "eth0", None));
        let err = r.check_room(&link, Some(2)).unwrap_err().to_string();
        assert!(err.contains(&format!("containers beta and {}", "c".repeat(12))), "{err}");
    }

    #[test]
    fn link_only_pools_have_no_gateway_unless_asked() {
        let r = Records::default();
        let req = |subnet: &str, gw: &str| PoolRequest::parse(subnet, gw, "", []).unwrap();
        let all = |_: &Network| true;
        let (link, routed) = (PoolPlan::LinkOnly, PoolPlan::Routed);
        let pools = r.requested_pools(&[req("192.0.2.0/31", "")], link, &all).unwrap();
        assert_eq!(pools[0].gateway, None);
        assert!(
            r.requested_pools(&[req("192.0.2.0/31", "")], routed, &all).is_err(),
            "a /31 has no room for a gateway"
        );
        let pools = r.requested_pools(&[req("192.0.2.0/30", "192.0.2.2")], link, &all).unwrap();
        assert_eq!(pools[0].gateway, Some(ip("192.0.2.2")));
        let pools = r.requested_pools(&[req("192.0.2.0/30", "")], routed, &all).unwrap();
        assert_eq!(pools[0].gateway, Some(ip("192.0.2.1")));
    }
}
