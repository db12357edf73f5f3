//! Networks: create (local, or global through the cluster store), list, inspect, remove, prune.

use super::*;

impl Controller {
    pub async fn create_network(&self, req: NetworkRequest) -> Result<Network> {
        let _busy = self.kernel.deleter().busy();
        let network = self.create_network_inner(req, false).await?;
        self.events.publish(Event::network("create", &network));
        if network.scope == Scope::Local {
            self.publish_local_subnets().await;
        }
        Ok(network)
    }

    pub(super) async fn create_network_inner(&self, req: NetworkRequest, builtin: bool) -> Result<Network> {
        validate_name(NameKind::Network, &req.name)?;
        let driver_name = if req.driver.is_empty() { "bridge" } else { req.driver.as_str() };
        let driver = self.driver(driver_name)?.clone();
        let caps = driver.capabilities();
        if !caps.user_creatable && !builtin {
            return Err(Error::invalid(format!(
                "only one instance of {driver_name:?} network is allowed: it is built in, use it by name"
            )));
        }
        if req.labels.keys().any(String::is_empty) {
            return Err(Error::invalid("invalid label: empty key"));
        }

        let mut st = self.state.lock().await;
        if st.networks.values().any(|n| n.name == req.name) {
            return Err(Error::exists(format!("network with name {} already exists", req.name)));
        }
        if caps.scope == Scope::Global {
            return self.create_global_network(&mut st, req, &*driver).await;
        }
        let pools =
            if caps.needs_ipam { self.plan_pools(&st, &req, builtin, driver.pool_plan()).await? } else { vec![] };
        let network = Network {
            id: cnet_core::NetworkId::generate(),
            name: req.name.clone(),
            driver: driver_name.to_string(),
            scope: caps.scope,
            pools,
            options: req.options,
            labels: req.labels,
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6: req.enable_ipv6,
            created: cnet_core::time::now_rfc3339(),
            builtin,
        };
        driver.validate_network(&network)?;
        driver.create_network(&network).await?;
        if !builtin {
            crate::checkpoint("network:made");
        }
        let mut batch = Batch::new();
        batch.put_network(&network);
        if let Err(e) = self.store.commit(batch) {
            let _ = driver.delete_network(&network).await;
            return Err(Error::internal(e.to_string()));
        }
        if !builtin {
            // Recorded, its firewall rules maybe still queued (see bridge's `setup_firewall`).
            crate::checkpoint("network:recorded");
        }
        st.insert_network(network.clone());
        tracing::info!(network = %network.name, id = %network.short_id(), driver = %network.driver, "network created");
        Ok(network)
    }

    /// A global network is made in the cluster store (which picks its VNI and subnet, unique
    /// cluster-wide); this node caches it like every other node does when its watch sees it. No
    /// kernel object exists until a local endpoint joins.
    pub(super) async fn create_global_network(
        &self,
        st: &mut Records,
        req: NetworkRequest,
        driver: &dyn Driver,
    ) -> Result<Network> {
        let cluster = self.cluster.as_ref().expect("global drivers exist only in a cluster");
        check_ipv6_subnets(&req)?;
        let routed = driver.pool_plan() == PoolPlan::Routed;
        let pools = st.requested_pools(&req.pools, driver.pool_plan(), &|n| self.reserves_subnets(n))?;
        let network = Network {
            id: cnet_core::NetworkId::generate(),
            name: req.name.clone(),
            driver: driver.name().to_string(),
            scope: Scope::Global,
            pools,
            options: req.options,
            labels: req.labels,
            internal: req.internal,
            attachable: true,
            enable_ipv6: req.enable_ipv6,
            created: cnet_core::time::now_rfc3339(),
            builtin: false,
        };
        driver.validate_network(&network)?;
        let mut host_taken: Vec<ipnetwork::IpNetwork> =
            self.kernel.route_destinations().await.internal("listing host routes")?;
        host_taken.extend(st.taken_subnets());
        let network = cluster
            .create_network(
                network,
                &host_taken,
                routed,
                |n| self.reserves_subnets(n),
                |subnet| ipam::build_pool(&PoolRequest::default(), subnet, true),
            )
            .await?;
        self.cache_global_network(st, &network);
        // Before any endpoint on it can exist: its VNI is guarded from its first packet.
        self.refresh_vxlan_guard(st).await;
        tracing::info!(network = %network.name, id = %network.short_id(), options = ?network.options, "global network created");
        Ok(network)
    }

    /// Keeps a global network in the local store too, so a restart without etcd still knows the
    /// networks its endpoints are on.
    pub(super) fn cache_global_network(&self, st: &mut Records, network: &Network) {
        if st.networks.get(&network.id) == Some(network) {
            return;
        }
        let mut batch = Batch::new();
        batch.put_network(network);
        if let Err(e) = self.store.commit(batch) {
            tracing::warn!(network = %network.name, error = %e, "cannot cache the global network locally");
        }
        st.insert_network(network.clone());
    }

    /// Whether the network's subnets are its own alone: those of every network but a link's
    /// (`PoolPlan::LinkOnly`), whose addresses are only in its two containers.
    pub(super) fn reserves_subnets(&self, network: &Network) -> bool {
        self.drivers.get(network.driver.as_str()).is_none_or(|d| d.pool_plan() == PoolPlan::Routed)
    }

