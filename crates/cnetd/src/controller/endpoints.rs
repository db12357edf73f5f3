//! Endpoints: connect (checks, lease, the driver's attach, the store, the cluster, DNS) and
//! disconnect, each step undone when a later one fails.

use super::*;

impl Controller {
    pub async fn connect(&self, req: ConnectRequest) -> Result<(Endpoint, Network)> {
        // Link deletions wait for the attach to end (see cnet_kernel's deleter).
        let _busy = self.kernel.deleter().busy();
        let mut st = self.state.lock().await;
        let started = std::time::Instant::now();
        let sandbox = st.find_sandbox(&req.sandbox)?.clone();
        let network = st.find_network(&req.network)?.clone();
        let driver = self.driver(&network.driver)?.clone();
        let caps = driver.capabilities();
        st.check_connect(&sandbox, &network, &caps, &req)?;
        st.check_room(&network, driver.max_endpoints())?;
        let chosen_ifname = cnet_core::options::endpoint_ifname(&req.driver_opts, &network, driver.endpoint_options())?;
        if let Some(name) = &chosen_ifname {
            st.check_ifname_free(&sandbox, name)?;
            if caps.needs_sandbox_netns {
                self.check_link_absent(&sandbox, name).await?;
            }
        }

        // Published ports are checked (and random host ports picked) before anything is made.
        let ports = cnet_core::portspec::resolve_ports(&network, &req.ports, st.endpoints.values())?;
        let endpoint_id = id::new_id();
        let global = self.global_cluster(&network)?;
        // Leases first: they are the cheapest to undo.
        let (ipv4, ipv6) = match global {
            Some(cluster) => cluster.lease_addresses(&network, req.ipv4, req.ipv6, &endpoint_id).await?,
            None if caps.needs_ipam => st.lease(&network, req.ipv4, req.ipv6)?,
            None => (None, None),
        };
        let ifname = chosen_ifname.unwrap_or_else(|| st.next_ifname(&sandbox.id));
        let mac = req.mac.unwrap_or_else(|| match ipv4 {
            Some(ipnetwork::IpNetwork::V4(v4)) => MacAddr::from_ipv4(v4.ip()),
            _ => MacAddr::random(),
        });
        let mut endpoint = Endpoint {
            id: endpoint_id.into(),
            name: sandbox.name.clone(),
            network_id: network.id.clone(),
            sandbox_id: sandbox.id.clone(),
            ifname,
            mac,
            ipv4,
            ipv6,
            aliases: req.aliases.clone(),
            ports,
            driver_data: BTreeMap::new(),
            driver_opts: req.driver_opts.clone(),
            gw_priority: req.gw_priority,
            // Set from the join.
            gateway_v4: None,
            gateway_v6: None,
            link: Default::default(),
        };

        let leased = started.elapsed();
        // Undoes the leases: local pools, or the cluster store's keys.
        let release = async |st: &mut Records, endpoint: &Endpoint| {
            st.release(endpoint);
            let Some(cluster) = global else { return };
            for ip in [endpoint.ipv4, endpoint.ipv6].into_iter().flatten() {
                if let Err(e) = cluster.release_address(&network.id, ip.ip(), &endpoint.id).await {
                    tracing::warn!(%ip, error = %e, "returning a cluster lease (it expires with this node's lease)");
                }
            }
        };
        if let Err(e) = self.attach(&*driver, &network, &sandbox, &mut endpoint, &st).await {
            release(&mut st, &endpoint).await;
            return Err(e);
        }
        let attached = started.elapsed();
        crate::checkpoint("connect:attached");
        let mut batch = Batch::new();
        batch.put_endpoint(&endpoint);
        if let Err(e) = self.store.commit(batch) {
            self.detach(&*driver, &network, &sandbox, &endpoint, Leaving::Network).await;
            self.hand_back_default_routes(&st, &sandbox, &endpoint).await;
            release(&mut st, &endpoint).await;
            return Err(Error::internal(e.to_string()));
        }
        let registered = match (global, driver.max_endpoints()) {
            (Some(cluster), Some(max)) => {
                cluster.register_endpoint_limited(&self.cluster_record(&endpoint), &network, max).await
            }
            (Some(cluster), None) => cluster.register_endpoint(&self.cluster_record(&endpoint)).await,
            (None, _) => Ok(()),
        };
        if let Err(e) = registered {
            self.detach(&*driver, &network, &sandbox, &endpoint, Leaving::Network).await;
            self.hand_back_default_routes(&st, &sandbox, &endpoint).await;
            let mut batch = Batch::new();
            batch.delete_endpoint(&endpoint.id);
            let _ = self.store.commit(batch);
            release(&mut st, &endpoint).await;
            return Err(e);
        }
        st.insert_endpoint(endpoint.clone());
        self.dns.endpoint_added(&sandbox, &endpoint, &network).await;
        self.events.publish(Event::endpoint("connect", &network, &sandbox, &endpoint));
        tracing::debug!(
            sandbox = %id::short(&sandbox.id),
            network = %network.name,
            ip = ?endpoint.ipv4,
            ipv6 = ?endpoint.ipv6,
            ?leased,
            ?attached,
            total = ?started.elapsed(),
            "connected"
        );
        Ok((endpoint, network))
    }

