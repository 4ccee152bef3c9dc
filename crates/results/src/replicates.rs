//! Replicates: which measured networks are distinct, the dense reference a recipe's
//! comparisons pool, and summaries recomputed from the records with this version's statistics.

use std::collections::BTreeMap;

use crate::{
    Branch, ImpSeries, InstabilitySummary, LevelSummary, MeanStd, ModelResults, PooledSpread,
    Results,
};

/// Which test set an accuracy was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestSet {
    /// The endpoints of the interpolation curves (the curve evaluation's test images).
    CurveEndpoints,
    /// The training runs' own evaluation (the IMP level runs).
    RunEvaluation,
}

/// An accuracy (%) with the test set it was measured on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub value: MeanStd,
    pub test_set: TestSet,
}

/// A subnetwork's accuracy and the dense reference it is compared with, on one test set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracyComparison {
    pub subnetwork: MeanStd,
    pub dense: MeanStd,
    pub test_set: TestSet,
}

/// Test accuracy (%) of every distinct full-length dense network among the children of the
/// dense instability pairs. A child trained from W_k with the parents' own data order is the
/// parent continued: it is the same network at every k and counts once.
pub fn distinct_dense_accuracies(dense: &InstabilitySummary, parent_data_seed: u64) -> Vec<f64> {
    let mut networks: BTreeMap<(u64, Option<(u64, u64)>), f64> = BTreeMap::new();
    for p in &dense.pairs {
        for (seed, error) in p.data_seeds.iter().zip(p.result.endpoint_test_errors) {
            let key = if *seed == parent_data_seed {
                (p.init_seed, None)
            } else {
                (p.init_seed, Some((p.k, *seed)))
            };
            networks.insert(key, 100.0 - f64::from(error));
        }
    }
    networks.into_values().collect()
}

impl ModelResults {
    /// The dense reference of this recipe: every distinct full-length dense network of the
    /// dense instability analysis (curve endpoints), else the dense IMP runs (level 0, k = 0).
    pub fn dense_reference(&self) -> Option<Accuracy> {
        if let Some(d) = &self.dense {
            let values = distinct_dense_accuracies(d, self.setup.design.parent_data_seed);
            if !values.is_empty() {
                return Some(Accuracy {
                    value: MeanStd::of(&values),
                    test_set: TestSet::CurveEndpoints,
                });
            }
        }
        self.dense_imp_runs().map(|value| Accuracy {
            value,
            test_set: TestSet::RunEvaluation,
        })
    }

    /// The dense IMP runs (level 0 at k = 0), one per init.
    pub fn dense_imp_runs(&self) -> Option<MeanStd> {
        self.imp_at(0)?
            .level(0, Branch::Imp)
            .map(|l| l.test_accuracy)
    }

    /// A subnetwork (the last IMP level of `branch` rewound to `k`) beside the dense reference,
    /// both on one test set: the children of its sparse instability pairs against the dense
    /// children where both exist, else the IMP level runs against the dense IMP runs.
    pub fn accuracy_comparison(&self, k: u64, branch: Branch) -> Option<AccuracyComparison> {
        let children = self
            .sparse_at(k, branch)
            .and_then(|a| a.summary.per_k.first())
            .map(|x| x.child_test_accuracy);
        if let (Some(sub), Some(dense)) = (children, self.dense_reference())
            && dense.test_set == TestSet::CurveEndpoints
        {
            return Some(AccuracyComparison {
                subnetwork: sub,
                dense: dense.value,
                test_set: TestSet::CurveEndpoints,
            });
        }
        let sub = self
            .imp_at(k)?
            .level(self.setup.design.levels, branch)?
            .test_accuracy;
        Some(AccuracyComparison {
            subnetwork: sub,
            dense: self.dense_imp_runs()?,
            test_set: TestSet::RunEvaluation,
        })
    }

    /// The spread of test instability between replicate pairs at this scale: pooled over every
    /// (analysis, k) of this network with two or more pairs.
    pub fn instability_spread(&self) -> Option<PooledSpread> {
        let dense = self.dense.iter().flat_map(|d| &d.per_k);
        let sparse = self.sparse.iter().flat_map(|a| &a.summary.per_k);
        PooledSpread::of(dense.chain(sparse).map(|k| &k.test_instability))
    }

    /// Recomputes every summary from the records (pairs and level runs), so that results
    /// written by an older version are read with this version's statistics.
    pub fn resummarise(&mut self) {
        if let Some(d) = &mut self.dense {
            *d = InstabilitySummary::of(std::mem::take(&mut d.pairs));
        }
        for a in &mut self.sparse {
            a.summary = InstabilitySummary::of(std::mem::take(&mut a.summary.pairs));
        }
        for a in &mut self.aligned {
            a.summary = InstabilitySummary::of(std::mem::take(&mut a.summary.pairs));
        }
        for ImpSeries { levels, runs, .. } in &mut self.imp {
            *levels = LevelSummary::of(runs);
        }
        self.dense_accuracy = self.dense_reference().map(|a| a.value);
    }
}

impl Results {
    /// [`ModelResults::resummarise`] for every network.
    pub fn resummarise(&mut self) {
        for m in &mut self.models {
            m.resummarise();
        }
    }
}
