//! Running `rewind`: an invocation, how it ended, and the fingerprint of the run it left.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Result, io};

/// One command line of `rewind`, with the fault points it sets.
#[derive(Debug, Clone)]
pub struct Invocation {
    rewind: PathBuf,
    data_dir: PathBuf,
    args: Vec<String>,
    failpoints: Option<String>,
    timeout: Option<Duration>,
    cwd: Option<PathBuf>,
}

/// How an invocation ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed by the harness after its timeout.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Invocation {
    pub fn new(rewind: &Path, data_dir: &Path, args: Vec<String>) -> Invocation {
        Invocation {
            rewind: rewind.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            args,
            failpoints: None,
            timeout: None,
            cwd: None,
        }
    }

    /// Runs in `dir` (a relative default such as `--store runs` lands there, and so does a
    /// core file).
    pub fn within(mut self, dir: &Path) -> Invocation {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Sets `FAILPOINTS` (see `results::faults`).
    pub fn failpoints(mut self, spec: impl Into<String>) -> Invocation {
        self.failpoints = Some(spec.into());
        self
    }

    /// Another data directory.
    pub fn data_dir(mut self, dir: &Path) -> Invocation {
        self.data_dir = dir.to_path_buf();
        self
    }

    /// Kills the process (SIGKILL) once it has run this long.
    pub fn timeout(mut self, limit: Duration) -> Invocation {
        self.timeout = Some(limit);
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.rewind);
        c.arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env("RAYON_NUM_THREADS", "1")
            .env("RUST_BACKTRACE", "0")
            .env_remove("FAILPOINTS")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(spec) = &self.failpoints {
            c.env("FAILPOINTS", spec);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        c
    }

    /// Runs to the end (or the timeout).
    pub fn run(&self) -> Result<Exit> {
        self.run_killed_after(self.timeout)
    }

    /// Runs, sending SIGKILL after `after` if it is still running then; `timed_out` says
    /// whether it was.
    pub fn run_killed_after(&self, after: Option<Duration>) -> Result<Exit> {
        let mut child = self.command().spawn().map_err(|e| io(&self.rewind, e))?;
        // Drain both pipes on threads so a chatty child never blocks on a full pipe.
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        let started = Instant::now();
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| io(&self.rewind, e))? {
                break status;
            }
            if after.is_some_and(|a| started.elapsed() >= a) {
                let _ = child.kill();
                timed_out = true;
                break child.wait().map_err(|e| io(&self.rewind, e))?;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let join = |h: Option<std::thread::JoinHandle<String>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        Ok(Exit {
            code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout: join(out),
            stderr: join(err),
        })
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Whether the process panicked (Rust's panic message on stderr).
    pub fn panicked(&self) -> bool {
        self.stderr.contains("panicked at")
    }

    /// The lines of stderr that report an error (`error: ...` or `Error: ...`).
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("error"))
            .collect()
    }

    /// A failure that says what is wrong in one error line, without a panic or a signal.
    pub fn clear_refusal(&self) -> bool {
        !self.success()
            && self.signal.is_none()
            && !self.panicked()
            && self.error_lines().len() == 1
    }

    /// How it ended, for a report: the exit, then the error line or the stderr's last line.
    pub fn summary(&self) -> String {
        let how = match (self.code, self.signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => "no status".into(),
        };
        let line = self
            .error_lines()
            .first()
            .copied()
            .or_else(|| self.stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .to_string();
        format!("{how}: {}", line.chars().take(300).collect::<String>())
    }
}

/// What a training run leaves that must not depend on interruptions: the digest of its final
/// weights, its result and its metrics, with wall-clock fields removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    pub weights_sha256: String,
    pub result: Value,
    pub metrics: Value,
}

impl Fingerprint {
    /// The fingerprint of the one training run in `store`.
    pub fn of_store(store: &Path) -> std::result::Result<Fingerprint, String> {
        let runs = train_runs(store);
        match runs.as_slice() {
            [dir] => Fingerprint::of_run(dir),
            _ => Err(format!(
                "{} holds {} training runs, not one",
                store.display(),
                runs.len()
            )),
        }
    }

    /// The fingerprint of the training run in `dir`.
    pub fn of_run(dir: &Path) -> std::result::Result<Fingerprint, String> {
        let read = |name: &str| -> std::result::Result<Value, String> {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
        };
        let mut result = read("result.json")?;
        let weights_sha256 = result
            .get("weights_sha256")
            .and_then(Value::as_str)
            .ok_or("result.json has no weights_sha256 (a binary before it was recorded?)")?
            .to_string();
        strip_times(&mut result);
        let mut metrics = read("metrics.json")?;
        strip_times(&mut metrics);
        Ok(Fingerprint {
            weights_sha256,
            result,
            metrics,
        })
    }

    /// What differs from `other`, in words, or `None`.
    pub fn difference(&self, other: &Fingerprint) -> Option<String> {
        if self.weights_sha256 != other.weights_sha256 {
            Some(format!(
                "final weights differ (digest {} against {})",
                &self.weights_sha256[..12.min(self.weights_sha256.len())],
                &other.weights_sha256[..12.min(other.weights_sha256.len())]
            ))
        } else if self.result != other.result {
            Some("result.json differs".into())
        } else if self.metrics != other.metrics {
            Some("metrics.json differs".into())
        } else {
            None
        }
    }
}

/// The `train-*` run directories of `store`, sorted.
pub fn train_runs(store: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(store)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("train-"))
                })
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    runs
}

/// Removes every wall-clock field (`elapsed_seconds`, `wall_seconds`) at any depth.
fn strip_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("elapsed_seconds");
            map.remove("wall_seconds");
            map.values_mut().for_each(strip_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// Copies the directory tree `from` to `to` (which must not exist).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}

/// Every regular file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