    /// create_endpoint -> join -> make the interface in the sandbox -> its sysctls -> publish
    /// ports -> take the default routes it wins, undoing the steps already done when one fails.
    /// `st` holds the sandbox's other endpoints (not this one), for the default route's election.
    pub(super) async fn attach(
        &self,
        driver: &dyn Driver,
        network: &Network,
        sandbox: &Sandbox,
        endpoint: &mut Endpoint,
        st: &Records,
    ) -> Result<()> {
        driver.create_endpoint(network, endpoint).await?;
        let join = match driver.join(network, endpoint, sandbox).await {
            Ok(j) => j,
            Err(e) => {
                let _ = driver.delete_endpoint(network, endpoint).await;
                return Err(e);
            }
        };
        endpoint.gateway_v4 = join.gateway_v4.filter(IpAddr::is_ipv4);
        endpoint.gateway_v6 = join.gateway_v6.filter(IpAddr::is_ipv6);
        // Per family: whether this endpoint wins the default route, and whom it takes it from.
        // The first holder gets its route with the interface; a later winner replaces the route
        // once everything else has worked, so a failure never leaves the sandbox without one.
        let mut takes = [None, None];
        let mut replaces = [false, false];
        for (i, v6) in [false, true].into_iter().enumerate() {
            if st.default_route_holder(&sandbox.id, v6, Some(endpoint), None).is_some_and(|h| h.id == endpoint.id) {
                takes[i] = endpoint.gateway(v6);
                replaces[i] = st.default_route_holder(&sandbox.id, v6, None, None).is_some();
            }
        }
        let undo_join = async {
            let _ = driver.leave(network, endpoint, sandbox).await;
            let _ = driver.delete_endpoint(network, endpoint).await;
        };
        if let Some(interface) = &join.interface {
            let cfg = InterfaceConfig {
                name: endpoint.ifname.clone(),
                mac: Some(endpoint.mac.octets()),
                mtu: join.mtu,
                addresses: [endpoint.ipv4, endpoint.ipv6].into_iter().flatten().collect(),
                gateway_v4: match takes[0] {
                    Some(IpAddr::V4(g)) if !replaces[0] => Some(g),
                    _ => None,
                },
                gateway_v6: match takes[1] {
                    Some(IpAddr::V6(g)) if !replaces[1] => Some(g),
                    _ => None,
                },
                routes: join.static_routes.clone(),
            };
            if let Err(e) = self.make_sandbox_interface(sandbox, interface, &cfg).await {
                undo_join.await;
                if e.errno() == Some(nix::libc::EXFULL) {
                    return Err(Error::precondition(format!(
                        "network {} is full: a Linux bridge takes at most 1024 ports",
                        network.name
                    )));
                }
                if e.errno() == Some(nix::libc::EEXIST)
                    && endpoint.driver_opts.contains_key(cnet_core::options::ENDPOINT_IFNAME)
                {
                    return Err(Error::precondition(format!(
                        "interface {} already exists in container {}",
                        endpoint.ifname,
                        sandbox_label(sandbox)
                    )));
                }
                return Err(Error::internal(format!("attaching to sandbox {}: {e}", id::short(&sandbox.id))));
            }
        }
        // The driver leaves first: it may take its link back (p2p parks it for the peer).
        let undo_interface = async |revoke: bool| {
            if revoke && let Err(e) = driver.revoke_external_connectivity(network, endpoint).await {
                tracing::warn!(error = %e, endpoint = %endpoint.id, "revoking published ports");
            }
            let _ = driver.leave(network, endpoint, sandbox).await;
            if join.interface.is_some() {
                self.remove_sandbox_interface(sandbox, endpoint).await;
            }
            let _ = driver.delete_endpoint(network, endpoint).await;
        };
        if join.interface.is_some()
            && let Err(e) = sysctls::write_interface(sandbox, &endpoint.ifname)
        {
            undo_interface(false).await;
            return Err(e);
        }
        // The driver publishes every port (through cnet-ports: DNAT, and relays on ::1), or
        // refuses ports altogether if it cannot publish any.
        if let Err(e) = driver.program_external_connectivity(network, endpoint).await {
            undo_interface(false).await;
            return Err(e);
        }
        if join.interface.is_some() && replaces.contains(&true) {
            let moved = async {
                let ns = NetnsHandle::open(Path::new(&sandbox.netns_path)).await?;
                for gw in [takes[0].filter(|_| replaces[0]), takes[1].filter(|_| replaces[1])].into_iter().flatten() {
                    ns.replace_default_route(&endpoint.ifname, gw).await?;
                }
                Ok::<(), cnet_kernel::Error>(())
            };
            if let Err(e) = moved.await {
                undo_interface(true).await;
                // A route replaced before the failure went with the interface.
                self.hand_back_default_routes(st, sandbox, endpoint).await;
                return Err(Error::internal(format!(
                    "moving the default route of sandbox {} to {}: {e}",
                    id::short(&sandbox.id),
                    endpoint.ifname
                )));
            }
            tracing::debug!(sandbox = %id::short(&sandbox.id), ifname = %endpoint.ifname, "default route moved here");
        }
        Ok(())
    }

