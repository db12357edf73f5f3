//! `cnet top`: the processes of a container, found by walking `/proc` for processes whose pid
//! namespace is the container init's.

use std::fs;

use crate::container::Container;
use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub user: String,
    /// CPU time as `M:SS`, as busybox `ps` shows it.
    pub time: String,
    pub command: String,
}

pub fn top(c: &Container) -> Result<Vec<Process>> {
    let pid = c.state.pid;
    if !c.state.is_running() || pid <= 0 {
        return Err(Error::Conflict(format!("Error response from daemon: container {} is not running", c.id())));
    }
    let ns = fs::read_link(format!("/proc/{pid}/ns/pid")).context(|| format!("reading /proc/{pid}/ns/pid"))?;
    let passwd = fs::read_to_string(format!("/proc/{pid}/root/etc/passwd")).unwrap_or_default();
    // SAFETY: sysconf has no side effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").context(|| "reading /proc".into())?.flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() != Some(&ns) {
            continue;
        }
        let Some(stat) = fs::read_to_string(format!("/proc/{p}/stat")).ok() else { continue };
        let status = fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("0")
            .to_string();
        let user = user_name(&passwd, &uid);
        // Fields after the ")" of the comm: state is field 3, utime 14, stime 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let cpu = fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let secs = cpu / ticks;
        let cmdline = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let command = if cmdline.is_empty() {
            let comm = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).map_or("", |(c, _)| c);
            format!("[{comm}]")
        } else {
            cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push(Process { pid: p, user, time: format!("{}:{:02}", secs / 60, secs % 60), command });
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

fn user_name(passwd: &str, uid: &str) -> String {
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| if uid == "0" { "root".into() } else { uid.to_string() })
}
