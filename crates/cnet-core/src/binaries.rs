//! Finding cnet's other binaries: installed together, each is looked for next to the one asking,
//! then on PATH (a checkout's `target/debug`, a package's `/usr/bin`, `/usr/local/bin`).

use std::path::{Path, PathBuf};

/// `name` in the directory of `beside` if it is there, else the first `name` on PATH.
pub fn find_beside_or_on_path(beside: &Path, name: &str) -> Option<PathBuf> {
    let sibling = beside.with_file_name(name);
    if sibling.is_file() {
        return Some(sibling);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sibling_comes_before_path() {
        let dir = std::env::temp_dir().join(format!("cnet-binaries-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sh"), "").unwrap();
        assert_eq!(find_beside_or_on_path(&dir.join("me"), "sh"), Some(dir.join("sh")));
        std::fs::remove_file(dir.join("sh")).unwrap();
        let on_path = find_beside_or_on_path(&dir.join("me"), "sh").expect("sh is on PATH");
        assert_ne!(on_path.parent(), Some(dir.as_path()));
        assert_eq!(find_beside_or_on_path(&dir.join("me"), "no-such-binary-of-cnet"), None);
        std::fs::remove_dir(&dir).unwrap();
    }
}
