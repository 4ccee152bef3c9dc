//! Every run the paper's figures need, at a chosen scale, deduplicated across figures, and
//! the results the figures are drawn from.
//!
//! One code path serves every scale and every network: [`ModelSetup::new`] reads a network's
//! registry entry and the scale's cut of it (training length, width, seeds, k values,
//! pruning rounds, evaluation subsets) and writes every cut down in words, so that the report
//! can say what was run. Planning needs the length of an epoch ([`EpochLength`]), never the
//! data itself.

mod beyond;
mod collect;
mod dense;
mod imp;
mod layerwise;
mod length;
mod levels;
mod setup;
mod sparse;

use std::time::Instant;

pub use results::{Figure, ReproduceConfig, Scale};
use serde::{Deserialize, Serialize};

pub use self::beyond::{AcrossInitsRun, AlignedRuns, BN_REESTIMATE_BATCHES};
pub use self::collect::collect;
pub use self::length::LengthCheckRuns;
pub use self::levels::LevelLinkRun;
pub use self::setup::ModelSetup;
use crate::Result;
use crate::executor::{Execution, Executor, Local, Submission};
use crate::imp::ImpRuns;
use crate::instability::PairRuns;
use crate::models::ModelFactory;
use crate::registry::Entry;
pub use crate::runs::{EpochLength, PublishedSizes};
use crate::runs::{Plan, Runner};
use results::{Branch, Results};
use store::Store;

/// The runs of one network's experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRuns {
    pub setup: ModelSetup,
    pub dense_pairs: Vec<PairRuns>,
    /// One IMP experiment per rewind k and init seed.
    pub imp: Vec<ImpAt>,
    /// The sparse instability analyses, one per rewind k and branch that was trained there.
    pub sparse_pairs: Vec<SparseRuns>,
    /// The dense run at the scale's length and the same run at a multiple of it.
    #[serde(default)]
    pub length_check: Option<LengthCheckRuns>,
    /// The dense and IMP analyses again with alignment ("Beyond the paper").
    #[serde(default)]
    pub aligned: Vec<AlignedRuns>,
    /// Interpolations of the first init's dense run with another init's, without and with
    /// alignment.
    #[serde(default)]
    pub across_inits: Vec<AcrossInitsRun>,
    /// Interpolations between consecutive IMP levels (`--only levels`).
    #[serde(default)]
    pub level_links: Vec<LevelLinkRun>,
    /// IMP pruning every layer within itself (`--only layerwise`).
    #[serde(default)]
    pub layerwise: Vec<ImpAt>,
}

/// One IMP experiment: rewound to `k`, from init `init_seed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpAt {
    pub k: u64,
    pub init_seed: u64,
    pub runs: ImpRuns,
}

/// The sparse instability pairs of one branch's subnetworks rewound to `k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseRuns {
    pub k: u64,
    pub branch: Branch,
    pub pairs: Vec<PairRuns>,
}

/// Plans every run of `config` for `networks` (nothing is trained, no data is read). The
/// paper's networks are `paper::ENTRIES` (`paper::plan` looks them up by the names in
/// `config`); a network of your own is an [`Entry`] like theirs (with `paper: None`).
pub fn plan_networks(
    config: &ReproduceConfig,
    networks: &[&Entry],
    epochs: &dyn EpochLength,
) -> Result<(Plan, Vec<ModelRuns>)> {
    let mut plan = Plan::new();
    let mut models = Vec::new();
    for &entry in networks {
        let setup = ModelSetup::new(entry, config, epochs)?;
        models.push(plan_model(config, setup, &mut plan)?);
    }
    if plan.is_empty() {
        return Err(crate::Error::Invalid(
            "nothing to run: no requested figure needs a run of these networks".into(),
        ));
    }
    Ok((plan, models))
}

fn plan_model(config: &ReproduceConfig, setup: ModelSetup, plan: &mut Plan) -> Result<ModelRuns> {
    let instability = dense::instability_config(config, &setup);
    let mut dense_pairs = Vec::new();
    let mut aligned = Vec::new();
    let mut across_inits = Vec::new();
    if config.wants(Figure::needs_dense) {
        let parents = dense::parents(&setup, plan)?;
        dense_pairs = instability.plan(plan, &parents, setup.design.total_steps)?;
        if config.wants(Figure::needs_alignment) {
            (across_inits, aligned) = beyond::plan_dense(&setup, &instability, &parents, plan)?;
        }
    }
    let mut sparse_aligned = if config.wants(Figure::needs_alignment) {
        beyond::sparse_analyses(&setup)
    } else {
        vec![]
    };
    let (mut imp, mut level_links, mut sparse_pairs) = (vec![], vec![], vec![]);
    if config.wants(Figure::needs_imp) {
        imp = self::imp::plan(&setup, plan)?;
        if config.figures.contains(&Figure::Levels) {
            for at in &imp {
                level_links.extend(levels::plan(&setup, at, plan)?);
            }
        }
        if config.wants(Figure::needs_sparse) {
            sparse_pairs = sparse::plan(&setup, &instability, &imp, &mut sparse_aligned, plan)?;
        }
    }
    let length_check = length::plan(config, &setup, plan)?;
    let layerwise = if config.figures.contains(&Figure::Layerwise) {
        layerwise::plan(&setup, plan)?
    } else {
        vec![]
    };
    aligned.extend(sparse_aligned);
    Ok(ModelRuns {
        setup,
        dense_pairs,
        imp,
        sparse_pairs,
        length_check,
        aligned,
        across_inits,
        level_links,
        layerwise,
    })
}

/// What a reproduction came to.
#[derive(Debug)]
pub enum Outcome {
    /// Every run finished: the results to draw.
    Finished(Box<Results>),
    /// The runs were handed to a scheduler (whose last job renders the report); `planned` is
    /// the size of the whole plan, finished runs included.
    Submitted {
        submission: Submission,
        planned: usize,
    },
}

/// [`run_networks`] in this process: `workers` runs at a time, data and store of `runner`
/// (whose models build `networks`), no progress bar.
pub fn run_networks_here<F: ModelFactory>(
    config: &ReproduceConfig,
    networks: &[&Entry],
    runner: &Runner<F>,
    workers: usize,
) -> Result<Results> {
    match run_networks(
        config,
        networks,
        &runner.data,
        &Local::new(runner, workers),
        &runner.store,
    )? {
        Outcome::Finished(results) => Ok(*results),
        Outcome::Submitted { .. } => Err(crate::Error::Invalid(
            "a local execution submitted its runs".into(),
        )),
    }
}

/// Plans everything `config` needs for `networks` (see [`plan_networks`]), has `executor`
/// bring it to completion, and reads the results back from `store`: the whole of
/// `reproduce` apart from rendering.
pub fn run_networks(
    config: &ReproduceConfig,
    networks: &[&Entry],
    epochs: &dyn EpochLength,
    executor: &dyn Executor,
    store: &Store,
) -> Result<Outcome> {
    let started = Instant::now();
    let (plan, models) = plan_networks(config, networks, epochs)?;
    match executor.execute(&plan, store)? {
        Execution::Finished => Ok(Outcome::Finished(Box::new(collect(
            config, networks, &models, &plan, store, started,
        )?))),
        Execution::Submitted(submission) => Ok(Outcome::Submitted {
            submission,
            planned: plan.len(),
        }),
    }
}
