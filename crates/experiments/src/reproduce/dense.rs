//! The paper's dense instability analysis (Algorithm 1 on the unpruned network): one parent
//! per init trained in the parents' data order, children from every dense k in every other
//! order, the curves between them. Its plan lives in `instability`; what a reproduction asks of
//! it is here, beside the units built on it (`beyond`).

use results::{Alignment, Figure, ReproduceConfig};

use super::ModelSetup;
use crate::Result;
use crate::instability::{InstabilityConfig, ParentRun};
use crate::runs::Plan;

/// How the scale interpolates: its data orders, points, BN policy and curve evaluation, with
/// Figure 4's probes throughout training where that figure is asked for.
pub fn instability_config(config: &ReproduceConfig, setup: &ModelSetup) -> InstabilityConfig {
    InstabilityConfig {
        data_seeds: setup.design.data_seeds.clone(),
        points: setup.design.points,
        bn_policy: setup.design.bn_policy,
        eval: setup.curve_eval.clone(),
        throughout_every: config
            .figures
            .contains(&Figure::Fig4)
            .then_some(setup.design.throughout_every),
        align: Alignment::None,
    }
}

/// One dense parent per init, in the parents' data order, branched at every dense k.
pub fn parents(setup: &ModelSetup, plan: &mut Plan) -> Result<Vec<ParentRun>> {
    setup
        .design
        .init_seeds
        .iter()
        .map(|&init| {
            Ok(ParentRun {
                init_seed: init,
                run: plan.train_from_init(
                    &setup.recipe,
                    init,
                    setup.design.parent_data_seed,
                    &setup.eval,
                    &setup.rule,
                )?,
                ks: setup.design.dense_ks.clone(),
            })
        })
        .collect()
}
