//! Sandboxes: one network namespace per container, made, inspected and removed with its endpoints.

use super::endpoints::Leaving;
use super::*;

impl Controller {
    pub async fn create_sandbox(&self, req: SandboxRequest) -> Result<Sandbox> {
        let _busy = self.kernel.deleter().busy();
        let id = if req.container_id.is_empty() {
            id::new_id()
        } else if req.container_id.len() == 64 && id::looks_like_id_prefix(&req.container_id) {
            req.container_id.clone()
        } else {
            return Err(Error::invalid(format!("invalid container id {:?}: expected 64 hex digits", req.container_id)));
        };
        if !req.name.is_empty() {
            validate_name(NameKind::Sandbox, &req.name)?;
        }
        for h in &req.extra_hosts {
            etc::parse_extra_host(h)?;
        }
        for server in &req.dns.servers {
            ipam::parse_ip("DNS server", server)?;
        }
        cnet_core::sysctl::check(&req.sysctls, req.host_network)?;
        let mut st = self.state.lock().await;
        if st.sandboxes.contains_key(id.as_str()) {
            return Err(Error::exists(format!("sandbox {id} already exists")));
        }
        if !req.name.is_empty()
            && let Some(holder) = st.sandboxes.values().find(|s| s.name == req.name).cloned()
        {
            // A holder whose container is gone (its creation was cut short and nobody removed it
            // since) gives the name up; any other holder keeps it.
            if holder.owner.is_empty() || Path::new(&holder.owner).exists() {
                return Err(Error::exists(format!("a sandbox named {:?} already exists", req.name)));
            }
            tracing::warn!(sandbox = %holder.id.short(), name = %holder.name, owner = %holder.owner, "the sandbox's container is gone: dropping it");
            self.remove_sandbox_locked(&mut st, &holder).await?;
        }
        let netns_path = if req.host_network {
            self.host_netns_path()
        } else {
            let path = self.netns_dir().join(&id);
            cnet_kernel::netns::create(&path).internal(format!("creating namespace {}", path.display()))?;
            path
        };
        // The sysctls of the whole namespace; those of one interface go with its connect.
        if let Err(e) = sysctls::write_namespace(&netns_path, &req.sysctls) {
            if !req.host_network {
                let _ = cnet_kernel::netns::remove(&netns_path);
            }
            return Err(e);
        }
        let hostname = if !req.hostname.is_empty() {
            req.hostname.clone()
        } else if !req.name.is_empty() {
            req.name.clone()
        } else {
            id::short(&id).to_string()
        };
        let sandbox = Sandbox {
            id: id.clone().into(),
            name: req.name,
            hostname,
            domainname: req.domainname,
            netns_path: netns_path.display().to_string(),
            host_network: req.host_network,
            dns: req.dns,
            extra_hosts: req.extra_hosts,
            created: cnet_core::time::now_rfc3339(),
            owner: req.owner,
            sysctls: req.sysctls,
        };
        let mut batch = Batch::new();
        batch.put_sandbox(&sandbox);
        if let Err(e) = self.store.commit(batch) {
            if !sandbox.host_network {
                let _ = cnet_kernel::netns::remove(&netns_path);
            }
            return Err(Error::internal(e.to_string()));
        }
        st.sandboxes.insert(id.into(), sandbox.clone());
        crate::checkpoint("sandbox:created");
        Ok(sandbox)
    }

    pub async fn inspect_sandbox(&self, reference: &str) -> Result<(Sandbox, Vec<Endpoint>, Vec<Network>)> {
        let st = self.state.lock().await;
        let s = st.find_sandbox(reference)?.clone();
        let mut eps: Vec<Endpoint> = st.endpoints_of_sandbox(&s.id).cloned().collect();
        eps.sort_by(|a, b| a.ifname.cmp(&b.ifname));
        let nets = eps.iter().filter_map(|e| st.networks.get(&e.network_id).cloned()).collect();
        Ok((s, eps, nets))
    }

    pub async fn list_sandboxes(&self) -> Vec<String> {
        let st = self.state.lock().await;
        st.sandboxes.keys().map(|id| id.to_string()).collect()
    }

    pub async fn remove_sandbox(&self, reference: &str) -> Result<()> {
        let _busy = self.kernel.deleter().busy();
        let mut st = self.state.lock().await;
        let sandbox = st.find_sandbox(reference)?.clone();
        self.remove_sandbox_locked(&mut st, &sandbox).await
    }

    /// Leaves every network (freeing leases, ports, names), then the namespace and the record.
    async fn remove_sandbox_locked(&self, st: &mut Records, sandbox: &Sandbox) -> Result<()> {
        let endpoints: Vec<Endpoint> = st.endpoints_of_sandbox(&sandbox.id).cloned().collect();
        for ep in endpoints {
            self.disconnect_locked(st, sandbox, &ep, Leaving::Sandbox).await?;
        }
        crate::checkpoint("sandbox:disconnected");
        if !sandbox.host_network {
            cnet_kernel::netns::remove(Path::new(&sandbox.netns_path))
                .internal(format!("removing namespace {}", sandbox.netns_path))?;
        }
        let mut batch = Batch::new();
        batch.delete_sandbox(&sandbox.id);
        self.store.commit(batch).internal("removing sandbox record")?;
        st.sandboxes.remove(&sandbox.id);
        self.dns.sandbox_removed(sandbox);
        Ok(())
    }

    // ------------------------------------------------------------------ endpoints
}
