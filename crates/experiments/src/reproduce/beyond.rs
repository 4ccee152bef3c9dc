//! "Beyond the paper", as one unit: the instability analyses again with alignment (weight or
//! activation matching) and BN re-estimation, on the paper's own children, and two inits'
//! dense networks interpolated with and without alignment. Planning and collection here; the
//! figure and the report section in `figures` (`panels.rs`, `report/beyond.rs`).

use results::{AlignedAnalysis, Alignment, BnPolicy, InitPairResult, RunId};
use serde::{Deserialize, Serialize};
use store::Store;

use super::ModelSetup;
use crate::Result;
use crate::instability::{InstabilityConfig, PairRuns, ParentRun, instability_summary};
use crate::runs::{PairResult, PairSpec, Plan};

/// An interpolation of two inits' dense runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcrossInitsRun {
    pub init_seeds: [u64; 2],
    pub align: Alignment,
    pub bn_policy: BnPolicy,
    pub pair: RunId,
}

/// The pairs of one aligned analysis: the same children as the paper's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignedRuns {
    pub sparse: bool,
    pub align: Alignment,
    pub bn_policy: BnPolicy,
    pub pairs: Vec<PairRuns>,
}

/// Training batches that re-estimate BN statistics at each point of an aligned path
/// (REPAIR-style; Jordan et al. 2023 use a few thousand images).
pub const BN_REESTIMATE_BATCHES: usize = 20;

/// The variants "Beyond the paper" compares with the paper's plain interpolation: weight
/// matching and activation matching; and where there is BN, BN re-estimated along the path
/// without alignment (the control that separates the two effects) and with each alignment.
fn alignment_variants(setup: &ModelSetup) -> Vec<(Alignment, BnPolicy)> {
    let plain = setup.design.bn_policy;
    let reestimate = BnPolicy::Reestimate {
        batches: BN_REESTIMATE_BATCHES,
    };
    let bn = setup.recipe.model.architecture().batch_norm;
    let mut out = Vec::new();
    if bn {
        out.push((Alignment::None, reestimate));
    }
    for align in [Alignment::Weights, Alignment::Activations] {
        out.push((align, plain));
        if bn {
            out.push((align, reestimate));
        }
    }
    out
}

/// `instability` (the paper's dense analysis) with `align` and `bn_policy`, no Figure 4 probes.
fn aligned_config(
    instability: &InstabilityConfig,
    align: Alignment,
    bn_policy: BnPolicy,
) -> InstabilityConfig {
    InstabilityConfig {
        align,
        bn_policy,
        throughout_every: None,
        ..instability.clone()
    }
}

/// The dense part: the first init's parent against another init's (same data order, the
/// setting of weight matching's own papers), plainly and with every variant; then the paper's
/// dense pairs again with every variant.
pub fn plan_dense(
    setup: &ModelSetup,
    instability: &InstabilityConfig,
    parents: &[ParentRun],
    plan: &mut Plan,
) -> Result<(Vec<AcrossInitsRun>, Vec<AlignedRuns>)> {
    let Some(first) = parents.first() else {
        return Ok((vec![], vec![]));
    };
    let mut across_inits = Vec::new();
    let other = first.init_seed + 1;
    let second = plan.train_from_init(
        &setup.recipe,
        other,
        setup.design.parent_data_seed,
        &setup.eval,
        &setup.rule,
    )?;
    let plain = (Alignment::None, setup.design.bn_policy);
    for (align, bn_policy) in std::iter::once(plain).chain(alignment_variants(setup)) {
        let pair = plan.pair(PairSpec {
            a: first.run.clone(),
            b: second.clone(),
            step: setup.design.total_steps,
            points: setup.design.points,
            bn_policy,
            eval: setup.curve_eval.clone(),
            with_train_error: true,
            align,
        })?;
        across_inits.push(AcrossInitsRun {
            init_seeds: [first.init_seed, other],
            align,
            bn_policy,
            pair,
        });
    }
    let mut aligned = Vec::new();
    for (align, bn_policy) in alignment_variants(setup) {
        aligned.push(AlignedRuns {
            sparse: false,
            align,
            bn_policy,
            pairs: aligned_config(instability, align, bn_policy).plan(
                plan,
                parents,
                setup.design.total_steps,
            )?,
        });
    }
    Ok((across_inits, aligned))
}

/// The sparse analyses, one per variant, filled by [`plan_sparse`] at every sparse k.
pub fn sparse_analyses(setup: &ModelSetup) -> Vec<AlignedRuns> {
    alignment_variants(setup)
        .into_iter()
        .map(|(align, bn_policy)| AlignedRuns {
            sparse: true,
            align,
            bn_policy,
            pairs: vec![],
        })
        .collect()
}

/// The IMP subnetworks' pairs at one sparse k (`parents`), added to every sparse analysis.
pub fn plan_sparse(
    analyses: &mut [AlignedRuns],
    setup: &ModelSetup,
    instability: &InstabilityConfig,
    parents: &[ParentRun],
    plan: &mut Plan,
) -> Result<()> {
    for a in analyses {
        a.pairs
            .extend(aligned_config(instability, a.align, a.bn_policy).plan(
                plan,
                parents,
                setup.design.total_steps,
            )?);
    }
    Ok(())
}

/// Every aligned analysis summarised, from the store.
pub fn collect_aligned(store: &Store, runs: &[AlignedRuns]) -> Result<Vec<AlignedAnalysis>> {
    runs.iter()
        .map(|a| {
            Ok(AlignedAnalysis {
                sparse: a.sparse,
                align: a.align,
                bn_policy: a.bn_policy,
                summary: instability_summary(store, &a.pairs)?,
            })
        })
        .collect()
}

/// Every interpolation across inits, from the store.
pub fn collect_across_inits(store: &Store, runs: &[AcrossInitsRun]) -> Result<Vec<InitPairResult>> {
    runs.iter()
        .map(|a| {
            Ok(InitPairResult {
                init_seeds: a.init_seeds,
                align: a.align,
                bn_policy: a.bn_policy,
                result: store.finished::<PairResult>(&a.pair)?,
            })
        })
        .collect()
}