    /// Refuses an interface name that a link of the sandbox's namespace already has (`lo`, or one
    /// made inside the container), before anything is leased or made.
    async fn check_link_absent(&self, sandbox: &Sandbox, ifname: &str) -> Result<()> {
        let ns = NetnsHandle::open(Path::new(&sandbox.netns_path))
            .await
            .internal(format!("opening the namespace of sandbox {}", id::short(&sandbox.id)))?;
        match ns.link_by_name(ifname).await.internal(format!("looking up {ifname}"))? {
            Some(_) => Err(Error::precondition(format!(
                "interface {ifname} already exists in container {}",
                sandbox_label(sandbox)
            ))),
            None => Ok(()),
        }
    }

    /// After `gone` left the sandbox (or failed to join it): the default route of each family it
    /// held went with its interface, and goes to the next winner among the endpoints in `st`
    /// (which does not hold `gone`). Errors are logged: the sandbox keeps working without it.
    pub(super) async fn hand_back_default_routes(&self, st: &Records, sandbox: &Sandbox, gone: &Endpoint) {
        let mut next = Vec::new();
        for v6 in [false, true] {
            let held = st.default_route_holder(&sandbox.id, v6, Some(gone), None).is_some_and(|h| h.id == gone.id);
            if held
                && let Some(h) = st.default_route_holder(&sandbox.id, v6, None, Some(&gone.id))
                && let Some(gw) = h.gateway(v6)
            {
                next.push((h.ifname, gw));
            }
        }
        if next.is_empty() || sandbox.host_network {
            return;
        }
        let moved = async {
            let ns = NetnsHandle::open(Path::new(&sandbox.netns_path)).await?;
            for (ifname, gw) in &next {
                ns.replace_default_route(ifname, *gw).await?;
                tracing::debug!(sandbox = %id::short(&sandbox.id), %ifname, %gw, "default route moved back");
            }
            Ok::<(), cnet_kernel::Error>(())
        };
        if let Err(e) = moved.await {
            tracing::error!(sandbox = %id::short(&sandbox.id), error = %e, "cannot move the default route to the next endpoint");
        }
    }

    pub(super) async fn make_sandbox_interface(
        &self,
        sandbox: &Sandbox,
        interface: &SandboxInterface,
        cfg: &InterfaceConfig,
    ) -> cnet_kernel::Result<()> {
        let ns = NetnsHandle::open(Path::new(&sandbox.netns_path)).await?;
        match interface {
            SandboxInterface::VethOnBridge { host, bridge } => {
                self.kernel.create_veth_in_sandbox(host, bridge, &ns, cfg).await
            }
            SandboxInterface::Move { src } => self.kernel.move_into(src, &ns, cfg).await,
            SandboxInterface::MacvlanOn { parent, mode } => {
                let mode = match mode {
                    cnet_core::MacvlanMode::Bridge => cnet_kernel::MacVlanMode::Bridge,
                    cnet_core::MacvlanMode::Private => cnet_kernel::MacVlanMode::Private,
                    cnet_core::MacvlanMode::Vepa => cnet_kernel::MacVlanMode::Vepa,
                    cnet_core::MacvlanMode::Passthru => cnet_kernel::MacVlanMode::Passthrough,
                };
                self.kernel.create_macvlan_in_sandbox(parent, mode, &ns, cfg).await
            }
            SandboxInterface::VethWithParkedPeer { parked } => {
                self.kernel.create_veth_with_parked_peer(parked, &ns, cfg).await
            }
            SandboxInterface::Unpark { parked } => self.kernel.unpark_into(parked, &ns, cfg).await,
        }
    }

