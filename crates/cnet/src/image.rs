//! `cnet image import|ls|rm` (and `cnet import`, `cnet images`, `cnet rmi`), over the runtime's
//! image store; `cnet image pull` is in `pull.rs`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use cnet_image::{Image, ImageStore, parse_reference};

use crate::cli::{ImageCommand, ImageImportArgs, ImageLsArgs, ImageRmArgs};
use crate::context::Ctx;
use crate::output::{Table, short_id};

pub async fn run(ctx: &Ctx, command: ImageCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImageCommand::Import(a) => import(ctx, &a),
        ImageCommand::Pull(a) => crate::pull::pull(ctx, &a).await,
        ImageCommand::Ls(a) => ls(ctx, &a),
        ImageCommand::Rm(a) => rm(ctx, &a),
    }
}

pub fn import(ctx: &Ctx, args: &ImageImportArgs) -> anyhow::Result<ExitCode> {
    let image = ctx.runtime()?.images()?.import(&args.file, &args.reference)?;
    println!("sha256:{}", image.id);
    Ok(ExitCode::SUCCESS)
}

/// Docker's `units.HumanSize`: SI units, 3 significant digits (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < units.len() {
        size /= 1000.0;
        unit += 1;
    }
    let text = format!("{size:.3}");
    let digits = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let _ = text;
    let s = format!("{size:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{}", units[unit])
}

pub fn ls(ctx: &Ctx, args: &ImageLsArgs) -> anyhow::Result<ExitCode> {
    let images = ctx.runtime()?.images()?.list()?;
    let mut out = std::io::stdout().lock();
    let id = |i: &Image| if args.no_trunc { format!("sha256:{}", i.id) } else { short_id(&i.id).to_string() };
    if args.quiet {
        for i in &images {
            writeln!(out, "{}", id(i))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let since = |i: &Image| {
        cnet_runtime::time::since(&i.created)
            .map(|d| format!("{} ago", cnet_runtime::time::human_duration(d)))
            .unwrap_or_else(|| "N/A".into())
    };
    if let Some(format) = crate::format::check(args.format.as_deref())? {
        // Docker's field names of `images --format`.
        let rows: Vec<serde_json::Value> = images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "ID": id(i),
                    "Repository": i.name,
                    "Tag": i.tag,
                    "CreatedAt": i.created,
                    "CreatedSince": since(i),
                    "Size": human_size(i.size),
                })
            })
            .collect();
        out.write_all(crate::format::render(&format, &rows)?.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    for i in &images {
        let created = since(i);
        table.row([i.name.clone(), i.tag.clone(), id(i), created, human_size(i.size)]);
    }
    out.write_all(table.render().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn rm(ctx: &Ctx, args: &ImageRmArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let store = rt.images()?;
    let mut failed = false;
    for r in &args.images {
        if let Err(e) = rm_one(&rt, &store, r) {
            eprintln!("Error response from daemon: {e:#}");
            failed = true;
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn rm_one(rt: &cnet_runtime::Runtime, store: &ImageStore, reference: &str) -> anyhow::Result<()> {
    let images = store.list()?;
    let wanted = parse_reference(reference).ok();
    let bare = reference.strip_prefix("sha256:").unwrap_or(reference);
    let found =
        images.iter().find(|i| wanted.as_ref().is_some_and(|(n, t)| &i.name == n && &i.tag == t)).or_else(|| {
            (bare.len() >= 4 && bare.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| images.iter().find(|i| i.id.starts_with(bare)))
                .flatten()
        });
    if let Some(image) = found
        && let Some(c) = rt.containers_using_image(&image.id)?.first()
    {
        bail!(
            "conflict: unable to remove repository reference \"{reference}\" (must force) - container {} is using its referenced image {}",
            short_id(c.id()),
            image.short_id()
        );
    }
    let removed = store.remove(reference)?;
    println!("Untagged: {}", removed.reference());
    if !store.list()?.iter().any(|i| i.id == removed.id) {
        println!("Deleted: sha256:{}", removed.id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(12_300), "12.3kB");
    }
}
