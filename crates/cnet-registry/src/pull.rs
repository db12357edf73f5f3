//! One pull: resolve the reference to a manifest (an index resolved to this platform), fetch and
//! verify the config, download and verify every layer into a [`Stage`] of the store, unpack them in
//! order, commit. Nothing is committed until every blob has been verified and unpacked; a failure
//! drops the stage, which removes everything downloaded.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cnet_image::{Image, ImageStore, Reference, Stage};
use futures::{StreamExt, TryStreamExt};
use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
    OciDescriptor,
};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::auth::{Credentials, credentials_in, docker_config_dir};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// The environment variable listing more registries (`host:port`, comma-separated) to contact over
/// plain HTTP, besides `localhost`, 127.0.0.0/8 and `::1` (as Docker's `insecure-registries`).
pub const INSECURE_REGISTRIES_ENV: &str = "CNET_INSECURE_REGISTRIES";

/// Manifests and configs larger than this are refused.
const MAX_DOCUMENT: u64 = 8 << 20;
/// Index nesting cnet follows.
const MAX_DEPTH: usize = 3;
const MANIFEST_TYPES: &[&str] =
    &[OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE];

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Registries (`host:port` as in references) contacted over plain HTTP, besides the loopback ones.
    pub insecure: Vec<String>,
    /// The directory holding Docker's `config.json`; `None` pulls anonymously.
    pub docker_config: Option<PathBuf>,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
    /// Limit for connecting to a registry.
    pub connect_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure: Vec::new(),
            docker_config: None,
            max_concurrent_downloads: 3,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

impl Options {
    /// The defaults, with [`INSECURE_REGISTRIES_ENV`] and Docker's config directory (`$DOCKER_CONFIG`,
    /// else `~/.docker`).
    pub fn from_env() -> Options {
        let insecure = std::env::var(INSECURE_REGISTRIES_ENV)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Options { insecure, docker_config: docker_config_dir(), ..Options::default() }
    }

    /// Whether `registry` (`host[:port]`) is contacted over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        is_loopback(registry) || self.insecure.iter().any(|r| r == registry)
    }
}

/// Whether a registry host is `localhost` or a loopback address (with or without a port).
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image as the store now names it.
    pub image: Image,
    /// The digest of the manifest the reference resolved to (of the index, for a multi-platform image).
    pub digest: String,
    /// Whether layers were downloaded (false: the store had the image already).
    pub downloaded: bool,
}

/// A manifest or an index, the fields cnet reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

