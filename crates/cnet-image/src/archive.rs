//! Reading an import tarball: compression by magic bytes, what kind of tarball it is (a plain root
//! filesystem, a `docker save` archive, an OCI image layout), and for saved images the manifest, the
//! config and the layers, read in place by seeking to them (nothing of the outer archive is unpacked).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use tar::EntryType;

use super::ImageConfig;
use super::error::{Context, Error, Result};
use super::reference::is_full_id;

/// Manifests and configs larger than this are not JSON anyone wrote by hand or by Docker.
const MAX_JSON: u64 = 16 << 20;

/// How a stream is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Detects the compression of `head` (the first bytes of a stream). Gzip and zstd are read; xz and
/// bzip2 are named in the error so the user can decompress first.
pub(crate) fn compression(head: &[u8], what: &dyn Fn() -> String) -> Result<Compression> {
    let unsupported = |kind: &str| {
        Err(Error::invalid(format!(
            "{} is {kind}-compressed, which cnet cannot read; decompress it or use gzip",
            what()
        )))
    };
    match head {
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => unsupported("xz"),
        [b'B', b'Z', b'h', ..] => unsupported("bzip2"),
        _ => Ok(Compression::None),
    }
}

/// `reader`, decompressed if its first bytes say gzip or zstd.
pub(crate) fn decompressed<'a>(reader: impl Read + 'a, what: &dyn Fn() -> String) -> Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().context(|| format!("reading {}", what()))?;
    Ok(match compression(head, what)? {
        Compression::Gzip => Box::new(MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| Error::invalid(format!("{}: bad zstd data: {e}", what())))?,
        ),
        Compression::None => Box::new(reader),
    })
}

/// What an import tarball holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A root filesystem, applied as one layer.
    RootFs,
    /// `docker save`: `manifest.json` naming a config and layers (newer Docker adds an OCI layout).
    DockerSave,
    /// An OCI image layout without `manifest.json`: `oci-layout`, `index.json`, `blobs/`.
    OciLayout,
}

#[derive(Debug, Clone)]
enum Member {
    File {
        offset: u64,
        size: u64,
    },
    /// A symbolic or hard link, as the archive path it points to.
    Link(PathBuf),
}

/// An uncompressed tar file and an index of its members, so any member can be read by seeking.
pub(crate) struct Bundle {
    path: PathBuf,
    /// The tarball as the user named it, for messages.
    source: String,
    members: HashMap<PathBuf, Member>,
}

/// A saved image found in a bundle: its config and its layers, bottom first.
#[derive(Debug)]
pub(crate) struct SavedImage {
    /// The digest of the config when the archive names it (`<hex>.json`, `blobs/sha256/<hex>`).
    pub id: Option<String>,
    pub config: ImageConfig,
    pub created: Option<String>,
    pub layers: Vec<String>,
}

