//! `cnet pull` (and `cnet image pull`), and the image policy of `cnet run --pull`: pulls through
//! cnet-registry, drawing per-layer progress bars on a terminal and plain lines otherwise.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::bail;
use cnet_image::{ImageStore, Reference};
use cnet_registry::{Options, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{PullArgs, PullPolicy};
use crate::context::Ctx;
use crate::image::human_size;

/// `cnet pull NAME[:TAG|@DIGEST]`: progress on stdout, then the full reference, as Docker.
pub async fn pull(ctx: &Ctx, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.runtime()?.images()?;
    let reference = Reference::parse(&args.reference)?;
    if reference.tag.is_none() && reference.digest.is_none() && !args.quiet {
        println!("Using default tag: {}", cnet_image::DEFAULT_TAG);
    }
    let display = Display::new(Stream::Stdout, args.quiet);
    cnet_registry::pull(&store, &reference, &Options::from_env(), &display).await?;
    drop(display);
    println!("{}", full_reference(&reference));
    Ok(ExitCode::SUCCESS)
}

/// Makes sure the image `cnet run` is about to use is in the store, as `--pull` says: `missing`
/// pulls it only when the store (the built-in busybox included) has no such image, `always` pulls it
/// every time, `never` never does. Progress goes to stderr.
pub async fn ensure_image(store: &ImageStore, image: &str, policy: PullPolicy) -> anyhow::Result<()> {
    match policy {
        PullPolicy::Never => match store.resolve(image) {
            Ok(_) => Ok(()),
            Err(cnet_image::Error::NotFound(msg)) => bail!("{msg}, and --pull never forbids pulling it"),
            Err(e) => Err(e.into()),
        },
        PullPolicy::Missing => match store.resolve(image) {
            Ok(_) => Ok(()),
            Err(cnet_image::Error::NotFound(msg)) => {
                eprintln!("{msg}");
                pull_quietly_to_stderr(store, image).await
            }
            Err(e) => Err(e.into()),
        },
        PullPolicy::Always => pull_quietly_to_stderr(store, image).await,
    }
}

async fn pull_quietly_to_stderr(store: &ImageStore, image: &str) -> anyhow::Result<()> {
    let reference = Reference::parse(image)?;
    let display = Display::new(Stream::Stderr, false);
    cnet_registry::pull(store, &reference, &Options::from_env(), &display).await?;
    Ok(())
}

/// `docker.io/library/busybox:latest`, `localhost:5000/test@sha256:…`.
fn full_reference(r: &Reference) -> String {
    let mut s = r.full_name();
    if let Some(tag) = r.store_tag() {
        s.push(':');
        s.push_str(tag);
    }
    if let Some(digest) = &r.digest {
        s.push('@');
        s.push_str(digest);
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Draws a pull: one bar per layer on a terminal, plain lines otherwise (`<id>: Downloaded (4.26MB)`).
struct Display {
    stream: Stream,
    quiet: bool,
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl Display {
    fn new(stream: Stream, quiet: bool) -> Display {
        let tty = match stream {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        };
        let bars = (tty && !quiet).then(|| {
            let target = match stream {
                Stream::Stdout => ProgressDrawTarget::stdout(),
                Stream::Stderr => ProgressDrawTarget::stderr(),
            };
            (MultiProgress::with_draw_target(target), Mutex::new(HashMap::new()))
        });
        Display { stream, quiet, bars }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if let Some((multi, _)) = &self.bars
            && multi.println(text).is_ok()
        {
            return;
        }
        let _ = match self.stream {
            Stream::Stdout => writeln!(std::io::stdout().lock(), "{text}"),
            Stream::Stderr => writeln!(std::io::stderr().lock(), "{text}"),
        };
    }

    fn bar(&self, digest: &str) -> Option<ProgressBar> {
        let (_, bars) = self.bars.as_ref()?;
        bars.lock().unwrap_or_else(|p| p.into_inner()).get(digest).cloned()
    }
}

/// The 12 hex digits Docker names a layer by.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

impl Progress for Display {
    fn status(&self, line: &str) {
        self.line(line);
    }

    fn layer_started(&self, digest: &str, size: u64) {
        match &self.bars {
            Some((multi, bars)) => {
                let bar = multi.add(ProgressBar::new(size));
                let style = ProgressStyle::with_template("{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(short(digest).to_string());
                bar.set_message("Downloading");
                bars.lock().unwrap_or_else(|p| p.into_inner()).insert(digest.to_string(), bar);
            }
            None => self.line(&format!("{}: Pulling fs layer", short(digest))),
        }
    }

    fn layer_progress(&self, digest: &str, done: u64) {
        if let Some(bar) = self.bar(digest) {
            bar.set_position(done);
        }
    }

    fn layer_downloaded(&self, digest: &str, size: u64) {
        match self.bar(digest) {
            Some(bar) => {
                bar.set_position(size);
                bar.set_message("Download complete");
            }
            None => self.line(&format!("{}: Downloaded ({})", short(digest), human_size(size))),
        }
    }

    fn layer_extracted(&self, digest: &str) {
        match self.bar(digest) {
            Some(bar) => bar.finish_with_message("Pull complete"),
            None => self.line(&format!("{}: Pull complete", short(digest))),
        }
    }

    fn failed(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.lock().unwrap_or_else(|p| p.into_inner()).values() {
                bar.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_layer_names() {
        assert_eq!(full_reference(&Reference::parse("busybox").unwrap()), "docker.io/library/busybox:latest");
        assert_eq!(full_reference(&Reference::parse("localhost:5000/t:1").unwrap()), "localhost:5000/t:1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(full_reference(&Reference::parse(&format!("x@{d}")).unwrap()), format!("docker.io/library/x@{d}"));
        assert_eq!(short(&d), "aaaaaaaaaaaa");
    }
}
