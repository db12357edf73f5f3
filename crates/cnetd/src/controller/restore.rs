//! Start-up: the store's records back into the kernel (every driver restores, the firewall is
//! applied once), orphans removed, and the built-in networks made on first start.

use super::*;

impl Controller {
    pub(super) async fn restore(&self) -> anyhow::Result<()> {
        let snap = self.store.load()?;
        let mut st = self.state.lock().await;
        let mut batch = Batch::new();
        for n in snap.networks {
            st.insert_network(n);
        }
        // A sandbox whose namespace is gone (the host rebooted, /run was cleared), or whose owner
        // is gone (its container's creation was cut short: cnetd or the CLI killed between steps),
        // cannot come back. Drop it with its endpoints and leases; the kernel objects nobody claims
        // then go with the orphans below (veths, namespace files) and the rebuilt firewall.
        for s in snap.sandboxes {
            let netns_gone = !s.host_network && !cnet_kernel::netns::is_mounted(Path::new(&s.netns_path));
            let owner_gone = !s.owner.is_empty() && !Path::new(&s.owner).exists();
            if netns_gone || owner_gone {
                tracing::warn!(sandbox = %s.id.short(), name = %s.name, path = %s.netns_path, owner = %s.owner, netns_gone, owner_gone, "the sandbox's container is gone: dropping it");
                batch.delete_sandbox(&s.id);
            } else {
                st.sandboxes.insert(s.id.clone(), s);
            }
        }
        for e in snap.endpoints {
            if st.sandboxes.contains_key(&e.sandbox_id) && st.networks.contains_key(&e.network_id) {
                st.restore_endpoint(e);
            } else {
                tracing::warn!(endpoint = %e.id, "endpoint of a vanished sandbox or network, dropping it");
                batch.delete_endpoint(&e.id);
            }
        }
        self.store.commit(batch)?;

        // Every driver describes its rules during its restore; the table is then made exactly what
        // they described, in one transaction, whatever order the drivers restore in.
        self.restore_remote(&mut st)?;
        self.firewall.begin_restore().await;
        for (name, driver) in &self.drivers {
            let networks: Vec<Network> = st.networks.values().filter(|n| n.driver == *name).cloned().collect();
            let endpoints: Vec<Endpoint> =
                st.endpoints.values().filter(|e| networks.iter().any(|n| n.id == e.network_id)).cloned().collect();
            driver.restore(&networks, &endpoints).await.map_err(|e| anyhow::anyhow!("restoring {name} driver: {e}"))?;
        }
        self.refresh_vxlan_guard(&st).await;
        self.firewall.finish_restore().await.map_err(|e| anyhow::anyhow!("restoring the firewall table: {e}"))?;
        // After the drivers: a link they made again has lost what `cnet link set` set on it.
        self.restore_links(&st).await;

        // Namespace files that no sandbox claims are leftovers of a crash between steps.
        let claimed: Vec<PathBuf> = st.sandboxes.values().map(|s| PathBuf::from(&s.netns_path)).collect();
        for entry in std::fs::read_dir(self.netns_dir())? {
            let path = entry?.path();
            if path != self.host_netns_path() && !claimed.contains(&path) {
                tracing::info!(path = %path.display(), "removing orphan namespace");
                cnet_kernel::netns::remove(&path)?;
            }
        }
        self.dns.restore(&st.sandboxes, &st.endpoints, &st.networks).await;
        self.serve_remote(&st);
        tracing::info!(
            networks = st.networks.len(),
            sandboxes = st.sandboxes.len(),
            endpoints = st.endpoints.len(),
            "state restored"
        );
        Ok(())
    }

    pub(super) async fn ensure_builtin_networks(&self) -> anyhow::Result<()> {
        let existing: Vec<String> = self.state.lock().await.networks.values().map(|n| n.name.clone()).collect();
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "none")] {
            if existing.iter().any(|n| n == name) {
                continue;
            }
            let req = NetworkRequest { name: name.into(), driver: driver.into(), ..Default::default() };
            self.create_network_inner(req, true)
                .await
                .map_err(|e| anyhow::anyhow!("creating built-in network {name}: {e}"))?;
            tracing::info!(network = name, "created built-in network");
        }
        Ok(())
    }

    // ------------------------------------------------------------------ networks
}
