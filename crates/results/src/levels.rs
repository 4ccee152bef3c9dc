//! Beyond the paper: are the networks of consecutive IMP levels linearly connected? Paul et
//! al. (2023, "Unmasking the lottery ticket hypothesis") found that IMP finds matching
//! subnetworks exactly when the trained networks of successive levels are connected by a
//! linear path of low error. Each [`LevelLink`] is one interpolation between level `L` and
//! level `L + 1` of one IMP series (one rewind k, one init), both fully trained.

use serde::{Deserialize, Serialize};

use crate::{AccuracyComparison, Branch, Instability, MeanStd, ModelResults, TestSet};

/// The interpolation between two consecutive IMP levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelLink {
    /// The rewind iteration of the IMP series.
    pub k: u64,
    pub init_seed: u64,
    /// The denser level; the other is `level + 1`.
    pub level: usize,
    /// Density of the sparser network (`level + 1`).
    pub density: f64,
    pub instability: Instability,
    /// Test error (%) of the denser and the sparser network at the ends of the path.
    pub endpoint_test_errors: [f32; 2],
}

/// The links of one (k, level) over every init, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelLinkSummary {
    pub k: u64,
    pub level: usize,
    pub density: f64,
    /// Test instability (pp) over inits.
    pub test_instability: MeanStd,
}

impl ModelResults {
    /// One summary per (k, level) of the level links, in that order.
    pub fn level_link_summaries(&self) -> Vec<LevelLinkSummary> {
        let mut keys: Vec<(u64, usize)> = self.level_links.iter().map(|l| (l.k, l.level)).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|(k, level)| {
                let at: Vec<&LevelLink> = self
                    .level_links
                    .iter()
                    .filter(|l| l.k == k && l.level == level)
                    .collect();
                LevelLinkSummary {
                    k,
                    level,
                    density: at.iter().map(|l| l.density).sum::<f64>() / at.len().max(1) as f64,
                    test_instability: MeanStd::of(
                        &at.iter()
                            .map(|l| f64::from(l.instability.test))
                            .collect::<Vec<_>>(),
                    ),
                }
            })
            .collect()
    }

    /// IMP level `level` rewound to `k` beside the dense IMP runs, both evaluated on the whole
    /// test set at the end of their training.
    pub fn level_comparison(&self, k: u64, level: usize) -> Option<AccuracyComparison> {
        Some(AccuracyComparison {
            subnetwork: self.imp_at(k)?.level(level, Branch::Imp)?.test_accuracy,
            dense: self.dense_imp_runs()?,
            test_set: TestSet::RunEvaluation,
        })
    }
}
