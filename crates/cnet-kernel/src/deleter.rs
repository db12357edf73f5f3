//! Link deletions off the reply path.
//!
//! Deleting a bridge or a veth costs the kernel tens of milliseconds (`unregister_netdevice`
//! waits for RCU grace periods) inside the `RTM_DELLINK` request itself, so whoever sends it
//! waits that long, and so does every other request queued on the same netlink connection. Links
//! nobody needs any more (a removed network's bridge, a removed endpoint's veth) are handed to a
//! [`Deleter`] instead: a thread of its own with its own connection, which deletes whatever has
//! queued up in one go. Several links go in one request (each moved into [`DOOMED_GROUP`], then
//! `RTM_DELLINK` of that group), which the kernel unregisters together, with one wait for the
//! batch instead of one per link.
//!
//! A batch waits for a quiet moment: no kernel work of the daemon's under way (see
//! [`Deleter::busy`]) and none for [`QUIET`], or [`LONGEST_WAIT`] at most. `unregister_netdevice`
//! holds the RTNL lock for part of its tens of milliseconds, so a deletion that overlaps a
//! `network create` or a container's attach makes that command wait for it; done in the gap after
//! it, the deletion costs nobody anything. A caller that needs a link gone ([`Deleter::wait_gone`],
//! [`Deleter::wait_idle`]) does not wait for the quiet.
//!
//! A crash loses the queue, not the links: they carry cnet's names or mark, and the daemon's
//! start-up deletes such links that no record claims.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::libc;
use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::link::LinkAttribute;
use tokio::sync::Notify;

use crate::error::netlink_errno;
use crate::{Error, Result, link::check_ifname};

/// The link group doomed links are moved to before their batch is deleted: a number no other
/// program is likely to use ("cnet" in ASCII).
pub const DOOMED_GROUP: u32 = 0x636e_6574;

/// How long the daemon must have done no kernel work before a batch is deleted.
pub const QUIET: Duration = Duration::from_millis(20);
/// The longest a batch waits for a quiet moment.
pub const LONGEST_WAIT: Duration = Duration::from_millis(500);

/// A queue of links to delete, served by a thread of its own (see the module's text). Clones
/// share it.
#[derive(Clone)]
pub struct Deleter {
    shared: Arc<Shared>,
    queue: mpsc::Sender<String>,
}

struct Shared {
    /// Links queued or being deleted, by name (a count: the same name may be queued twice).
    pending: Mutex<BTreeMap<String, usize>>,
    /// Woken whenever a batch is done.
    done: Notify,
    activity: Mutex<Activity>,
}

/// The daemon's kernel work, as [`Busy`] guards tell it.
#[derive(Default)]
struct Activity {
    under_way: usize,
    last_end: Option<Instant>,
    /// Someone waits for a deletion: the next batch goes at once.
    hurry: bool,
}

/// Kernel work under way (see [`Deleter::busy`]); its drop ends it.
pub struct Busy {
    shared: Arc<Shared>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut activity = self.shared.activity.lock().expect("deleter lock");
        activity.under_way -= 1;
        activity.last_end = Some(Instant::now());
    }
}

