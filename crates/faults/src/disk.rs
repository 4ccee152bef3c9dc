//! A full disk at a random point of a run, in a store that already holds a finished run.
//!
//! Where this process may mount a tmpfs (root), the store lies on a small one and is filled to
//! a random number of free bytes; elsewhere the fault point `return(enospc)` fails a random
//! write as a full disk would. Then: the run must stop with one message that says the disk is
//! full and what to free, the finished run must be intact, and once space is freed the same
//! command must end as the undisturbed run.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng;
use rand::rngs::StdRng;

use crate::process::{Exit, Fingerprint, copy_tree, files_under};
use crate::{Harness, Reference, Result, Row, io};

/// Init seed of the run that meets the full disk.
const SEED: u64 = 2;

pub fn full(h: &Harness, finished: &Reference, n: usize, rng: &mut StdRng) -> Result<Row> {
    let target = h.reference(SEED)?;
    let mount = h.work.join("tmpfs");
    let run_bytes: u64 = files_under(&target.store)
        .iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum();
    let tmpfs = Tmpfs::mount(&mount, 2 * run_bytes + (8 << 20));
    let mut row = Row::new(match &tmpfs {
        Some(_) => "disk full at a random point (a tmpfs filled to a random free size), \
                    beside a finished run"
            .to_string(),
        None => "disk full at a random write (fault point returning ENOSPC; no tmpfs \
                 could be mounted), beside a finished run"
            .to_string(),
    });
    let (writes, checkpoints) = match tmpfs {
        Some(_) => (0, 0),
        None => crate::kills::count_fault_points(h, SEED)?,
    };
    for i in 0..n {
        row.trials += 1;
        let store = match &tmpfs {
            Some(t) => t.dir.join(format!("store-{i}")),
            None => h.work.join(format!("disk-{i}")),
        };
        if store.exists() {
            std::fs::remove_dir_all(&store).map_err(|e| io(&store, e))?;
        }
        copy_tree(&finished.store, &store)?;
        let filler = store.with_file_name(format!("filler-{i}"));
        let exit: Exit = match &tmpfs {
            Some(t) => {
                let free = rng.random_range(0..run_bytes);
                t.fill_to(&filler, free)?;
                h.train(&store, SEED).run()?
            }
            None => {
                let hit = rng.random_range(0..writes + checkpoints);
                let spec = crate::kills::nth_fault_point(hit, writes, "enospc");
                h.train(&store, SEED).failpoints(spec).run()?
            }
        };
        let _ = std::fs::remove_file(&filler);
        // Every problem of the trial; it is lost once, however many it had.
        let mut problems: Vec<String> = Vec::new();
        if !exit.success() {
            row.injected += 1;
            let line = exit.error_lines().first().map(|l| l.to_string());
            let says_full = line.as_deref().is_some_and(|l| {
                l.contains("No space left") && l.contains("free") && !exit.panicked()
            });
            if let Some(line) = &line {
                row.keep(line);
            }
            if !exit.clear_refusal() || !says_full {
                problems.push(format!(
                    "not one message saying what to free: {}",
                    exit.summary()
                ));
            }
            let again = h.train(&store, SEED).run()?;
            if !again.success() {
                problems.push(format!(
                    "with space freed, the run failed: {}",
                    again.summary()
                ));
            }
        }
        // Room enough or not, the run must end as the undisturbed one...
        if problems.is_empty() && !holds(&store, &target.fingerprint) {
            problems.push("the run did not end as the undisturbed one".into());
        }
        // ...and the finished run beside it must be intact.
        if !holds(&store, &finished.fingerprint) {
            problems.push("the finished run beside it was lost".into());
        }
        if problems.is_empty() {
            row.recovered += 1;
        } else {
            row.lose(format!("trial {i}: {}", problems.join("; ")));
        }
        let _ = std::fs::remove_dir_all(&store);
    }
    Ok(row)
}

/// Whether `store` holds a run that ended as `fingerprint` says.
fn holds(store: &Path, fingerprint: &Fingerprint) -> bool {
    crate::process::train_runs(store)
        .into_iter()
        .filter_map(|d| Fingerprint::of_run(&d).ok())
        .any(|f| f.difference(fingerprint).is_none())
}

/// A tmpfs mounted for the trials, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` at `dir`, or `None` where this process may not (or
    /// `REWIND_FAULTS_NO_TMPFS` is set: the fault-point path, as on a machine without root).
    fn mount(dir: &Path, bytes: u64) -> Option<Tmpfs> {
        if std::env::var_os("REWIND_FAULTS_NO_TMPFS").is_some() {
            return None;
        }
        let _ = Command::new("umount").arg(dir).output();
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes}"))
            .arg("tmpfs")
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Free bytes, from `df`.
    fn free(&self) -> Result<u64> {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.dir)
            .output()
            .map_err(|e| io(&self.dir, e))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .next()
            .unwrap_or(0))
    }

    /// Writes `filler` until about `free` bytes are left.
    fn fill_to(&self, filler: &Path, free: u64) -> Result<()> {
        let fill = self.free()?.saturating_sub(free);
        let file = std::fs::File::create(filler).map_err(|e| io(filler, e))?;
        // A tmpfs allocates on write: set_len would leave a sparse file.
        let mut w = std::io::BufWriter::new(file);
        let block = vec![0u8; 1 << 16];
        let mut left = fill;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            if std::io::Write::write_all(&mut w, &block[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = std::io::Write::flush(&mut w);
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
    }
}
