//! Named fault points for the fault-injection harness (`cargo xtask faults`).
//!
//! With the `failpoints` feature, a process that calls [`Scenario::from_env`] reads the
//! `FAILPOINTS` variable of the [`fail`] crate (`name=action;...`) and each [`inject`] site
//! acts on it: `return(abort)` ends the process there at once (no destructor runs, as after
//! `kill -9`), `return(enospc)` makes the write fail as on a full disk, `return(count)` prints
//! `fault point NAME` to stderr and goes on (how the harness counts a run's writes).
//! `N*off->return(abort)` skips the first N hits. Without the feature both compile to nothing.
//!
//! The points: [`WRITE`] in [`crate::write_atomic`] (every result, metrics, identity and
//! summary file), after the temporary file is written and before it is renamed into place;
//! [`CHECKPOINT`] in a checkpoint's directory, after its weights and optimiser state are written
//! and before its checksums and rename.

/// Every atomic write, between the temporary file and its rename.
pub const WRITE: &str = "write";
/// Every checkpoint, between its tensors and its `state.json`.
pub const CHECKPOINT: &str = "checkpoint";

/// The `FAILPOINTS` set-up of one process, kept for its lifetime.
#[must_use = "the fault points are configured while the scenario lives"]
pub struct Scenario {
    #[cfg(feature = "failpoints")]
    _scenario: fail::FailScenario<'static>,
}

impl Scenario {
    /// Reads `FAILPOINTS` (a no-op without the `failpoints` feature). A malformed value stops
    /// the process with the fail crate's message: only the harness sets it.
    pub fn from_env() -> Scenario {
        Scenario {
            #[cfg(feature = "failpoints")]
            _scenario: fail::FailScenario::setup(),
        }
    }
}

/// The fault configured at `point`, if any: an error to return instead of writing, or `None`
/// to go on. May end the process.
#[cfg(feature = "failpoints")]
pub fn inject(point: &str) -> Option<std::io::Error> {
    fail::eval(point, |arg| match arg.as_deref() {
        Some("enospc") => Some(std::io::Error::from_raw_os_error(28)),
        Some("count") => {
            eprintln!("fault point {point}");
            None
        }
        _ => std::process::abort(),
    })
    .flatten()
}

/// The fault configured at `point`: none without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn inject(_point: &str) -> Option<std::io::Error> {
    None
}