impl Deleter {
    /// Starts the thread, in the namespace `ns` (the daemon's).
    pub(crate) fn start(ns: Arc<File>) -> Result<Deleter> {
        let (queue, work) = mpsc::channel::<String>();
        let shared = Arc::new(Shared {
            pending: Mutex::new(BTreeMap::new()),
            done: Notify::new(),
            activity: Mutex::new(Activity::default()),
        });
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("link-deleter".into())
            .spawn(move || serve(ns, work, thread_shared, ready_tx))
            .map_err(|error| Error::Connect { netns: None, error })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Deleter { shared, queue }),
            Ok(Err(error)) => Err(Error::Connect { netns: None, error }),
            Err(_) => Err(Error::Connect { netns: None, error: std::io::Error::other("the link deleter died") }),
        }
    }

    /// Queues `name` for deletion and returns at once. A link that is gone by then is no error.
    pub fn delete_later(&self, name: &str) -> Result<()> {
        check_ifname(name)?;
        *self.shared.pending.lock().expect("deleter lock").entry(name.to_string()).or_default() += 1;
        if self.queue.send(name.to_string()).is_err() {
            // The thread is gone (it never stops while a sender lives): say so rather than leak.
            self.finished(std::slice::from_ref(&name.to_string()));
            return Err(Error::Connect { netns: None, error: std::io::Error::other("the link deleter stopped") });
        }
        Ok(())
    }

    /// Marks kernel work under way (a network's bridge being made, a container's attach) until
    /// the guard is dropped: deletions wait for it to end, and for [`QUIET`] after.
    pub fn busy(&self) -> Busy {
        self.shared.activity.lock().expect("deleter lock").under_way += 1;
        Busy { shared: self.shared.clone() }
    }

    /// How long work waiting since `waiting_since` should wait yet for the daemon to have been
    /// quiet for [`QUIET`] (`None`: go now; never past [`LONGEST_WAIT`]): for other work best done
    /// between commands, bounded like the deletions' own.
    pub fn until_quiet(&self, waiting_since: Instant) -> Option<Duration> {
        let activity = self.shared.activity.lock().expect("deleter lock");
        activity.until_quiet_within(waiting_since, Instant::now())
    }

    fn hurry(&self) {
        self.shared.activity.lock().expect("deleter lock").hurry = true;
    }

    /// How many links wait to be deleted.
    pub fn pending(&self) -> usize {
        self.shared.pending.lock().expect("deleter lock").values().sum()
    }

    /// Waits until no deletion of `name` is queued or under way (so a link of that name made now
    /// is not deleted by an older request).
    pub async fn wait_gone(&self, name: &str) {
        if self.shared.pending.lock().expect("deleter lock").contains_key(name) {
            self.hurry();
        }
        loop {
            let done = self.shared.done.notified();
            if !self.shared.pending.lock().expect("deleter lock").contains_key(name) {
                return;
            }
            done.await;
        }
    }

    /// Waits until the queue is empty.
    pub async fn wait_idle(&self) {
        if self.pending() > 0 {
            self.hurry();
        }
        loop {
            let done = self.shared.done.notified();
            if self.pending() == 0 {
                return;
            }
            done.await;
        }
    }

    fn finished(&self, names: &[String]) {
        self.shared.finished(names);
    }
}

impl Shared {
    fn finished(&self, names: &[String]) {
        let mut pending = self.pending.lock().expect("deleter lock");
        for name in names {
            if let Some(count) = pending.get_mut(name) {
                *count -= 1;
                if *count == 0 {
                    pending.remove(name);
                }
            }
        }
        drop(pending);
        self.done.notify_waiters();
    }

    /// How long a batch queued at `queued` should wait yet for a quiet moment; `None`: go now.
    fn wait_for_quiet(&self, queued: Instant) -> Option<Duration> {
        let mut activity = self.activity.lock().expect("deleter lock");
        if std::mem::take(&mut activity.hurry) {
            return None;
        }
        activity.until_quiet_within(queued, Instant::now())
    }
}

impl Activity {
    /// [`Activity::until_quiet`] for work waiting since `since`, which waits no longer than
    /// [`LONGEST_WAIT`] in all.
    fn until_quiet_within(&self, since: Instant, now: Instant) -> Option<Duration> {
        if now >= since + LONGEST_WAIT {
            return None;
        }
        self.until_quiet(now)
    }

    fn until_quiet(&self, now: Instant) -> Option<Duration> {
        if self.under_way > 0 {
            return Some(Duration::from_millis(5));
        }
        let quiet_for = self.last_end.map_or(QUIET, |end| now.saturating_duration_since(end));
        QUIET.checked_sub(quiet_for).filter(|left| !left.is_zero())
    }
}