impl Document {
    fn is_index(&self) -> bool {
        matches!(self.media_type.as_deref(), Some(OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE))
            || (self.config.is_none() && !self.manifests.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    platform: Option<Platform>,
}

impl Descriptor {
    fn oci(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            ..OciDescriptor::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

/// This machine as OCI names platforms: `(architecture, variant)`.
pub fn host_platform() -> (&'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    }
}

/// Pulls `reference` into `store` and names it there (`name:tag` unless pulled by digest alone, and
/// `name@digest`). An image the store has already (same config digest) is only renamed.
pub async fn pull(
    store: &ImageStore,
    reference: &Reference,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let result = pull_inner(store, reference, options, progress).await;
    if result.is_err() {
        progress.failed();
    }
    result
}

async fn pull_inner(
    store: &ImageStore,
    reference: &Reference,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let registry = reference.registry_host().to_string();
    let session = Session::new(reference, options)?;
    match (&reference.tag, &reference.digest) {
        (_, Some(digest)) => progress.status(&format!("{digest}: Pulling from {}", reference.path)),
        (tag, None) => {
            progress.status(&format!("{}: Pulling from {}", tag.as_deref().unwrap_or("latest"), reference.path))
        }
    }
    tracing::info!(reference = %reference, registry, "pulling");

    // The manifest the reference names, then down an index to this platform's.
    let (bytes, digest) = session.manifest(&session.root, reference.digest.as_deref()).await?;
    let mut doc = parse_document(&bytes, &reference.to_string())?;
    let mut depth = 0;
    while doc.is_index() {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(Error::Unsupported(format!("the image indexes of {reference} nest too deep")));
        }
        let entry = select_platform(&doc.manifests, reference)?;
        let at = session.root.clone_with_digest(entry.digest.clone());
        let (bytes, _) = session.manifest(&at, Some(&entry.digest)).await?;
        doc = parse_document(&bytes, &format!("{reference} ({})", entry.digest))?;
    }
    let Some(config) = doc.config.clone() else {
        return Err(Error::Unsupported(format!("the manifest of {reference} names no image config")));
    };
    if doc.schema_version.is_some_and(|v| v != 2) {
        return Err(Error::Unsupported(format!("the manifest of {reference} is not of schema version 2")));
    }

    let config_bytes = session.small_blob(&config, &format!("the config of {reference}")).await?;
    let id = sha256_hex(&config.digest)
        .ok_or_else(|| Error::Unsupported(format!("the config of {reference} is not named by a sha256 digest")))?
        .to_string();
    let name = reference.name();
    let tag = reference.store_tag();

    if store.has_image(&id)? {
        let image = store.tag_image(&id, &name, tag, Some(&digest))?;
        progress.status(&format!("Digest: {digest}"));
        progress.status(&format!("Status: Image is up to date for {reference}"));
        return Ok(Pulled { image, digest, downloaded: false });
    }

    for layer in &doc.layers {
        check_layer_type(layer, reference)?;
    }
    let stage = store.stage()?;
    let downloads = stage.path().join("blobs");
    tokio::fs::create_dir(&downloads)
        .await
        .map_err(|e| Error::Image(io_error(format!("creating {}", downloads.display()), e)))?;
    for layer in &doc.layers {
        progress.layer_started(&layer.digest, u64::try_from(layer.size).unwrap_or(0));
    }
    let paths: Vec<PathBuf> = futures::stream::iter(doc.layers.iter().map(|l| session.layer(l, &downloads, progress)))
        .buffered(options.max_concurrent_downloads.max(1))
        .try_collect()
        .await?;
    apply_layers(&stage, &doc.layers, &paths, reference, progress)?;
    let image = stage.commit(&id, &config_bytes, &name, tag, Some(&digest))?;
    progress.status(&format!("Digest: {digest}"));
    progress.status(&format!("Status: Downloaded newer image for {reference}"));
    Ok(Pulled { image, digest, downloaded: true })
}

/// Unpacks the downloaded layers bottom first, each removed once applied.
fn apply_layers(
    stage: &Stage,
    layers: &[Descriptor],
    paths: &[PathBuf],
    reference: &Reference,
    progress: &dyn Progress,
) -> Result<()> {
    for (i, (layer, path)) in layers.iter().zip(paths).enumerate() {
        let what = format!("layer {} ({}) of {reference}", i + 1, layer.digest);
        stage.apply_layer(path, &what)?;
        std::fs::remove_file(path).map_err(|e| Error::Image(io_error(format!("removing {}", path.display()), e)))?;
        progress.layer_extracted(&layer.digest);
    }
    Ok(())
}

fn io_error(context: String, source: std::io::Error) -> cnet_image::Error {
    cnet_image::Error::Io { context, source }
}

fn parse_document(bytes: &[u8], what: &str) -> Result<Document> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Registry(format!("the manifest of {what} is not a valid manifest document: {e}")))
}

/// Only tar layers (plain, gzip, zstd) can be unpacked; foreign layers (Windows base layers) cannot.
fn check_layer_type(layer: &Descriptor, reference: &Reference) -> Result<()> {
    let t = layer.media_type.as_str();
    if t.contains("foreign") || t.contains("nondistributable") || !(t.is_empty() || t.contains("tar")) {
        return Err(Error::Unsupported(format!(
            "layer {} of {reference} has media type '{t}', which cnet cannot unpack",
            layer.digest
        )));
    }
    Ok(())
}

/// The entry of an index for this platform: linux and this architecture, the variant preferred.
fn select_platform<'a>(entries: &'a [Descriptor], reference: &Reference) -> Result<&'a Descriptor> {
    let (arch, variant) = host_platform();
    let fits: Vec<&Descriptor> = entries
        .iter()
        .filter(|e| e.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch))
        .collect();
    let chosen = fits
        .iter()
        .find(|e| e.platform.as_ref().and_then(|p| p.variant.as_deref()) == variant)
        .or_else(|| fits.first())
        .copied();
    chosen.ok_or_else(|| {
        let offered: Vec<String> = entries
            .iter()
            .filter_map(|e| e.platform.as_ref())
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect();
        Error::Unsupported(format!(
            "no matching manifest for linux/{arch} in the manifest list entries of {reference} (it has: {})",
            if offered.is_empty() { "no platforms".to_string() } else { offered.join(", ") }
        ))
    })
}

fn sha256(bytes: &[u8]) -> String {
    digest_name(Sha256::digest(bytes))
}

/// A sha256 hash as the OCI names it: `sha256:<hex>`.
fn digest_name(hash: impl AsRef<[u8]>) -> String {
    format!("sha256:{}", hex::encode(hash))
}

/// The hex of a `sha256:<64 hex digits>` digest; `None` for any other.
fn sha256_hex(digest: &str) -> Option<&str> {
    digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The client, credentials and repository of one pull.
struct Session<'a> {
    client: Client,
    auth: RegistryAuth,
    root: oci_client::Reference,
    reference: &'a Reference,
    has_credentials: bool,
}

