//! Processes ended abruptly: `kill -9` at a random moment, and an abort at a random write.

use std::path::Path;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use crate::process::Fingerprint;
use crate::{Error, Harness, Reference, Result, Row};

/// SIGABRT, what `results::faults`'s `return(abort)` ends a process with.
const SIGABRT: i32 = 6;

/// `kill -9` at a uniformly random moment of the undisturbed run's duration, then the same
/// command again.
pub fn at_random_moments(
    h: &Harness,
    reference: &Reference,
    n: usize,
    rng: &mut StdRng,
) -> Result<Row> {
    let mut row = Row::new(
        "`kill -9` at a random moment (loading data, training, writing checkpoints or results)",
    );
    let span = reference.seconds.as_secs_f64();
    for i in 0..n {
        row.trials += 1;
        let store = h.fresh(&format!("kill-{i}"))?;
        let at = Duration::from_secs_f64(rng.random_range(0.0..span));
        let first = h.train(&store, reference.seed).run_killed_after(Some(at))?;
        if first.timed_out {
            row.injected += 1;
        } else if !first.success() {
            row.lose(format!(
                "trial {i}: failed before the kill: {}",
                first.summary()
            ));
            continue;
        }
        resume_and_compare(h, &store, reference, &mut row, &format!("trial {i}"))?;
    }
    Ok(row)
}

/// How many times a run passes each fault point: (`write`, `checkpoint`).
pub fn count_fault_points(h: &Harness, seed: u64) -> Result<(usize, usize)> {
    let store = h.fresh("count-fault-points")?;
    let exit = h
        .train(&store, seed)
        .failpoints("write=return(count);checkpoint=return(count)")
        .run()?;
    if !exit.success() {
        return Err(Error::Reference(exit.summary()));
    }
    let count = |p: &str| {
        exit.stderr
            .lines()
            .filter(|l| l.trim() == format!("fault point {p}"))
            .count()
    };
    let (writes, checkpoints) = (count("write"), count("checkpoint"));
    if writes + checkpoints == 0 {
        return Err(Error::NoFaultPoints(h.rewind.clone()));
    }
    Ok((writes, checkpoints))
}

/// The `FAILPOINTS` value that acts at the `hit`-th pass (from 0) of one of the run's
/// fault points, numbered over both: writes first, then checkpoints.
pub fn nth_fault_point(hit: usize, writes: usize, action: &str) -> String {
    let (point, skip) = if hit < writes {
        ("write", hit)
    } else {
        ("checkpoint", hit - writes)
    };
    if skip == 0 {
        format!("{point}=return({action})")
    } else {
        format!("{point}={skip}*off->return({action})")
    }
}

/// The process ends (abort, no destructor, as after `kill -9`) at a random write of a result,
/// metrics or identity file, or of a checkpoint, then the same command again.
pub fn at_writes(h: &Harness, reference: &Reference, n: usize, rng: &mut StdRng) -> Result<Row> {
    let (writes, checkpoints) = count_fault_points(h, reference.seed)?;
    let mut row = Row::new(format!(
        "process ended at a random one of a run's {writes} file writes and {checkpoints} \
         checkpoint writes (between temporary and rename)"
    ));
    for i in 0..n {
        row.trials += 1;
        let store = h.fresh(&format!("abort-{i}"))?;
        let hit = rng.random_range(0..writes + checkpoints);
        let spec = nth_fault_point(hit, writes, "abort");
        let first = h.train(&store, reference.seed).failpoints(&spec).run()?;
        if first.signal == Some(SIGABRT) {
            row.injected += 1;
        } else if !first.success() {
            row.lose(format!(
                "trial {i} ({spec}): failed without the fault: {}",
                first.summary()
            ));
            continue;
        }
        resume_and_compare(
            h,
            &store,
            reference,
            &mut row,
            &format!("trial {i} ({spec})"),
        )?;
    }
    Ok(row)
}

/// Runs the same command again in `store` and counts it recovered when the run ends as the
/// reference did.
pub(crate) fn resume_and_compare(
    h: &Harness,
    store: &Path,
    reference: &Reference,
    row: &mut Row,
    what: &str,
) -> Result<()> {
    let again = h.train(store, reference.seed).run()?;
    if !again.success() {
        row.lose(format!("{what}: the run again failed: {}", again.summary()));
        return Ok(());
    }
    match Fingerprint::of_store(store) {
        Err(e) => row.lose(format!("{what}: {e}")),
        Ok(f) => match f.difference(&reference.fingerprint) {
            Some(d) => row.lose(format!("{what}: {d}")),
            None => row.recovered += 1,
        },
    }
    Ok(())
}
