//! Path resolution confined to a root filesystem, as the container will see it: symbolic links are
//! followed with `/` meaning the root, and `..` stops at the root. Every path the layer code writes to
//! goes through here, so no entry can reach outside the root however its links are made.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use super::error::{Context, Error, Result};

/// Linux gives up after 40 links in one lookup; a tarball gets no more.
const MAX_LINKS: usize = 40;

/// Splits an archive path into its plain components, refusing anything that could climb out of the
/// root: `..` and absolute paths. `.` components are dropped; the empty result is the root itself.
pub(crate) fn relative_components(path: &Path, what: &dyn Fn() -> String) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "{}: '{}' climbs out of the root filesystem ('..'); refusing the tarball",
                    what(),
                    path.display()
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!(
                    "{}: '{}' is an absolute path; refusing the tarball",
                    what(),
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

/// A directory found inside the root: `rel` relative to the root with every link resolved, `created`
/// the directories that had to be made on the way (when asked to make them).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub rel: PathBuf,
    pub created: Vec<PathBuf>,
}

/// Resolves `components` (a directory path inside `root`) following links within the root. Missing
/// directories are made (0755, root-owned) when `create` is set, otherwise the answer is `None`.
/// A component that exists but is not a directory (nor a link to one) is an error.
pub(crate) fn resolve_dir(root: &Path, components: &[OsString], create: bool) -> Result<Option<Resolved>> {
    let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut created = Vec::new();
    let mut links = 0;
    let shown = || components.iter().collect::<PathBuf>().display().to_string();
    while let Some(next) = pending.pop_front() {
        if next == OsStr::new("..") {
            resolved.pop();
            continue;
        }
        if next.is_empty() || next == OsStr::new(".") {
            continue;
        }
        let rel: PathBuf = resolved.iter().chain(Some(&next)).collect();
        let path = root.join(&rel);
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => resolved.push(next),
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::invalid(format!(
                        "too many levels of symbolic links resolving '{}' in the image",
                        shown()
                    )));
                }
                let target = fs::read_link(&path).context(|| format!("reading link {}", path.display()))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let parts = target.components().filter_map(|c| match c {
                    Component::Normal(c) => Some(c.to_os_string()),
                    Component::ParentDir => Some(OsString::from("..")),
                    _ => None,
                });
                for part in parts.collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(part);
                }
            }
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "'{}' in the image is not a directory (resolving '{}')",
                    rel.display(),
                    shown()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                DirBuilder::new().mode(0o755).create(&path).context(|| format!("creating {}", path.display()))?;
                created.push(rel);
                resolved.push(next);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context(|| format!("inspecting {}", path.display())),
        }
    }
    Ok(Some(Resolved { rel: resolved.iter().collect(), created }))
}

/// Whether a relative symlink target, placed in directory `dir_rel` of the root, climbs above the root.
/// (Absolute targets are resolved against the container's root and never escape it.)
pub(crate) fn link_escapes(dir_rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = dir_rel.components().count();
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => return true,
            Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn comps(s: &str) -> Vec<OsString> {
        relative_components(Path::new(s), &|| "test".into()).unwrap()
    }

    #[test]
    fn components_refuse_climbing_and_absolute() {
        assert_eq!(comps("./a/./b/"), vec![OsString::from("a"), OsString::from("b")]);
        assert!(comps("./").is_empty());
        for bad in ["../x", "a/../../x", "a/..", "/etc/passwd"] {
            let err = relative_components(Path::new(bad), &|| "t.tar".into()).unwrap_err().to_string();
            assert!(err.contains(bad) && err.starts_with("t.tar"), "{err}");
        }
    }

    #[test]
    fn links_are_followed_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/", root.join("top")).unwrap();
        symlink("../../../../..", root.join("usr/up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        fs::write(root.join("file"), "").unwrap();

        let r = resolve_dir(root, &comps("lib/x"), true).unwrap().unwrap();
        assert_eq!(r.rel, Path::new("usr/lib/x"));
        assert_eq!(r.created, vec![PathBuf::from("usr/lib/x")]);
        assert!(root.join("usr/lib/x").is_dir());
        let r = resolve_dir(root, &comps("top/usr"), false).unwrap().unwrap();
        assert_eq!(r.rel, Path::new("usr"));
        let r = resolve_dir(root, &comps("usr/up/etc"), true).unwrap().unwrap();
        assert_eq!(r.rel, Path::new("etc"));
        assert!(root.join("etc").is_dir());
        assert!(resolve_dir(root, &comps("missing/x"), false).unwrap().is_none());
        assert!(resolve_dir(root, &comps("loop/x"), true).unwrap_err().to_string().contains("too many levels"));
        assert!(resolve_dir(root, &comps("file/x"), true).unwrap_err().to_string().contains("not a directory"));
    }

    #[test]
    fn escaping_links() {
        assert!(!link_escapes(Path::new("a/b"), Path::new("../../c")));
        assert!(link_escapes(Path::new("a/b"), Path::new("../../../c")));
        assert!(link_escapes(Path::new(""), Path::new("..")));
        assert!(!link_escapes(Path::new(""), Path::new("/etc/passwd")));
        assert!(!link_escapes(Path::new("a"), Path::new("./b/../../c")));
    }
}