impl<'a> Session<'a> {
    fn new(reference: &'a Reference, options: &Options) -> Result<Session<'a>> {
        // reqwest is built without a default TLS crypto provider (no aws-lc build): ring it is.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = reference.registry_host().to_string();
        let protocol = if options.is_insecure(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            platform_resolver: None,
            connect_timeout: Some(options.connect_timeout),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("cnet/", env!("CARGO_PKG_VERSION")),
            max_concurrent_download: options.max_concurrent_downloads.max(1),
            ..ClientConfig::default()
        };
        let credentials = match &options.docker_config {
            Some(dir) => credentials_in(dir, &reference.domain)?,
            None => None,
        };
        let has_credentials = credentials.is_some();
        let auth = match credentials {
            Some(Credentials { username, password }) => RegistryAuth::Basic(username, password),
            None => RegistryAuth::Anonymous,
        };
        let root = match (&reference.digest, reference.store_tag()) {
            (Some(digest), _) => oci_client::Reference::with_digest(registry, reference.path.clone(), digest.clone()),
            (None, tag) => oci_client::Reference::with_tag(
                registry,
                reference.path.clone(),
                tag.unwrap_or(cnet_image::DEFAULT_TAG).to_string(),
            ),
        };
        Ok(Session { client: Client::new(config), auth, root, reference, has_credentials })
    }

    /// The manifest at `at` and its digest, verified against `expected` when given.
    async fn manifest(&self, at: &oci_client::Reference, expected: Option<&str>) -> Result<(Vec<u8>, String)> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(at, &self.auth, MANIFEST_TYPES)
            .await
            .map_err(|e| self.error(e, &format!("manifest for {}", self.shown(at))))?;
        if bytes.len() as u64 > MAX_DOCUMENT {
            return Err(Error::Registry(format!(
                "the manifest of {} is larger than {MAX_DOCUMENT} bytes",
                self.reference
            )));
        }
        let actual = sha256(&bytes);
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(Error::Verification(format!(
                "the manifest for {} does not match its digest: got {actual}",
                self.shown(at)
            )));
        }
        Ok((bytes.to_vec(), actual))
    }

    /// A small blob (the config) in memory, verified.
    async fn small_blob(&self, descriptor: &Descriptor, what: &str) -> Result<Vec<u8>> {
        if descriptor.size < 0 || descriptor.size as u64 > MAX_DOCUMENT {
            return Err(Error::Unsupported(format!("{what} has an implausible size of {} bytes", descriptor.size)));
        }
        let mut out = Vec::new();
        self.client
            .pull_blob(&self.root, &descriptor.oci(), &mut out)
            .await
            .map_err(|e| self.error(e, &format!("{what} ({})", descriptor.digest)))?;
        verify(&out, descriptor, what)?;
        Ok(out)
    }

    /// Downloads a layer into `dir`, verifying its size and digest as it comes; its path.
    async fn layer(&self, layer: &Descriptor, dir: &Path, progress: &dyn Progress) -> Result<PathBuf> {
        let what = format!("layer {} of {}", layer.digest, self.reference);
        let hex = sha256_hex(&layer.digest)
            .ok_or_else(|| Error::Unsupported(format!("{what}: only sha256 digests are supported")))?;
        let path = dir.join(hex);
        let io = |e: std::io::Error| Error::Image(io_error(format!("writing {}", path.display()), e));
        let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
        let mut stream =
            self.client.pull_blob_stream(&self.root, &layer.oci()).await.map_err(|e| self.error(e, &what))?;
        let declared = u64::try_from(layer.size).unwrap_or(0);
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        loop {
            let chunk = match stream.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                // The client checks the digest too, and fails the stream's end: ours says it first.
                Some(Err(e)) => {
                    let ours = digest_name(hasher.clone().finalize());
                    if done == declared && ours != layer.digest {
                        return Err(corrupt(&what, &ours));
                    }
                    return Err(Error::Registry(format!("downloading {what}: {}", chain(&e))));
                }
            };
            done += chunk.len() as u64;
            if declared > 0 && done > declared {
                return Err(Error::Verification(format!(
                    "{what} is corrupt: the registry sent more than the {declared} bytes its manifest says"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
            progress.layer_progress(&layer.digest, done);
        }
        file.flush().await.map_err(io)?;
        if done != declared {
            return Err(Error::Verification(format!(
                "{what} is corrupt: {done} bytes received, its manifest says {declared}"
            )));
        }
        let actual = digest_name(hasher.finalize());
        if actual != layer.digest {
            return Err(corrupt(&what, &actual));
        }
        progress.layer_downloaded(&layer.digest, done);
        Ok(path)
    }

    /// `localhost:5000/test:1` or `…@sha256:…` for messages.
    fn shown(&self, at: &oci_client::Reference) -> String {
        match at.digest() {
            Some(d) => format!("{}@{d}", self.reference.name()),
            None => self.reference.to_string(),
        }
    }

    /// A client error in words: `what` could not be had, and why.
    fn error(&self, e: OciDistributionError, what: &str) -> Error {
        let registry = self.reference.registry_host();
        match e {
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let text: Vec<String> = envelope.errors.iter().map(|e| e.message.clone()).collect();
                let text = text.join("; ");
                if codes.iter().any(|c| {
                    matches!(c, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::BlobUnknown)
                }) {
                    Error::NotFound(format!("{what} not found: {text}"))
                } else if codes.iter().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                    self.unauthorized(what, &text)
                } else {
                    Error::Registry(format!("{registry} refused {what}: {text}"))
                }
            }
            OciDistributionError::UnauthorizedError { .. } => self.unauthorized(what, "authentication required"),
            OciDistributionError::AuthenticationFailure(why) => self.unauthorized(what, why.trim()),
            OciDistributionError::ServerError { code: 404, .. } => Error::NotFound(format!("{what} not found")),
            OciDistributionError::DigestError(d) => {
                Error::Verification(format!("{what} does not match its digest: {d}"))
            }
            OciDistributionError::RequestError(r) => {
                Error::Registry(format!("cannot reach the registry {registry} to get the {what}: {}", chain(&r)))
            }
            other => Error::Registry(format!("{what}: {}", chain(&other))),
        }
    }

    fn unauthorized(&self, what: &str, why: &str) -> Error {
        let registry = &self.reference.domain;
        let hint = if self.has_credentials {
            format!("the credentials for {registry} in Docker's config.json were refused")
        } else {
            format!("no credentials for {registry} in Docker's config.json ($DOCKER_CONFIG or ~/.docker)")
        };
        Error::Unauthorized(format!("pull access denied to the {what}: {why} ({hint})"))
    }
}

