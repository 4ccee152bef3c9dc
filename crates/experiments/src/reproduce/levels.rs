//! Beyond the paper, as one unit: the IMP-level connectivity analysis (`--only levels`).
//! Planning interpolates the trained networks of consecutive IMP levels of every series the
//! reproduction trains; collection reads them back as [`LevelLink`]s. The figure and the
//! finding are drawn from those alone (`figures`).

use results::{ImpSeries, LevelLink, PairResult, RunId};
use serde::{Deserialize, Serialize};
use store::Store;

use super::{ImpAt, ModelSetup};
use crate::Result;
use crate::runs::{PairSpec, Plan};

/// The interpolation between level `level` and `level + 1` of one IMP series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelLinkRun {
    pub k: u64,
    pub init_seed: u64,
    pub level: usize,
    pub pair: RunId,
}

/// Plans the interpolations between the consecutive levels of `series` (both ends trained
/// to the end, evaluated like the scale's curves, with the scale's BN policy).
pub fn plan(setup: &ModelSetup, series: &ImpAt, plan: &mut Plan) -> Result<Vec<LevelLinkRun>> {
    series
        .runs
        .levels
        .windows(2)
        .enumerate()
        .map(|(level, ends)| {
            let pair = plan.pair(PairSpec {
                a: ends[0].clone(),
                b: ends[1].clone(),
                step: setup.design.total_steps,
                points: setup.design.points,
                bn_policy: setup.design.bn_policy,
                eval: setup.curve_eval.clone(),
                with_train_error: false,
                align: results::Alignment::None,
            })?;
            Ok(LevelLinkRun {
                k: series.k,
                init_seed: series.init_seed,
                level,
                pair,
            })
        })
        .collect()
}

/// The links' results, each with the density of its sparser end (from `imp`, the IMP series
/// of the same reproduction: `series` are their runs, `results` their level results).
pub fn collect(
    store: &Store,
    runs: &[LevelLinkRun],
    series: &[ImpAt],
    results: &[ImpSeries],
) -> Result<Vec<LevelLink>> {
    runs.iter()
        .map(|r| {
            let pair: PairResult = store.finished(&r.pair)?;
            let sparser = series
                .iter()
                .find(|s| s.k == r.k && s.init_seed == r.init_seed)
                .and_then(|s| s.runs.levels.get(r.level + 1));
            let density = results
                .iter()
                .flat_map(|s| &s.runs)
                .find(|l| Some(&l.run) == sparser)
                .map(|l| l.density)
                .ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "the level link {} has no IMP level {} to take its density from",
                        r.pair,
                        r.level + 1
                    ))
                })?;
            Ok(LevelLink {
                k: r.k,
                init_seed: r.init_seed,
                level: r.level,
                density,
                instability: pair.instability,
                endpoint_test_errors: pair.endpoint_test_errors,
            })
        })
        .collect()
}
