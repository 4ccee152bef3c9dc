//! Beyond the paper, as one unit: IMP pruning every layer by the round's fraction within
//! itself (layer-wise, as open_lth's unmerged layer-wise pruning does) beside the paper's
//! global pruning (`--only layerwise`). One series per init, rewound like the first sparse k,
//! no baselines. Planning and collection here; the panel and the report section in `figures`.

use results::ImpSeries;
use sparsity::PruneRule;
use store::Store;

use super::{ImpAt, ModelSetup};
use crate::Result;
use crate::imp::ImpConfig;
use crate::runs::Plan;

/// The layer-wise IMP series of every init. Their rule differs from the paper's, so every run
/// is new, the dense one included (the same network under another identity).
pub fn plan(setup: &ModelSetup, plan: &mut Plan) -> Result<Vec<ImpAt>> {
    let k = setup.design.sparse_ks.first().copied().unwrap_or(0);
    setup
        .design
        .init_seeds
        .iter()
        .map(|&init| {
            let experiment = ImpConfig {
                rule: PruneRule {
                    layerwise: true,
                    ..setup.rule.clone()
                },
                ..setup.imp_series(k, init)
            };
            Ok(ImpAt {
                k,
                init_seed: init,
                runs: experiment.plan(plan)?,
            })
        })
        .collect()
}

/// The series' level results, one [`ImpSeries`] per rewind k, read like the paper's IMP.
pub fn collect(store: &Store, series: &[ImpAt]) -> Result<Vec<ImpSeries>> {
    super::imp::collect(store, series)
}
