//! Run locks that stay correct on a filesystem shared by many machines (NFS, Lustre, GPFS), so
//! that cluster jobs on different nodes can work in one store.
//!
//! A lock is the file `<run>/lock`, holding its owner as JSON (host, machine id, pid, a random
//! token, the Slurm job when there is one).
//!
//! * **Claimed atomically.** The claimant writes its owner record to a private file and
//!   hard-links it to `lock`. `link(2)` fails when `lock` exists, on NFS too (the method
//!   open(2) recommends where `O_EXCL` is not reliable); a reader never sees a half-written
//!   lock.
//! * **Kept alive.** The holder's heartbeat thread refreshes the lock's modification time
//!   every `lease / 6`.
//! * **Stale** when its process is gone (same machine: `/proc/<pid>`), or when its heartbeat
//!   is older than the lease (another machine: a crashed node, a killed job).
//! * **Taken over atomically.** The taker renames the stale lock to a private name, checks that
//!   what it renamed is the lock it judged stale (else it puts it back), deletes it and claims
//!   anew. A holder whose lock was taken over learns it at its next heartbeat, and the store
//!   refuses to record a result under a lost lock, so two writers never finish one run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, io};

/// Seconds without a heartbeat after which another machine's lock is stale, unless
/// `REWIND_LOCK_LEASE_SECS` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

/// The lease in force: `REWIND_LOCK_LEASE_SECS` or [`DEFAULT_LEASE`].
pub fn lease_from_env() -> Duration {
    std::env::var("REWIND_LOCK_LEASE_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_LEASE)
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub host: String,
    /// Boot id and pid namespace: two processes with equal machine ids see each other's pids.
    pub machine: String,
    pub pid: u32,
    pub token: String,
    /// `SLURM_JOB_ID` (with the array task) of the job holding the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pid {}", self.host, self.pid)?;
        if let Some(job) = &self.job {
            write!(f, ", job {job}")?;
        }
        Ok(())
    }
}

impl Owner {
    fn me() -> Owner {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let job = std::env::var("SLURM_JOB_ID").ok().map(|id| {
            match std::env::var("SLURM_ARRAY_TASK_ID") {
                Ok(task) => format!("{id} task {task}"),
                Err(_) => id,
            }
        });
        Owner {
            host: host_name(),
            machine: machine_id(),
            pid: std::process::id(),
            token: format!(
                "{nanos:x}-{:x}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            job,
        }
    }
}

fn host_name() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(read_host_name).clone()
}

fn read_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Empty where it cannot be known: then only the lease decides. Read once per process (every
/// status check of every run asks).
fn machine_id() -> String {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE.get_or_init(read_machine_id).clone()
}

fn read_machine_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let pid_ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if boot.trim().is_empty() || pid_ns.is_empty() {
        String::new()
    } else {
        format!("{} {pid_ns}", boot.trim())
    }
}

/// What a lock file says and how old its heartbeat is.
#[derive(Debug, Clone)]
pub struct LockState {
    /// `None` when unreadable (a lock of an older version, or a damaged file).
    pub owner: Option<Owner>,
    pub heartbeat_age: Duration,
}

impl LockState {
    pub fn read(path: &Path) -> Option<LockState> {
        let modified = path.metadata().ok()?.modified().ok()?;
        let text = std::fs::read_to_string(path).ok()?;
        Some(LockState {
            owner: serde_json::from_str(&text).ok(),
            // A heartbeat from a clock ahead of ours counts as fresh.
            heartbeat_age: SystemTime::now()
                .duration_since(modified)
                .unwrap_or_default(),
        })
    }

    /// Whether the holder is known to be gone: its process has exited (same machine) or its
    /// heartbeat is older than `lease`.
    pub fn is_stale(&self, lease: Duration) -> bool {
        if let Some(owner) = &self.owner {
            let here = machine_id();
            if !here.is_empty() && owner.machine == here {
                return !process_alive(owner.pid);
            }
        }
        self.heartbeat_age > lease
    }
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// A held lock: released (if still ours) on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    token: String,
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl RunLock {
    /// Whether the lock is still this holder's (not taken over after a lapsed heartbeat).
    pub fn is_held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && holds(&self.path, &self.token)
    }
}