fn corrupt(what: &str, actual: &str) -> Error {
    Error::Verification(format!("{what} is corrupt: its content does not match its digest (got {actual})"))
}

fn verify(bytes: &[u8], descriptor: &Descriptor, what: &str) -> Result<()> {
    if u64::try_from(descriptor.size).ok() != Some(bytes.len() as u64) {
        return Err(Error::Verification(format!(
            "{what} ({}) is corrupt: {} bytes received, its manifest says {}",
            descriptor.digest,
            bytes.len(),
            descriptor.size
        )));
    }
    let actual = sha256(bytes);
    if actual != descriptor.digest {
        return Err(corrupt(&format!("{what} ({})", descriptor.digest), &actual));
    }
    Ok(())
}

/// An error and its sources, `: `-joined (reqwest hides the OS error in its sources).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        for r in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.9.9.9", "[::1]:5000", "[::1]"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["docker.io", "registry-1.docker.io", "10.0.0.1:5000", "localhost.example.com", "[::2]:5000"] {
            assert!(!is_loopback(r), "{r}");
        }
        let options = Options { insecure: vec!["reg.lan:5000".into()], ..Options::default() };
        assert!(options.is_insecure("reg.lan:5000") && !options.is_insecure("reg.lan"));
    }

    fn entry(arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_IMAGE_MEDIA_TYPE.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    #[test]
    fn an_index_resolves_to_this_platform() {
        let reference = Reference::parse("localhost:5000/multi:1").unwrap();
        let (arch, variant) = host_platform();
        let entries = vec![entry("s390x", None, "a"), entry(arch, Some("other"), "b"), entry(arch, variant, "c")];
        assert_eq!(select_platform(&entries, &reference).unwrap().digest, "c");
        let err = select_platform(&entries[..1], &reference).unwrap_err().to_string();
        assert!(err.contains(&format!("linux/{arch}")) && err.contains("linux/s390x"), "{err}");
        assert!(err.contains("localhost:5000/multi:1"), "{err}");
    }

    #[test]
    fn layer_types() {
        let reference = Reference::parse("x").unwrap();
        let layer = |t: &str| Descriptor { media_type: t.into(), digest: "d".into(), size: 1, platform: None };
        for ok in [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ] {
            assert!(check_layer_type(&layer(ok), &reference).is_ok(), "{ok}");
        }
        assert!(
            check_layer_type(&layer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), &reference).is_err()
        );
        assert!(check_layer_type(&layer("application/vnd.wasm.content.layer.v1+wasm"), &reference).is_err());
    }

    #[test]
    fn documents() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(parse_document(index, "x").unwrap().is_index());
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:aa","size":2},"layers":[]}"#;
        assert!(!parse_document(manifest, "x").unwrap().is_index());
        assert!(parse_document(b"<html>", "x").unwrap_err().to_string().contains("not a valid manifest"));
    }
}
