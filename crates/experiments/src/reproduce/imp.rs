//! The paper's IMP analysis (Figures 5 and 8), as one unit: IMP with rewinding to every sparse
//! k from every init, with random pruning and reinitialisation as baselines where the scale
//! trains them. Planning and collection here; the panels and findings in `figures`.

use results::{ImpSeries, LevelSummary};
use store::Store;

use super::{ImpAt, ModelSetup};
use crate::Result;
use crate::imp::{Baseline, ImpConfig, imp_results};
use crate::runs::Plan;

/// One IMP series per sparse k and init (k outer), with the baselines at the scale's
/// baseline ks: at k = 0 at the scale's baseline levels, elsewhere at the last level.
pub fn plan(setup: &ModelSetup, plan: &mut Plan) -> Result<Vec<ImpAt>> {
    let design = &setup.design;
    let mut series = Vec::new();
    for &k in &design.sparse_ks {
        let with_baselines = (design.baseline_ks.as_ref()).is_none_or(|ks| ks.contains(&k));
        for &init in &design.init_seeds {
            let experiment = ImpConfig {
                baselines: if with_baselines {
                    Baseline::ALL.to_vec()
                } else {
                    vec![]
                },
                baseline_levels: if k == 0 {
                    design.baseline_levels.clone()
                } else {
                    vec![design.levels]
                },
                ..setup.imp_series(k, init)
            };
            series.push(ImpAt {
                k,
                init_seed: init,
                runs: experiment.plan(plan)?,
            });
        }
    }
    Ok(series)
}

/// The series' level results, one [`ImpSeries`] per rewind k (the inits' runs together).
pub fn collect(store: &Store, series: &[ImpAt]) -> Result<Vec<ImpSeries>> {
    let mut ks: Vec<u64> = series.iter().map(|s| s.k).collect();
    ks.dedup();
    ks.into_iter()
        .map(|k| {
            let mut runs = Vec::new();
            for s in series.iter().filter(|s| s.k == k) {
                runs.extend(imp_results(store, &s.runs)?);
            }
            Ok(ImpSeries {
                k,
                levels: LevelSummary::of(&runs),
                runs,
            })
        })
        .collect()
}
