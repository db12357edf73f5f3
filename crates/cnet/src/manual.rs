//! Shell completions and man pages, generated from the same clap definitions that parse the
//! command line, so they never drift from it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::Cli;

/// `cnet completion SHELL`: the completion script on standard output.
pub fn completion(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "cnet", &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `cnet __man DIR`: `cnet.1` and one page per command (`cnet-network-create.1`…), hidden ones
/// left out.
pub fn man_pages(dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = Cli::command();
    write_pages(&cmd, "cnet", dir)?;
    Ok(ExitCode::SUCCESS)
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    let page = cmd.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    clap_mangen::Man::new(page).render(&mut file).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_for_every_visible_command() {
        let dir = tempfile::tempdir().unwrap();
        man_pages(dir.path()).unwrap();
        for page in ["cnet.1", "cnet-run.1", "cnet-network-create.1", "cnet-lab-deploy.1", "cnet-version.1"] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(text.contains(".TH"), "{page} is not a man page");
        }
        assert!(!dir.path().join("cnet-__man.1").exists());
        let run = std::fs::read_to_string(dir.path().join("cnet-run.1")).unwrap();
        assert!(run.contains("publish") && run.contains("network"), "{run}");
    }
}
