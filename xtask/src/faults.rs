//! `cargo xtask faults`: the fault-injection harness (`crates/faults`) at its full counts
//! against a release `rewind` built with the fault points, its table written into README.md.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

/// Markers around the part of README.md that `cargo xtask faults` rewrites.
const START: &str = "<!-- cargo xtask faults: start -->";
const END: &str = "<!-- cargo xtask faults: end -->";

#[derive(Args)]
pub struct Faults {
    /// Directory holding `mnist/` (default: $REWIND_DATA_DIR, then ../shared/data beside the
    /// repository).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Scratch space: the trials work in its `rewind-faults/` (default: a temporary directory,
    /// removed afterwards).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Use this `rewind` (built with `--features failpoints`) instead of building one.
    #[arg(long)]
    rewind: Option<PathBuf>,
    /// Seed of every random choice of the trials.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Trials of each kill kind and of corruption (default: the full counts, 100).
    #[arg(long)]
    trials: Option<usize>,
    /// Malformed inputs (default 300).
    #[arg(long)]
    malformed: Option<usize>,
    /// Full-disk trials (default 20).
    #[arg(long)]
    disk_full: Option<usize>,
    /// Print the table without rewriting README.md.
    #[arg(long)]
    no_write: bool,
}

pub fn run(root: &Path, args: Faults) -> Result<()> {
    let rewind = match args.rewind {
        Some(path) => path,
        None => crate::shared::build_release_rewind(root, Some("failpoints"))?,
    };
    let data_dir = args
        .data_dir
        .or_else(|| std::env::var_os("REWIND_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| root.join("../shared/data"));
    if !data_dir.join("mnist").is_dir() {
        bail!(
            "{} holds no mnist/: pass --data-dir (the harness trains on real MNIST)",
            data_dir.display()
        );
    }
    let scratch = tempdir(args.work)?;
    let mut counts = faults::Counts::FULL;
    if let Some(n) = args.trials {
        counts.kills_at_random = n;
        counts.kills_at_writes = n;
        counts.corruptions = n;
    }
    counts.malformed = args.malformed.unwrap_or(counts.malformed);
    counts.disk_full = args.disk_full.unwrap_or(counts.disk_full);
    let harness = faults::Harness {
        seed: args.seed,
        ..faults::Harness::new(rewind, data_dir, scratch.path.clone())
    };
    eprintln!(
        "running the fault trials ({counts:?}) in {}",
        scratch.path.display()
    );
    let report = harness.run(&counts)?;
    let section = section(&harness, &report);
    println!("{section}");
    if !args.no_write {
        crate::shared::replace_section(&root.join("README.md"), START, END, &section, false)?;
        println!("wrote README.md");
    }
    if report.lost() > 0 {
        bail!(
            "{} trials lost something:\n{}",
            report.lost(),
            report.failures()
        );
    }
    Ok(())
}

/// The README's section: what ran, the table, what the refusals said.
fn section(harness: &faults::Harness, report: &faults::Report) -> String {
    format!(
        "{START}\n\
         Written by `cargo xtask faults` (seed {seed}, {minutes:.1} minutes) against a release \
         `rewind` with the fault points. Each trial is a real run: Lenet on MNIST, {steps} \
         steps, a checkpoint every {every}, in an experiment store, disturbed once, then the \
         same command again. *Recovered*: it ended as the undisturbed run (the digest of its \
         final weights, its result and its metrics equal, times aside). *Refused*: one `error:` \
         line naming the damaged file or its run, no panic, nothing finished lost. *Lost*: \
         anything else.\n\n\
         {table}\n\
         What the refusals said (a few of each kind):\n\n\
         {messages}\
         {END}\n",
        seed = harness.seed,
        minutes = report.seconds / 60.0,
        steps = report.steps,
        every = report.checkpoint_every,
        table = report.markdown(),
        messages = report.messages(3),
    )
}

/// A scratch directory: the given one (kept), or a fresh one under the system's temporary
/// directory (removed on drop).
struct Scratch {
    path: PathBuf,
    remove: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn tempdir(given: Option<PathBuf>) -> Result<Scratch> {
    match given {
        Some(given) => {
            // A directory of its own inside the given one: the trials empty their folders.
            let path = given.join("rewind-faults");
            std::fs::create_dir_all(&path).with_context(|| format!("{}", path.display()))?;
            Ok(Scratch {
                path,
                remove: false,
            })
        }
        None => {
            let path = std::env::temp_dir().join(format!("rewind-faults-{}", std::process::id()));
            std::fs::create_dir_all(&path).with_context(|| format!("{}", path.display()))?;
            Ok(Scratch { path, remove: true })
        }
    }
}
