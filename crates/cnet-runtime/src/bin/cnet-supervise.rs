//! `cnet-supervise --root DIR -H SOCKET ID [--attach]`: the supervisor of one running container
//! (see `cnet_runtime::supervisor`), started by the `cnet` CLI and by nobody else.
//!
//! A binary of its own rather than a hidden verb of `cnet` because one runs per container for the
//! container's whole life: it must cost as little memory as it can. The CLI's binary holds the
//! registry client, clap and libpcap (whose dependencies, relocated in every process, were a
//! quarter of a supervisor's private memory); this one holds only the runtime. Its arguments are
//! parsed by hand for the same reason.

use std::path::PathBuf;
use std::process::ExitCode;

fn usage(problem: &str) -> ExitCode {
    eprintln!("cnet-supervise: {problem}\nusage: cnet-supervise --root DIR -H SOCKET ID [--attach] (started by cnet)");
    ExitCode::from(125)
}

fn main() -> ExitCode {
    let mut root: Option<PathBuf> = None;
    let mut socket: Option<PathBuf> = None;
    let mut id: Option<String> = None;
    let mut attach = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--root") => root = args.next().map(PathBuf::from),
            Some("-H" | "--host") => socket = args.next().map(PathBuf::from),
            Some("--attach") => attach = true,
            Some(s) if !s.starts_with('-') && id.is_none() => id = Some(s.to_string()),
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    let (Some(root), Some(socket), Some(id)) = (root, socket, id) else {
        return usage("--root, -H and the container's ID are required");
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return usage(&format!("finding its own binary: {e}")),
    };
    match cnet_runtime::Runtime::open(&root, &socket, &exe) {
        Ok(rt) => ExitCode::from(cnet_runtime::supervisor::main(&rt, &id, attach).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("cnet-supervise {id}: {e}");
            ExitCode::from(125)
        }
    }
}