fn holds(path: &Path, token: &str) -> bool {
    LockState::read(path)
        .and_then(|s| s.owner)
        .is_some_and(|o| o.token == token)
}

impl Drop for RunLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        if holds(&self.path, &self.token) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Takes the lock at `path`, waiting while a live holder has it; `what` names the run in
/// log messages.
pub fn acquire(path: &Path, what: &str, lease: Duration) -> Result<RunLock> {
    let started = Instant::now();
    let mut warned = false;
    loop {
        if let Some(lock) = try_acquire(path, lease)? {
            return Ok(lock);
        }
        if !warned && started.elapsed() > Duration::from_secs(2) {
            let holder = LockState::read(path)
                .and_then(|s| s.owner)
                .map_or_else(|| "another process".to_string(), |o| o.to_string());
            tracing::info!("waiting for {holder}, which works on {what}");
            warned = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Takes the lock at `path` if it is free or stale; `None` while a live holder has it.
pub fn try_acquire(path: &Path, lease: Duration) -> Result<Option<RunLock>> {
    let me = Owner::me();
    if claim(path, &me)? {
        return Ok(Some(start_heartbeat(path, me.token, lease)));
    }
    let Some(state) = LockState::read(path) else {
        // Released between our claim and our look: try again at once.
        return Ok(claim(path, &me)?.then(|| start_heartbeat(path, me.token.clone(), lease)));
    };
    if !state.is_stale(lease) {
        return Ok(None);
    }
    let judged = state.owner.as_ref().map(|o| o.token.clone());
    tracing::warn!(
        "taking over the stale lock {} ({})",
        path.display(),
        state
            .owner
            .as_ref()
            .map_or_else(|| "unreadable".to_string(), |o| o.to_string())
    );
    let aside = path.with_file_name(format!(".lock.stale.{}.tmp", me.token));
    match std::fs::rename(path, &aside) {
        Ok(()) => {
            let renamed = LockState::read(&aside).and_then(|s| s.owner.map(|o| o.token));
            if renamed != judged {
                // A new holder claimed it between our look and our rename: give it back.
                let _ = std::fs::hard_link(&aside, path);
                let _ = std::fs::remove_file(&aside);
                return Ok(None);
            }
            let _ = std::fs::remove_file(&aside);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path, e)),
    }
    Ok(claim(path, &me)?.then(|| start_heartbeat(path, me.token.clone(), lease)))
}

/// One atomic attempt: true when `path` now holds `me`.
fn claim(path: &Path, me: &Owner) -> Result<bool> {
    let private = path.with_file_name(format!(".lock.{}.tmp", me.token));
    let text = serde_json::to_string(me).map_err(|e| Error::Serialize {
        what: "a lock's owner",
        reason: e.to_string(),
    })?;
    std::fs::write(&private, text).map_err(|e| io(&private, e))?;
    let linked = std::fs::hard_link(&private, path);
    // NFS may report a failed link that did happen (lost reply): the link count decides.
    let ours = match linked {
        Ok(()) => true,
        Err(_) => holds(path, &me.token),
    };
    let _ = std::fs::remove_file(&private);
    match linked {
        Err(source) if !ours && source.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(Error::NoHardLinks {
                path: path.to_path_buf(),
                source,
            })
        }
        _ => Ok(ours),
    }
}

fn start_heartbeat(path: &Path, token: String, lease: Duration) -> RunLock {
    let (stop, stopped) = mpsc::channel::<()>();
    let lost = Arc::new(AtomicBool::new(false));
    let every = (lease / 6).max(Duration::from_millis(50));
    let heartbeat = {
        let (path, token, lost) = (path.to_path_buf(), token.clone(), lost.clone());
        std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if !holds(&path, &token) {
                    tracing::error!(
                        "lost the lock {} (taken over after a lapsed heartbeat); this \
                         process will not record the run's result",
                        path.display()
                    );
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
                let touched = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                if let Err(e) = touched {
                    tracing::warn!("heartbeat of {}: {e}", path.display());
                }
            }
        })
    };
    RunLock {
        path: path.to_path_buf(),
        token,
        lost,
        stop: Some(stop),
        heartbeat: Some(heartbeat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn owner_elsewhere(token: &str) -> String {
        serde_json::to_string(&Owner {
            host: "node7".into(),
            machine: "another machine".into(),
            pid: 1,
            token: token.into(),
            job: Some("42 task 3".into()),
        })
        .expect("json")
    }

    fn age(path: &Path, by: Duration) {
        let f = std::fs::File::options()
            .append(true)
            .open(path)
            .expect("open");
        f.set_modified(SystemTime::now() - by).expect("mtime");
    }

    #[test]
    fn another_machines_lock_holds_until_its_heartbeat_is_older_than_the_lease() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("lock");
        std::fs::write(&path, owner_elsewhere("t1")).expect("write");
        let lease = Duration::from_secs(60);
        assert!(try_acquire(&path, lease).expect("try").is_none());
        let state = LockState::read(&path).expect("state");
        assert_eq!(
            state.owner.expect("owner").to_string(),
            "node7 pid 1, job 42 task 3"
        );
        age(&path, Duration::from_secs(61));
        let lock = try_acquire(&path, lease).expect("try").expect("taken over");
        assert!(lock.is_held());
        let mine = LockState::read(&path).and_then(|s| s.owner).expect("owner");
        assert_eq!(mine.pid, std::process::id());
        drop(lock);
        assert!(!path.exists(), "released on drop");
        // Nothing left behind but the (released) lock.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn a_dead_process_on_this_machine_loses_its_lock_at_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("lock");
        let dead = Owner {
            pid: 4_000_000_000,
            ..Owner::me()
        };
        std::fs::write(&path, serde_json::to_string(&dead).expect("json")).expect("write");
        assert!(
            LockState::read(&path)
                .expect("state")
                .is_stale(DEFAULT_LEASE)
        );
        assert!(try_acquire(&path, DEFAULT_LEASE).expect("try").is_some());
        // An unreadable lock (an older version's) is judged by its age alone.
        std::fs::write(&path, "12345").expect("write");
        assert!(try_acquire(&path, DEFAULT_LEASE).expect("try").is_none());
        age(&path, DEFAULT_LEASE + Duration::from_secs(1));
        assert!(try_acquire(&path, DEFAULT_LEASE).expect("try").is_some());
    }

    #[test]
    fn the_heartbeat_keeps_a_lock_fresh_and_a_lost_lock_is_noticed_and_left_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("lock");
        let lease = Duration::from_millis(600);
        let lock = try_acquire(&path, lease).expect("try").expect("free");
        std::thread::sleep(Duration::from_millis(900));
        let state = LockState::read(&path).expect("state");
        assert!(state.heartbeat_age < lease, "{:?}", state.heartbeat_age);
        // Another process takes the run over (as after a lapsed heartbeat).
        std::fs::write(&path, owner_elsewhere("theirs")).expect("write");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!lock.is_held());
        drop(lock);
        let left = LockState::read(&path).and_then(|s| s.owner).expect("owner");
        assert_eq!(left.token, "theirs", "the new holder's lock is not removed");
    }

    #[test]
    fn many_writers_never_hold_one_lock_at_the_same_time() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("lock");
        let inside = AtomicUsize::new(0);
        let entries = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        let lock = loop {
                            match try_acquire(&path, DEFAULT_LEASE).expect("try") {
                                Some(lock) => break lock,
                                None => std::thread::sleep(Duration::from_micros(200)),
                            }
                        };
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        entries.fetch_add(1, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(lock);
                    }
                });
            }
        });
        assert_eq!(entries.load(Ordering::SeqCst), 200);
        assert!(!path.exists());
    }
}