    /// Checks the requested subnets against each other and every existing network, and picks
    /// default subnets where none was given (unless the driver's plan is `LinkOnly`).
    pub(super) async fn plan_pools(
        &self,
        st: &Records,
        req: &NetworkRequest,
        builtin: bool,
        plan: PoolPlan,
    ) -> Result<Vec<cnet_core::IpamPool>> {
        check_ipv6_subnets(req)?;
        let mut pools = st.requested_pools(&req.pools, plan, &|n| self.reserves_subnets(n))?;
        if plan == PoolPlan::LinkOnly {
            return Ok(pools);
        }
        let mut taken = st.taken_subnets();
        taken.extend(pools.iter().map(|p| p.subnet));
        let host_routes = self.kernel.route_destinations().await.internal("listing host routes")?;
        // Our own bridges' routes are networks we already count; other routes are the host's.
        taken.extend(host_routes);
        if !pools.iter().any(|p| p.subnet.is_ipv4()) {
            let subnet = if builtin && req.name == "bridge" {
                ipam::choose_default_bridge_subnet(&taken)?
            } else {
                ipam::choose_subnet(false, &taken)?
            };
            pools.insert(0, ipam::build_pool(&PoolRequest::default(), subnet, true)?);
        }
        if req.enable_ipv6 && !pools.iter().any(|p| p.subnet.is_ipv6()) {
            let subnet = ipam::choose_subnet(true, &taken)?;
            pools.push(ipam::build_pool(&PoolRequest::default(), subnet, true)?);
        }
        Ok(pools)
    }

    pub async fn list_networks(&self) -> Vec<(Network, Vec<Endpoint>)> {
        let st = self.state.lock().await;
        let mut out: Vec<(Network, Vec<Endpoint>)> =
            st.networks.values().map(|n| (n.clone(), st.endpoints_of_network(&n.id).cloned().collect())).collect();
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }

    pub async fn inspect_network(&self, reference: &str) -> Result<(Network, Vec<Endpoint>)> {
        let st = self.state.lock().await;
        let n = st.find_network(reference)?.clone();
        let eps = st.endpoints_of_network(&n.id).cloned().collect();
        Ok((n, eps))
    }

    pub async fn remove_network(&self, reference: &str) -> Result<Network> {
        let _busy = self.kernel.deleter().busy();
        let mut st = self.state.lock().await;
        let network = st.find_network(reference)?.clone();
        self.remove_network_locked(&mut st, &network).await?;
        drop(st);
        if network.scope == Scope::Local {
            self.publish_local_subnets().await;
        }
        Ok(network)
    }

    /// Replaces an encrypted global network's secret in the cluster store; every node (this one
    /// too) applies it from its watch. Returns the network and the new key's serial.
    pub async fn rotate_network_key(&self, reference: &str) -> Result<(Network, u64)> {
        let network = self.state.lock().await.find_network(reference)?.clone();
        let cluster = match self.global_cluster(&network)? {
            Some(c) => c,
            None => {
                return Err(Error::precondition(format!(
                    "network {} is not an encrypted overlay network: it has no key to rotate",
                    network.name
                )));
            }
        };
        let serial = cluster.rotate_network_secret(&network).await?;
        Ok((network, serial))
    }

    pub(super) async fn remove_network_locked(&self, st: &mut Records, network: &Network) -> Result<()> {
        if network.builtin {
            return Err(Error::precondition(format!(
                "{} is a pre-defined network and cannot be removed",
                network.name
            )));
        }
        let active = st.endpoints_of_network(&network.id).count();
        if active > 0 {
            return Err(Error::precondition(format!(
                "error while removing network: network {} id {} has active endpoints ({active})",
                network.name, network.id
            )));
        }
        if network.scope == Scope::Global {
            let cluster = self.cluster.as_ref().ok_or_else(|| {
                Error::precondition(format!(
                    "network {} is global: removing it needs the cluster store (start cnetd with --cluster-store)",
                    network.name
                ))
            })?;
            cluster.remove_network(network).await?;
            let cached: Vec<&str> =
                st.remote.values().filter(|r| r.network_id == network.id).map(|r| r.id.as_str()).collect();
            self.persist_remote(&[], &cached);
            st.remote.retain(|_, r| r.network_id != network.id);
        }
        self.driver(&network.driver)?.delete_network(network).await?;
        crate::checkpoint("network:unmade");
        let mut batch = Batch::new();
        batch.delete_network(&network.id);
        self.store.commit(batch).internal("removing network record")?;
        crate::checkpoint("network:forgotten");
        st.remove_network(&network.id);
        if network.scope == Scope::Global {
            self.refresh_vxlan_guard(st).await;
        }
        self.events.publish(Event::network("destroy", network));
        tracing::info!(network = %network.name, "network removed");
        Ok(())
    }

    pub async fn prune_networks(&self) -> Result<Vec<String>> {
        let mut st = self.state.lock().await;
        let candidates: Vec<Network> = st
            .networks
            .values()
            // Global networks are the cluster's: other nodes may use them.
            .filter(|n| !n.builtin && n.scope == Scope::Local && st.endpoints_of_network(&n.id).next().is_none())
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for n in candidates {
            self.remove_network_locked(&mut st, &n).await?;
            removed.push(n.name);
        }
        removed.sort();
        Ok(removed)
    }

    // ------------------------------------------------------------------ sandboxes
}

/// An IPv6 subnet needs `--ipv6` (as Docker): a network's IPv6 is switched on by the flag, never
/// by a subnet alone.
fn check_ipv6_subnets(req: &NetworkRequest) -> Result<()> {
    match req.pools.iter().filter_map(|p| p.subnet).find(|s| s.is_ipv6() && !req.enable_ipv6) {
        Some(subnet) => {
            Err(Error::invalid(format!("subnet {subnet} is IPv6: pass --ipv6 to enable IPv6 on the network")))
        }
        None => Ok(()),
    }
}