impl Bundle {
    /// Indexes the uncompressed tar at `path`. Members whose names climb out of the archive are left
    /// out: nothing here is ever written to disk, and a manifest can only name what is indexed.
    pub(crate) fn open(path: &Path, source: &str) -> Result<Bundle> {
        let file = File::open(path).context(|| format!("opening {}", path.display()))?;
        let mut archive = tar::Archive::new(file);
        let bad_tar = |e: io::Error| Error::invalid(format!("{source} is not a valid tar archive: {e}"));
        let mut members = HashMap::new();
        for entry in archive.entries_with_seek().map_err(bad_tar)? {
            let entry = entry.map_err(bad_tar)?;
            let Some(name) = entry.path().ok().and_then(|p| normalize(Path::new(""), &p)) else {
                continue;
            };
            let member = match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => {
                    Member::File { offset: entry.raw_file_position(), size: entry.size() }
                }
                EntryType::Symlink => {
                    let dir = name.parent().unwrap_or(Path::new(""));
                    match entry.link_name().ok().flatten().and_then(|t| normalize(dir, &t)) {
                        Some(target) => Member::Link(target),
                        None => continue,
                    }
                }
                EntryType::Link => match entry.link_name().ok().flatten().and_then(|t| normalize(Path::new(""), &t)) {
                    Some(target) => Member::Link(target),
                    None => continue,
                },
                _ => continue,
            };
            members.insert(name, member);
        }
        Ok(Bundle { path: path.to_path_buf(), source: source.to_string(), members })
    }

    pub(crate) fn kind(&self) -> Kind {
        if self.members.contains_key(Path::new("manifest.json")) {
            Kind::DockerSave
        } else if self.members.contains_key(Path::new("index.json"))
            && self.members.contains_key(Path::new("oci-layout"))
        {
            Kind::OciLayout
        } else {
            Kind::RootFs
        }
    }

    /// The member `name` (links followed) as a reader.
    pub(crate) fn open_member(&self, name: &str) -> Result<impl Read + use<>> {
        let missing =
            || Error::invalid(format!("{}: '{name}' is named by the manifest but not in the archive", self.source));
        let mut path = normalize(Path::new(""), Path::new(name)).ok_or_else(missing)?;
        for _ in 0..40 {
            match self.members.get(&path).ok_or_else(missing)? {
                Member::Link(target) => path = target.clone(),
                Member::File { offset, size } => {
                    let mut file = File::open(&self.path).context(|| format!("opening {}", self.path.display()))?;
                    file.seek(SeekFrom::Start(*offset)).context(|| format!("reading {}", self.source))?;
                    return Ok(file.take(*size));
                }
            }
        }
        Err(Error::invalid(format!("{}: too many links resolving '{name}'", self.source)))
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T> {
        let mut bytes = Vec::new();
        self.open_member(name)?
            .take(MAX_JSON)
            .read_to_end(&mut bytes)
            .context(|| format!("reading '{name}' in {}", self.source))?;
        serde_json::from_slice(&bytes).context(|| format!("{}: '{name}' is not a valid image document", self.source))
    }

    /// The image of a `docker save` archive. With several images inside, the one tagged `wanted`
    /// (`name:tag`) is taken.
    pub(crate) fn docker_save_image(&self, wanted: &str) -> Result<SavedImage> {
        let manifest: Vec<SaveManifest> = self.read_json("manifest.json")?;
        let chosen = match manifest.as_slice() {
            [] => return Err(Error::invalid(format!("{}: manifest.json lists no image", self.source))),
            [only] => only,
            many => many.iter().find(|m| m.repo_tags.iter().flatten().any(|t| same_reference(t, wanted))).ok_or_else(
                || {
                    let tags: Vec<_> = many.iter().flat_map(|m| m.repo_tags.iter().flatten().cloned()).collect();
                    Error::invalid(format!(
                        "{} holds {} images ({}); none is tagged '{wanted}': import it under one of those tags",
                        self.source,
                        many.len(),
                        tags.join(", ")
                    ))
                },
            )?,
        };
        self.saved_image(&chosen.config, chosen.layers.clone())
    }

    /// The image of an OCI image layout: the manifest of `index.json` named `wanted` (by its
    /// `org.opencontainers.image.ref.name` annotation), else the only one, else the one for this machine.
    pub(crate) fn oci_image(&self, wanted: &str) -> Result<SavedImage> {
        let index: OciIndex = self.read_json("index.json")?;
        let by_name = index.manifests.iter().find(|d| {
            d.annotations.iter().any(|(k, v)| {
                matches!(k.as_str(), "org.opencontainers.image.ref.name" | "io.containerd.image.name")
                    && (same_reference(v, wanted) || Some(v.as_str()) == wanted.rsplit_once(':').map(|x| x.1))
            })
        });
        let descriptor = match by_name {
            Some(d) => d.clone(),
            None => self.pick_platform(&index.manifests, "index.json")?,
        };
        let manifest = self.resolve_manifest(descriptor, 0)?;
        let layers = manifest.layers.iter().map(|l| blob_path(&l.digest)).collect::<Result<Vec<_>>>()?;
        self.saved_image(&blob_path(&manifest.config.digest)?, layers)
    }

    /// Follows nested indexes (multi-platform images) down to one image manifest.
    fn resolve_manifest(&self, descriptor: Descriptor, depth: usize) -> Result<OciManifest> {
        let path = blob_path(&descriptor.digest)?;
        let doc: OciManifest = self.read_json(&path)?;
        if doc.manifests.is_empty() {
            return Ok(doc);
        }
        if depth > 4 {
            return Err(Error::invalid(format!("{}: image indexes nest too deep", self.source)));
        }
        let next = self.pick_platform(&doc.manifests, &path)?;
        self.resolve_manifest(next, depth + 1)
    }

    fn pick_platform(&self, manifests: &[Descriptor], what: &str) -> Result<Descriptor> {
        let arch = host_architecture();
        let fits = |d: &&Descriptor| d.platform.as_ref().is_none_or(|p| p.os == "linux" && p.architecture == arch);
        match manifests {
            [] => Err(Error::invalid(format!("{}: {what} lists no manifest", self.source))),
            [only] => Ok(only.clone()),
            many => many
                .iter()
                .find(fits)
                .cloned()
                .ok_or_else(|| Error::invalid(format!("{}: {what} has no image for linux/{arch}", self.source))),
        }
    }

    fn saved_image(&self, config_path: &str, layers: Vec<String>) -> Result<SavedImage> {
        let file: ConfigFile = self.read_json(config_path)?;
        let name = Path::new(config_path).file_name().and_then(|n| n.to_str()).unwrap_or("");
        let digest = name.strip_suffix(".json").unwrap_or(name);
        let (config, created) = file.into_parts();
        Ok(SavedImage { id: is_full_id(digest).then(|| digest.to_string()), config, created, layers })
    }
}