/// The thread: a runtime and a connection of its own, then batches until the last sender goes.
fn serve(ns: Arc<File>, work: mpsc::Receiver<String>, shared: Arc<Shared>, ready: mpsc::Sender<std::io::Result<()>>) {
    let setup = || -> std::io::Result<(tokio::runtime::Runtime, rtnetlink::Handle)> {
        // A fresh thread: entering the daemon's namespace here touches no other thread.
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok::<_, std::io::Error>(handle)
        })?;
        Ok((runtime, handle))
    };
    let (runtime, handle) = match setup() {
        Ok(ok) => {
            let _ = ready.send(Ok(()));
            ok
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Ok(first) = work.recv() {
        let mut batch = vec![first];
        let queued = Instant::now();
        while let Some(wait) = shared.wait_for_quiet(queued) {
            // Polled, not signalled: a wait happens only with deletions queued, and is short.
            std::thread::sleep(wait.min(Duration::from_millis(5)));
        }
        batch.extend(work.try_iter());
        runtime.block_on(delete_batch(&handle, &batch));
        shared.finished(&batch);
    }
}

/// Deletes the links of `batch` (names; duplicates and missing links allowed): one by name, or
/// several as one group. Failures are logged: the links are cnet's, and a restart removes those
/// no record claims.
async fn delete_batch(handle: &rtnetlink::Handle, batch: &[String]) {
    let mut names: Vec<&String> = batch.iter().collect();
    names.sort();
    names.dedup();
    if let [name] = names[..] {
        let msg = LinkUnspec::new_with_name(name).build();
        if let Err(e) = handle.link().del_with_message(msg).execute().await
            && netlink_errno(&e) != Some(libc::ENODEV)
        {
            tracing::warn!(link = %name, error = %e, "cannot delete link");
        }
        return;
    }
    let mut doomed = 0;
    for name in &names {
        let mut msg = LinkUnspec::new_with_name(name).build();
        msg.attributes.push(LinkAttribute::Group(DOOMED_GROUP));
        match handle.link().set(msg).execute().await {
            Ok(()) => doomed += 1,
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => {}
            Err(e) => tracing::warn!(link = %name, error = %e, "cannot mark link for deletion"),
        }
    }
    if doomed == 0 {
        return;
    }
    let mut request = handle.link().del(0);
    request.message_mut().attributes.push(LinkAttribute::Group(DOOMED_GROUP));
    if let Err(e) = request.execute().await
        && netlink_errno(&e) != Some(libc::ENODEV)
    {
        tracing::warn!(links = doomed, error = %e, "cannot delete a batch of links");
    }
    tracing::debug!(links = doomed, "deleted a batch of links");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared { pending: Mutex::new(BTreeMap::new()), done: Notify::new(), activity: Mutex::new(Activity::default()) }
    }

    #[test]
    fn quiet_means_nothing_under_way_and_nothing_for_a_while() {
        let now = Instant::now();
        assert_eq!(Activity::default().until_quiet(now), None, "a daemon that did nothing yet is quiet");
        let busy = Activity { under_way: 1, last_end: None, hurry: false };
        assert!(busy.until_quiet(now).is_some());
        let just_done = Activity { under_way: 0, last_end: Some(now), hurry: false };
        assert_eq!(just_done.until_quiet(now), Some(QUIET));
        let done_long_ago = Activity { under_way: 0, last_end: Some(now), hurry: false };
        assert_eq!(done_long_ago.until_quiet(now + QUIET), None);
    }

    #[test]
    fn a_batch_waits_for_quiet_unless_hurried_or_queued_too_long() {
        let shared = shared();
        let queued = Instant::now();
        shared.activity.lock().unwrap().under_way = 1;
        assert!(shared.wait_for_quiet(queued).is_some(), "work under way holds the batch");
        assert_eq!(shared.wait_for_quiet(queued - LONGEST_WAIT), None, "but not for longer than LONGEST_WAIT");
        shared.activity.lock().unwrap().hurry = true;
        assert_eq!(shared.wait_for_quiet(queued), None, "a waiter hurries it");
        assert!(shared.wait_for_quiet(queued).is_some(), "once");
    }

    #[test]
    fn other_work_waits_for_quiet_but_not_past_the_longest_wait() {
        let now = Instant::now();
        let busy = Activity { under_way: 1, last_end: None, hurry: true };
        assert!(busy.until_quiet_within(now, now).is_some(), "work under way holds it (a hurry is the deletions' own)");
        assert_eq!(busy.until_quiet_within(now - LONGEST_WAIT, now), None, "but not for longer than LONGEST_WAIT");
        let just_done = Activity { under_way: 0, last_end: Some(now), hurry: false };
        assert_eq!(just_done.until_quiet_within(now, now), Some(QUIET));
    }
}
