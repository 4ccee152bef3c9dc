//! Step-based training of image classifiers, the way the paper's experiments need it.
//!
//! * [`Steps`]: lengths as `500it`, `2ep` or `120ep50it`, resolved against the number of
//!   iterations per epoch.
//! * [`LrSchedule`], [`OptimizerConfig`], [`Recipe`]: what a run trains (network, data,
//!   length, optimiser, schedule); the paper's Table 1 recipes are entries of the
//!   `experiments` crate's registry. The learning rate is a pure function of the step, so a
//!   run rewound to step k continues the schedule exactly as from k.
//! * [`Trainer`]: a custom loop (no `Learner`) with hooks after every optimiser step (the
//!   `sparsity` crate re-applies masks there), checkpoints of the full state (weights, BN
//!   buffers, optimiser state, step) written atomically, and resumption that is bit-identical
//!   to an uninterrupted run on the CPU backend.
//! * [`evaluate`]: loss and accuracy over a dataset split.

mod backend;
mod checkpoint;
mod divergence;
mod error;
mod eval;
mod metrics;
mod recipe;
mod schedule;
mod steps;
mod threads;
pub mod trainer;

pub use backend::{
    DEVICE_ENV, backend_name, check_device, cpu_simd_level, default_device, devices, is_gpu_build,
    numerics, parse_device, runtime_name, selected_device,
};
pub use checkpoint::{Checkpoint, CheckpointStore, RunningTotals, claim_toml, write_atomic};
pub use divergence::Divergence;
pub use error::{Error, Result};
pub use eval::{EvalResult, EvalSet, evaluate};
pub use metrics::{MetricRecord, Metrics};
pub use recipe::{DataConfig, OptimizerConfig, Recipe};
pub use schedule::LrSchedule;
pub use steps::Steps;
pub use threads::{available_threads, compute_here};
pub use trainer::{
    EvalConfig, NoHooks, RunOutcome, TrainConfig, TrainData, TrainHooks, TrainState, Trainer,
    with_device_rng,
};

#[cfg(test)]
mod tests;