/// The run config and creation time of an image config document (Docker's or OCI's JSON).
pub(crate) fn parse_config(bytes: &[u8], what: &str) -> Result<(ImageConfig, Option<String>)> {
    let file: ConfigFile =
        serde_json::from_slice(bytes).context(|| format!("{what} is not a valid image config document"))?;
    Ok(file.into_parts())
}

/// `path` made relative to the archive root: `dir` (for a link target) joined with `path`, `.` and `..`
/// resolved lexically. `None` when it climbs above the archive root or names the root.
fn normalize(dir: &Path, path: &Path) -> Option<PathBuf> {
    let mut out = if path.is_absolute() { PathBuf::new() } else { dir.to_path_buf() };
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Whether two `name:tag` spellings name the same image (`docker.io/library/` is Docker Hub's default).
fn same_reference(a: &str, b: &str) -> bool {
    let short = |s: &str| {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        let s = s.strip_prefix("library/").unwrap_or(s);
        if s.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')) { s.to_string() } else { format!("{s}:latest") }
    };
    short(a) == short(b)
}

/// `sha256:<hex>` → `blobs/sha256/<hex>`.
fn blob_path(digest: &str) -> Result<String> {
    match digest.split_once(':') {
        Some((alg, hex)) if !alg.is_empty() && !hex.is_empty() && !digest.contains('/') && !digest.contains("..") => {
            Ok(format!("blobs/{alg}/{hex}"))
        }
        _ => Err(Error::invalid(format!("invalid digest '{digest}' in the image layout"))),
    }
}

/// The host's architecture as OCI spells it.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// One entry of `docker save`'s manifest.json.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// An OCI image manifest, or an index (when `manifests` is not empty).
#[derive(Debug, Deserialize)]
struct OciManifest {
    #[serde(default)]
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Descriptor {
    #[serde(default)]
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

/// The image config json (Docker's and OCI's agree on these fields).
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    config: Option<RunConfig>,
}

impl ConfigFile {
    fn into_parts(self) -> (ImageConfig, Option<String>) {
        let c = self.config.unwrap_or_default();
        let mut exposed_ports: Vec<String> = c
            .exposed_ports
            .unwrap_or_default()
            .into_keys()
            .map(|p| if p.contains('/') { p } else { format!("{p}/tcp") })
            .collect();
        exposed_ports.sort();
        exposed_ports.dedup();
        let config = ImageConfig {
            env: c.env.unwrap_or_default(),
            cmd: c.cmd.map(StringOrList::into_vec).unwrap_or_default(),
            entrypoint: c.entrypoint.map(StringOrList::into_vec).unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            exposed_ports,
        };
        (config, self.created)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<StringOrList>,
    #[serde(default)]
    entrypoint: Option<StringOrList>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

/// Very old configs spell `Cmd` and `Entrypoint` as one string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    List(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::List(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        let what = || "x.tar".to_string();
        assert_eq!(compression(&[0x1f, 0x8b, 8], &what).unwrap(), Compression::Gzip);
        assert_eq!(compression(b"usr/", &what).unwrap(), Compression::None);
        assert_eq!(compression(b"", &what).unwrap(), Compression::None);
        assert_eq!(compression(&[0x28, 0xb5, 0x2f, 0xfd], &what).unwrap(), Compression::Zstd);
        let err = compression(&[0xfd, b'7', b'z', b'X', b'Z', 0], &what).unwrap_err().to_string();
        assert!(err.contains("x.tar") && err.contains("xz"), "{err}");
    }

    #[test]
    fn lexical_paths() {
        assert_eq!(normalize(Path::new(""), Path::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(normalize(Path::new("x"), Path::new("../y/layer.tar")), Some(PathBuf::from("y/layer.tar")));
        assert_eq!(normalize(Path::new("x"), Path::new("../../etc")), None);
        assert_eq!(normalize(Path::new(""), Path::new("/blobs/a")), Some(PathBuf::from("blobs/a")));
        assert_eq!(normalize(Path::new(""), Path::new("./")), None);
    }

    #[test]
    fn references_and_digests() {
        assert!(same_reference("docker.io/library/busybox:latest", "busybox"));
        assert!(same_reference("app:1", "app:1"));
        assert!(!same_reference("app:1", "app:2"));
        assert_eq!(blob_path("sha256:abc").unwrap(), "blobs/sha256/abc");
        assert!(blob_path("sha256:../../x").is_err());
        assert!(blob_path("abc").is_err());
    }
}