    pub(super) async fn remove_sandbox_interface(&self, sandbox: &Sandbox, endpoint: &Endpoint) {
        match NetnsHandle::open(Path::new(&sandbox.netns_path)).await {
            Ok(h) => {
                if let Err(e) = h.delete_link(&endpoint.ifname).await {
                    tracing::warn!(error = %e, ifname = %endpoint.ifname, "could not delete interface in sandbox");
                }
            }
            Err(e) => tracing::warn!(error = %e, path = %sandbox.netns_path, "could not open sandbox namespace"),
        }
    }

    /// The reverse of attach; errors are logged, never stop the clean-up.
    pub(super) async fn detach(
        &self,
        driver: &dyn Driver,
        network: &Network,
        sandbox: &Sandbox,
        endpoint: &Endpoint,
        leaving: Leaving,
    ) {
        if let Err(e) = driver.revoke_external_connectivity(network, endpoint).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "revoking published ports");
        }
        // The driver leaves first: it may take its link back (p2p parks it for the peer), and
        // then there is nothing left to remove.
        if let Err(e) = driver.leave(network, endpoint, sandbox).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "leave");
        }
        // A container that stays must lose the interface now (its name may be connected again at
        // once); one whose sandbox goes loses it with the endpoint when the driver can do that.
        let caps = driver.capabilities();
        let goes_anyway = leaving == Leaving::Sandbox && caps.interface_goes_with_endpoint;
        if caps.needs_sandbox_netns && !sandbox.host_network && !goes_anyway {
            self.remove_sandbox_interface(sandbox, endpoint).await;
        }
        if let Err(e) = driver.delete_endpoint(network, endpoint).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "deleting endpoint");
        }
    }

    pub async fn disconnect(&self, sandbox: &str, network: &str) -> Result<()> {
        let _busy = self.kernel.deleter().busy();
        let mut st = self.state.lock().await;
        let sandbox = st.find_sandbox(sandbox)?.clone();
        let network = st.find_network(network)?.clone();
        let endpoint =
            st.endpoints_of_sandbox(&sandbox.id).find(|e| e.network_id == network.id).cloned().ok_or_else(|| {
                Error::not_found(format!(
                    "container {} is not connected to network {}",
                    if sandbox.name.is_empty() { id::short(&sandbox.id) } else { &sandbox.name },
                    network.name
                ))
            })?;
        self.disconnect_locked(&mut st, &sandbox, &endpoint, Leaving::Network).await?;
        // Only here, not in disconnect_locked: a sandbox being removed needs no default route.
        self.hand_back_default_routes(&st, &sandbox, &endpoint).await;
        Ok(())
    }

    pub(super) async fn disconnect_locked(
        &self,
        st: &mut Records,
        sandbox: &Sandbox,
        endpoint: &Endpoint,
        leaving: Leaving,
    ) -> Result<()> {
        let network = st
            .networks
            .get(&endpoint.network_id)
            .cloned()
            .ok_or_else(|| Error::internal("endpoint's network vanished"))?;
        match self.drivers.get(network.driver.as_str()) {
            Some(driver) => self.detach(&**driver, &network, sandbox, endpoint, leaving).await,
            // An endpoint of a driver this run was started without (a global network of an earlier run
            // with --cluster-store): its link goes with the
            // sandbox's namespace, and the next start with the store removes the rest.
            None => {
                tracing::warn!(network = %network.name, driver = %network.driver, "driver not loaded: removing the endpoint's record only");
                if !sandbox.host_network {
                    self.remove_sandbox_interface(sandbox, endpoint).await;
                }
            }
        }
        crate::checkpoint("disconnect:detached");
        let mut batch = Batch::new();
        batch.delete_endpoint(&endpoint.id);
        self.store.commit(batch).internal("removing endpoint record")?;
        st.remove_endpoint(endpoint);
        st.conflicts.remove(&endpoint.id);
        if let Ok(Some(cluster)) = self.global_cluster(&network)
            && let Err(e) = cluster.release_endpoint(&self.cluster_record(endpoint)).await
        {
            // The next resync withdraws it (or it expires with this node's lease).
            tracing::warn!(endpoint = %id::short(&endpoint.id), error = %e, "cannot withdraw the endpoint from the cluster store now");
        }
        self.dns.endpoint_removed(endpoint);
        self.events.publish(Event::endpoint("disconnect", &network, sandbox, endpoint));
        Ok(())
    }
}

/// A container as messages name it: its name, else its short id.
fn sandbox_label(sandbox: &Sandbox) -> &str {
    if sandbox.name.is_empty() { id::short(&sandbox.id) } else { &sandbox.name }
}

/// Why an endpoint is detached: its container leaves the network and stays, or its whole
/// sandbox is being removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaving {
    Network,
    Sandbox,
}
