use nftables::helper::NftablesError;

/// Errors of cnet-firewall.
///
/// `NftablesError`'s own Display drops nft's stdout/stderr, so [`Error::Nft`] formats it with `{:?}`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rules were rejected before anything was sent to the kernel.
    #[error("invalid firewall rules for network {network:?}: {reason}")]
    Invalid { network: String, reason: String },

    /// The VXLAN guard was rejected before anything was sent to the kernel.
    #[error("invalid VXLAN guard: {0}")]
    InvalidVxlanGuard(String),

    /// The table is gone (deleted by hand?); [`crate::Firewall::sync`] rebuilds it.
    #[error("nftables table inet {table} does not exist; call ensure_table or sync")]
    TableMissing { table: String },

    /// `nft` could not be run, or it rejected the transaction (nothing was changed then).
    #[error("nft failed to {action} in table inet {table}: {source:?}")]
    Nft {
        table: String,
        action: &'static str,
        #[source]
        source: Box<NftablesError>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
