//! What a run is: a training run ([`TrainSpec`]: recipe, seeds, pruning rule and where its
//! first state comes from) or an interpolation of two ([`PairSpec`]), and what each records.

use burn::module::{Module, ModuleDisplay};
use lmc::BnPolicy;
use results::{Alignment, JobKind, LayerDensity, RunId, RunKind};
use serde::{Deserialize, Serialize};
use sparsity::{PruneRule, Sparse};
use train::{EvalConfig, MetricRecord, Recipe, TrainState};

/// What the optimiser state of a branch is at its first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerAtRewind {
    /// A fresh optimiser (empty momentum / Adam moments), as the paper's public code does
    /// after rewinding.
    #[default]
    Fresh,
    /// The parent's optimiser state at the branch step.
    Rewound,
}

impl OptimizerAtRewind {
    /// A branch's first state: `masked` (its mask on the weights it starts from, applied once
    /// more here) at the parent's step, with the parent's optimiser state or a fresh one of
    /// `recipe`. The runner's branches and the parity cases' IMP round both start here.
    pub fn branch_start<M: Module + ModuleDisplay>(
        self,
        masked: Sparse<M>,
        parent: TrainState<Sparse<M>>,
        recipe: &Recipe,
    ) -> TrainState<Sparse<M>> {
        let optimizer = match self {
            OptimizerAtRewind::Fresh => recipe.optimizer.init(),
            OptimizerAtRewind::Rewound => parent.optimizer,
        };
        TrainState {
            model: masked.apply(),
            optimizer,
            step: parent.step,
            metrics: vec![],
        }
    }
}

/// Which mask a branch trains with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mask")]
pub enum MaskSource {
    /// The parent's own mask (all ones for a dense parent).
    Parent,
    /// Global magnitude pruning of `fraction` of the surviving weights of `run`'s final state.
    Prune { run: RunId, fraction: f64 },
    /// A random mask with the per-layer densities of `Prune { run, fraction }`.
    RandomLike {
        run: RunId,
        fraction: f64,
        seed: u64,
    },
}

/// Which weights a branch starts from (before its mask is applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "weights")]
pub enum WeightSource {
    /// The parent's weights and BN buffers at the branch step.
    Parent,
    /// Freshly initialised weights from `seed` (the random reinitialisation baseline).
    Reinit { seed: u64 },
}

/// Where a training run's first state comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum Start {
    /// The seeded initialisation at step 0.
    Init,
    /// The state of run `parent` at step `step`, changed as described.
    Branch {
        parent: RunId,
        step: u64,
        #[serde(flatten)]
        mask: MaskSource,
        #[serde(flatten)]
        weights: WeightSource,
        optimizer: OptimizerAtRewind,
    },
}

/// Everything that determines a training run: its identity in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub recipe: Recipe,
    pub init_seed: u64,
    pub data_seed: u64,
    pub eval: EvalConfig,
    pub rule: PruneRule,
    pub start: Start,
}

/// The interpolation of two runs' states at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSpec {
    pub a: RunId,
    pub b: RunId,
    pub step: u64,
    pub points: usize,
    pub bn_policy: BnPolicy,
    /// Evaluation subsets and batch size of the curve.
    pub eval: EvalConfig,
    /// Measure the train error too (off for the many curves of "throughout training").
    pub with_train_error: bool,
    /// Weight matching before interpolation (absent from the identity when none, so the
    /// paper's pairs keep their store entries).
    #[serde(default, skip_serializing_if = "Alignment::is_none")]
    pub align: Alignment,
}

/// One unit of work in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "job")]
#[allow(clippy::large_enum_variant)] // a plan holds a few hundred jobs: size does not matter
pub enum Job {
    Train(TrainSpec),
    Pair(PairSpec),
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Train(_) => JobKind::Train,
            Job::Pair(_) => JobKind::Pair,
        }
    }

    /// Runs that must be finished before this one starts.
    pub fn dependencies(&self) -> Vec<RunId> {
        match self {
            Job::Train(spec) => match &spec.start {
                Start::Init => vec![],
                Start::Branch { parent, mask, .. } => {
                    let mut deps = vec![parent.clone()];
                    match mask {
                        MaskSource::Parent => {}
                        MaskSource::Prune { run, .. } | MaskSource::RandomLike { run, .. } => {
                            deps.push(run.clone())
                        }
                    }
                    deps
                }
            },
            Job::Pair(p) => vec![p.a.clone(), p.b.clone()],
        }
    }
}

/// What a finished training run records in `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    pub total_steps: u64,
    pub start_step: u64,
    /// The final evaluation.
    pub last: MetricRecord,
    /// Fraction of prunable weights kept.
    pub density: f64,
    pub layers: Vec<LayerDensity>,
    pub wall_seconds: f64,
    /// [`train::numerics`] of the process that finished it: the runtime, and on the CPU the
    /// version of the kernels' summation orders (older results name the runtime alone).
    pub backend: String,
    /// [`nets::params::values_sha256`] of the final weights, masks and BN statistics: equal
    /// for two runs exactly when they ended as the same network (absent in results written
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

/// What kind of run a job is, for time accounting and progress output.
pub fn run_kind(job: &Job) -> RunKind {
    match job {
        Job::Pair(_) => RunKind::Interpolation,
        Job::Train(s) => match &s.start {
            Start::Init => RunKind::Dense,
            Start::Branch {
                weights: WeightSource::Reinit { .. },
                ..
            } => RunKind::Reinit,
            Start::Branch { mask, .. } => match mask {
                MaskSource::Parent => RunKind::Child,
                MaskSource::Prune { .. } => RunKind::Imp,
                MaskSource::RandomLike { .. } => RunKind::RandomPrune,
            },
        },
    }
}

/// A short label of a job for progress output.
pub fn describe(job: &Job) -> String {
    match job {
        Job::Train(s) => {
            let what = match &s.start {
                Start::Init => "dense".to_string(),
                Start::Branch { step, .. } => format!("{} from step {step}", run_kind(job)),
            };
            format!(
                "{} {what} (init {}, data {})",
                s.recipe.name, s.init_seed, s.data_seed
            )
        }
        Job::Pair(p) => format!("interpolation at step {}", p.step),
    }
}
