//! Fault-injection trials against a `rewind` binary, on real runs on real data.
//!
//! Each trial starts from the harness's recipe (Lenet on MNIST, a few hundred steps, a
//! checkpoint every [`Harness::checkpoint_every`] steps, in an experiment store), injects one
//! fault, lets `rewind` carry on as a user would (run the same command again), and classifies
//! what happened against a run nothing disturbed:
//!
//! * **recovered**: the command succeeded and the run ended as the same network (its
//!   `weights_sha256` (a digest of every tensor's values), its result and its metrics, times
//!   aside, equal to the undisturbed run's);
//! * **refused**: the command failed with one `error:` line that names what is wrong, no panic,
//!   and nothing finished was lost;
//! * **lost**: anything else (a different network, a finished run gone, a panic, a silent load
//!   of a damaged file, a second trainer of one run).
//!
//! The binary must be built with the `failpoints` feature for the kills at write points and
//! the full-disk hook (`results::faults`); `cargo xtask faults` builds it so and runs the full
//! counts, the test suite runs [`Counts::QUICK`].

mod concurrent;
mod corrupt;
mod disk;
mod fuzz;
mod kills;
mod process;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

pub use process::{Exit, Fingerprint, copy_tree, train_runs};
pub use report::{Report, Row};

/// What went wrong in the harness itself (not a finding about `rewind`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the undisturbed run failed, so nothing can be compared with it: {0}")]
    Reference(String),
    #[error(
        "{0} has no fault points: build it with `--features failpoints` (cargo xtask faults does)"
    )]
    NoFaultPoints(PathBuf),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How many trials of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// `kill -9` at a uniformly random moment of a run.
    pub kills_at_random: usize,
    /// The process ended at a random write (`abort` at a fault point): a result, metrics or
    /// identity file between its temporary and its rename, or a checkpoint between its
    /// tensors and its checksums.
    pub kills_at_writes: usize,
    /// One file flipped or truncated at a random offset.
    pub corruptions: usize,
    /// Processes working on one store at once, with `runs gc` beside them.
    pub writers: usize,
    /// Distinct runs the writers share (each writer asks for all of them, in its own order).
    pub shared_runs: usize,
    /// Runs that meet a full disk at a random point.
    pub disk_full: usize,
    /// Malformed configuration files and command lines.
    pub malformed: usize,
}

impl Counts {
    /// The counts of `cargo xtask faults`.
    pub const FULL: Counts = Counts {
        kills_at_random: 100,
        kills_at_writes: 100,
        corruptions: 100,
        writers: 8,
        shared_runs: 6,
        disk_full: 20,
        malformed: 300,
    };
    /// The quick mode of the test suite.
    pub const QUICK: Counts = Counts {
        kills_at_random: 10,
        kills_at_writes: 10,
        corruptions: 10,
        writers: 8,
        shared_runs: 3,
        disk_full: 3,
        malformed: 20,
    };
}

/// Where and with what the trials run.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The `rewind` binary (built with the `failpoints` feature).
    pub rewind: PathBuf,
    /// Holds `mnist/` (copied for the dataset corruptions; never written).
    pub data_dir: PathBuf,
    /// Scratch space; each trial works in a directory of its own under it.
    pub work: PathBuf,
    /// Seed of every random choice (moments, offsets, files, orders).
    pub seed: u64,
    /// Training length of the recipe.
    pub steps: u64,
    /// Checkpoint interval of the recipe (`--keep`), the granularity of resumption.
    pub checkpoint_every: u64,
}

impl Harness {
    /// A harness for `rewind` on `data_dir`, working under `work`, with the default recipe
    /// (300 steps, a checkpoint every 50).
    pub fn new(rewind: PathBuf, data_dir: PathBuf, work: PathBuf) -> Harness {
        Harness {
            rewind,
            data_dir,
            work,
            seed: 1,
            steps: 300,
            checkpoint_every: 50,
        }
    }

    /// Every kind of trial, `counts` of each; the report's rows in order.
    pub fn run(&self, counts: &Counts) -> Result<Report> {
        let started = Instant::now();
        std::fs::create_dir_all(&self.work).map_err(|e| io(&self.work, e))?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let reference = self.reference(1)?;
        let rows = vec![
            kills::at_random_moments(self, &reference, counts.kills_at_random, &mut rng)?,
            kills::at_writes(self, &reference, counts.kills_at_writes, &mut rng)?,
            corrupt::files(self, &reference, counts.corruptions, &mut rng)?,
            concurrent::writers(self, counts.writers, counts.shared_runs, &mut rng)?,
            disk::full(self, &reference, counts.disk_full, &mut rng)?,
            fuzz::malformed(self, &reference, counts.malformed, &mut rng)?,
        ];
        Ok(Report {
            rows,
            seconds: started.elapsed().as_secs_f64(),
            steps: self.steps,
            checkpoint_every: self.checkpoint_every,
        })
    }

    /// The undisturbed run of init seed `seed`, in a store of its own.
    pub fn reference(&self, seed: u64) -> Result<Reference> {
        let store = self.fresh(&format!("reference-{seed}"))?;
        let started = Instant::now();
        let exit = self.train(&store, seed).run()?;
        let seconds = started.elapsed();
        if !exit.success() {
            return Err(Error::Reference(exit.summary()));
        }
        let fingerprint = Fingerprint::of_store(&store).map_err(Error::Reference)?;
        Ok(Reference {
            store,
            fingerprint,
            seconds,
            seed,
        })
    }

    /// The recipe's command run again in `store`, as after each fault: one trial, recovered
    /// when the run ends as `reference`.
    pub fn rerun_and_compare(&self, store: &Path, reference: &Reference) -> Result<Row> {
        let mut row = Row::new("the same command again");
        row.trials = 1;
        kills::resume_and_compare(self, store, reference, &mut row, "rerun")?;
        Ok(row)
    }

    /// An empty directory `name` under the work directory.
    pub(crate) fn fresh(&self, name: &str) -> Result<PathBuf> {
        let dir = self.work.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(dir)
    }

    /// The recipe's `rewind train` into `store`.
    pub(crate) fn train(&self, store: &Path, seed: u64) -> process::Invocation {
        let mut args: Vec<String> = vec![
            "--no-download".into(),
            "train".into(),
            "--preset".into(),
            "lenet".into(),
            "--steps".into(),
            format!("{}it", self.steps),
            "--eval-every".into(),
            format!("{}it", self.steps / 3),
            "--test-eval-subset".into(),
            "1000".into(),
            "--train-eval-subset".into(),
            "1000".into(),
            "--init-seed".into(),
            seed.to_string(),
            "--quiet".into(),
            "--store".into(),
            store.display().to_string(),
        ];
        let mut k = self.checkpoint_every;
        while k < self.steps {
            args.extend(["--keep".into(), format!("{k}it")]);
            k += self.checkpoint_every;
        }
        process::Invocation::new(&self.rewind, &self.data_dir, args).within(&self.work)
    }
}

/// A run nothing disturbed.
#[derive(Debug, Clone)]
pub struct Reference {
    pub store: PathBuf,
    pub fingerprint: Fingerprint,
    pub seconds: Duration,
    pub seed: u64,
}
