//! The CPU threads a training run computes on.
//!
//! The kernels' parallel loops run on rayon. Called from a thread that is not one of rayon's
//! workers, each loop is handed to the global pool and the caller sleeps until it is done:
//! two thread wake-ups per kernel call, thousands per step of a narrow network, and runs
//! trained side by side queue on the same pool. [`compute_here`] makes the calling thread
//! the first worker of a pool of its own instead: with one thread every loop runs inline on
//! the caller, with more the caller works beside its helpers, and concurrent runs never share
//! workers. Results do not depend on it: every kernel gives the same bits on any number of
//! threads.

use std::cell::RefCell;
use std::num::NonZeroUsize;

thread_local! {
    /// The pool [`compute_here`] made this thread worker 0 of: dropped when the thread ends,
    /// which stops its helper threads.
    static OWN_POOL: RefCell<Option<rayon::ThreadPool>> = const { RefCell::new(None) };
}

/// The threads the machine offers the computation: `RAYON_NUM_THREADS` where set (as rayon
/// reads it), else the available parallelism.
pub fn available_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// Makes the calling thread worker 0 of a rayon pool of its own with `threads` threads in all
/// (itself and `threads - 1` helpers), so that every parallel loop it runs from now on runs
/// there. Returns whether it did: a thread that already is a rayon worker keeps its pool.
///
/// The pool is kept with the thread and dropped when the thread ends, which stops its
/// helpers; the thread stays a worker of it until then (rayon cannot hand a thread back), so
/// call it once per thread that trains: a worker thread of an executor, or the main thread of
/// a command that trains. With `REWIND_GLOBAL_POOL` set (to anything but `0`) it does nothing
/// and every run uses rayon's global pool, as before (for comparing the two).
pub fn compute_here(threads: usize) -> bool {
    let global = std::env::var("REWIND_GLOBAL_POOL").is_ok_and(|v| v != "0");
    if rayon::current_thread_index().is_some() || global {
        return false;
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("rewind-compute-{i}"))
        .use_current_thread()
        .build()
    {
        Ok(pool) => {
            // Kept until the thread ends: dropping it now would stop the helpers while this
            // thread still hands them work.
            OWN_POOL.with(|own| *own.borrow_mut() = Some(pool));
            true
        }
        Err(e) => {
            tracing::warn!("no rayon pool of this thread's own ({e}); using the global pool");
            false
        }
    }
}
