//! `results.json`: everything the figures and the report of a reproduction are drawn from.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    Alignment, BnPolicy, Branch, DatasetName, ErrorCurve, Instability, KUnit, L2Distance,
    LayerDensity, MeanStd, ReproduceConfig, RunId, RunKind,
};

/// What a finished interpolation records (the `result.json` of a `pair-…` run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    pub curve: ErrorCurve,
    pub instability: Instability,
    pub l2: L2Distance,
    /// Test error (%) of `a` and `b`.
    pub endpoint_test_errors: [f32; 2],
    /// Time the interpolation took (absent in results of older versions).
    #[serde(default)]
    pub wall_seconds: f64,
    /// What weight matching did to `b` (aligned pairs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<AlignmentRecord>,
}

/// What weight matching did to the second network of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlignmentRecord {
    /// Coordinate-descent rounds over the permutation groups.
    pub rounds: usize,
    /// Hidden units in all permutation groups.
    pub units: usize,
    /// Units the permutation moved (0: the networks were aligned already).
    pub moved: usize,
}

/// Two dense networks from different initialisations (same data order), interpolated with and
/// without alignment: the setting of weight matching's own papers, beside the paper's
/// same-init children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitPairResult {
    pub init_seeds: [u64; 2],
    pub align: Alignment,
    pub bn_policy: BnPolicy,
    pub result: PairResult,
}

/// The interpolation of one pair of children, read back from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub init_seed: u64,
    pub k: u64,
    pub data_seeds: [u64; 2],
    pub result: PairResult,
    /// (step, test instability) during training; the last entry is the end of training.
    pub throughout: Vec<(u64, f32)>,
}

/// Aggregates at one k over all inits and pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KSummary {
    pub k: u64,
    pub test_instability: MeanStd,
    pub train_instability: Option<MeanStd>,
    /// The rise of the test loss along the path (the loss barrier), where curves have losses.
    #[serde(default)]
    pub test_loss_barrier: Option<MeanStd>,
    pub l2_prunable: MeanStd,
    pub l2_all: MeanStd,
    /// Test accuracy (%) of the children at the end of training, each child once.
    pub child_test_accuracy: MeanStd,
    /// Mean test instability per step during training (Figure 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughout: Vec<(u64, MeanStd)>,
}

/// An instability analysis: its pairs and their aggregates per k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstabilitySummary {
    pub per_k: Vec<KSummary>,
    pub pairs: Vec<PairRecord>,
}

impl InstabilitySummary {
    /// Aggregates `pairs` per k (ascending).
    pub fn of(pairs: Vec<PairRecord>) -> InstabilitySummary {
        let mut ks: Vec<u64> = pairs.iter().map(|p| p.k).collect();
        ks.sort_unstable();
        ks.dedup();
        let per_k = ks.into_iter().map(|k| summarise_k(&pairs, k)).collect();
        InstabilitySummary { per_k, pairs }
    }

    /// The aggregates at `k`.
    pub fn at(&self, k: u64) -> Option<&KSummary> {
        self.per_k.iter().find(|x| x.k == k)
    }
}

fn summarise_k(pairs: &[PairRecord], k: u64) -> KSummary {
    let at: Vec<&PairRecord> = pairs.iter().filter(|p| p.k == k).collect();
    let values = |f: &dyn Fn(&PairRecord) -> f64| -> MeanStd {
        MeanStd::of(&at.iter().map(|p| f(p)).collect::<Vec<_>>())
    };
    let train: Option<Vec<f64>> = at
        .iter()
        .map(|p| p.result.instability.train.map(f64::from))
        .collect();
    let test_loss: Option<Vec<f64>> = at
        .iter()
        .map(|p| p.result.instability.test_loss.map(f64::from))
        .collect();
    // Each child once, though it ends several pairs.
    let children: BTreeMap<(u64, u64), f32> = at
        .iter()
        .flat_map(|p| {
            (0..2).map(|i| {
                (
                    (p.init_seed, p.data_seeds[i]),
                    p.result.endpoint_test_errors[i],
                )
            })
        })
        .collect();
    let mut steps: Vec<u64> = at
        .iter()
        .flat_map(|p| p.throughout.iter().map(|(s, _)| *s))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    let throughout = steps
        .into_iter()
        .map(|s| {
            let v: Vec<f64> = at
                .iter()
                .filter_map(|p| p.throughout.iter().find(|(x, _)| *x == s))
                .map(|(_, v)| f64::from(*v))
                .collect();
            (s, MeanStd::of(&v))
        })
        .collect();
    KSummary {
        k,
        test_instability: values(&|p| f64::from(p.result.instability.test)),
        train_instability: train.map(|v| MeanStd::of(&v)),
        test_loss_barrier: test_loss.map(|v| MeanStd::of(&v)),
        l2_prunable: values(&|p| p.result.l2.prunable),
        l2_all: values(&|p| p.result.l2.all_parameters),
        child_test_accuracy: MeanStd::of(
            &children
                .values()
                .map(|e| 100.0 - f64::from(*e))
                .collect::<Vec<_>>(),
        ),
        throughout,
    }
}

/// One finished run of an IMP experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelResult {
    pub level: usize,
    pub branch: Branch,
    /// Fraction of prunable weights kept.
    pub density: f64,
    pub layers: Vec<LayerDensity>,
    pub test_accuracy: f32,
    pub test_loss: f32,
    pub train_accuracy: Option<f32>,
    pub run: RunId,
}

/// Accuracy of one branch at one level, over inits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    pub level: usize,
    pub branch: Branch,
    pub density: f64,
    /// Test accuracy in %.
    pub test_accuracy: MeanStd,
}

impl LevelSummary {
    /// One summary per (level, branch) of `runs`, in that order.
    pub fn of(runs: &[LevelResult]) -> Vec<LevelSummary> {
        let mut keys: Vec<(usize, Branch)> = runs.iter().map(|r| (r.level, r.branch)).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|(level, branch)| {
                let at: Vec<&LevelResult> = runs
                    .iter()
                    .filter(|r| r.level == level && r.branch == branch)
                    .collect();
                LevelSummary {
                    density: at.iter().map(|r| r.density).sum::<f64>() / at.len().max(1) as f64,
                    test_accuracy: MeanStd::of(
                        &at.iter()
                            .map(|r| 100.0 * f64::from(r.test_accuracy))
                            .collect::<Vec<_>>(),
                    ),
                    level,
                    branch,
                }
            })
            .collect()
    }
}

/// IMP at one rewind step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpSeries {
    pub k: u64,
    pub levels: Vec<LevelSummary>,
    pub runs: Vec<LevelResult>,
}

impl ImpSeries {
    /// The summary of `branch` at `level`.
    pub fn level(&self, level: usize, branch: Branch) -> Option<&LevelSummary> {
        self.levels
            .iter()
            .find(|l| l.level == level && l.branch == branch)
    }
}

/// A sparse instability analysis at one rewind step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseAnalysis {
    pub k: u64,
    pub branch: Branch,
    pub density: f64,
    pub summary: InstabilitySummary,
}

/// What the paper reports for a network (SPEC.md sections 3 and 5), to set beside ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperReference {
    pub dataset: DatasetName,
    /// Test accuracy (%): mean and std.
    pub accuracy: (f64, f64),
    /// Table 1 IMP density (%).
    pub density: f64,
    pub stable_at_init: bool,
    /// The k from which the network is stable (instability < 2 points).
    pub stable_from: Cow<'static, str>,
    /// IMP without rewinding (k = 0) finds a matching subnetwork at the Table 1 density.
    pub imp_matching_at_init: bool,
    /// The rewind step from which IMP subnetworks are matching.
    pub matching_from: Cow<'static, str>,
    /// Where the dense network becomes stable, as a fraction of training (`None`: not known
    /// to this results file; reports written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_from_fraction: Option<f64>,
    /// Where IMP rewinding starts to find matching subnetworks, as a fraction of training
    /// (`None`: the paper does not say, or not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_from_fraction: Option<f64>,
    /// The paper's onset is a bound on its own k grid: the grid value before `stable_from`, as
    /// a fraction of training (the paper measured it unstable there). `None`: not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_after_fraction: Option<f64>,
    /// The grid value before `matching_from`, as a fraction of training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_after_fraction: Option<f64>,
    /// What the paper finds for random pruning and for random reinitialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_pruning: Option<BaselineClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinit: Option<BaselineClaim>,
}

/// The paper's finding for one baseline of one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineClaim {
    /// Stable (under 2 points) at the rewind k; `None`: the paper makes no such claim.
    pub stable: Option<bool>,
    /// Matching at the Table 1 density.
    pub matching: bool,
    /// The paper's words.
    pub words: Cow<'static, str>,
}

/// The network of a [`Setup`], as figures and tables name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// "Resnet-20", "VGG-16 Warmup".
    pub title: String,
    /// The architecture as run: `resnet-20-w8`, `vgg-16/8`.
    pub model: String,
    /// The dataset trained on.
    pub dataset: DatasetName,
    pub k_unit: KUnit,
    /// The paper's numbers, for networks of the paper.
    pub paper: Option<PaperReference>,
}

/// The design of one network's experiments at one scale: seeds, k values, pruning rounds,
/// evaluation points, and every cut from the paper in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Design {
    /// The dataset of the paper when another was substituted for it.
    pub substituted_for: Option<DatasetName>,
    pub init_seeds: Vec<u64>,
    /// Data orders of the children (all pairs are interpolated).
    pub data_seeds: Vec<u64>,
    /// Data order of the parents (W_0 -> W_k) and of the IMP runs.
    pub parent_data_seed: u64,
    /// Branch iterations of the dense analysis (Figures 3, 4, App. B, D).
    pub dense_ks: Vec<u64>,
    /// Rewind iterations of the sparse analysis (Figures 7, 8, App. C, E).
    pub sparse_ks: Vec<u64>,
    /// Steps between the interpolations of Figure 4.
    pub throughout_every: u64,
    /// Points on an interpolation path.
    pub points: usize,
    /// Pruning rounds to the target density, and the fraction pruned per round.
    pub levels: usize,
    pub fraction: f64,
    /// Levels with baselines at k = 0 (Figure 5); the last level always has them.
    pub baseline_levels: Vec<usize>,
    /// Rewind iterations at which random pruning and reinitialisation run, with their sparse
    /// instability (`None`: every sparse k).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_ks: Option<Vec<u64>>,
    pub bn_policy: BnPolicy,
    pub total_steps: u64,
    pub iterations_per_epoch: u64,
    /// What differs from the paper, in words.
    pub cuts: Vec<String>,
}

impl Design {
    /// The density IMP reaches.
    pub fn target_density(&self) -> f64 {
        (1.0 - self.fraction).powi(self.levels as i32)
    }
}

/// Everything one network's experiments used at one scale, as `results.json` records it.
///
/// `recipe`, `eval`, `curve_eval` and `rule` are the experiment crate's configurations as
/// run, kept as JSON for provenance (each run's `identity.json` in the store holds them too);
/// the report reads the typed fields only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// The network's name in the registry (`resnet20`).
    pub preset: String,
    pub recipe: serde_json::Value,
    pub eval: serde_json::Value,
    pub curve_eval: serde_json::Value,
    pub rule: serde_json::Value,
    #[serde(flatten)]
    pub design: Design,
    pub network: NetworkInfo,
}

/// Everything the figures and the report of one network show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResults {
    pub setup: Setup,
    /// Test accuracy (%) of the dense reference ([`ModelResults::dense_reference`]): every
    /// distinct full-length dense network of the dense analysis, else the dense IMP runs.
    pub dense_accuracy: Option<MeanStd>,
    pub dense: Option<InstabilitySummary>,
    pub imp: Vec<ImpSeries>,
    pub sparse: Vec<SparseAnalysis>,
    /// How far from trained the scale's length leaves the dense network.
    #[serde(default)]
    pub length_check: Option<LengthCheck>,
    /// The instability analyses repeated with alignment ("Beyond the paper").
    #[serde(default)]
    pub aligned: Vec<AlignedAnalysis>,
    /// Two initialisations interpolated with and without alignment ("Beyond the paper").
    #[serde(default)]
    pub across_inits: Vec<InitPairResult>,
    /// Interpolations between consecutive IMP levels ("Beyond the paper", `--only levels`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub level_links: Vec<crate::LevelLink>,
    /// IMP pruning every layer within itself, rewound like the first sparse k ("Beyond the
    /// paper", `--only layerwise`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layerwise: Vec<ImpSeries>,
}

/// An instability analysis of the same children as the paper's, the second child of each pair
/// aligned to the first before interpolating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignedAnalysis {
    /// The children of IMP subnetworks (rewound to each sparse k) instead of the dense ones.
    pub sparse: bool,
    pub align: Alignment,
    pub bn_policy: BnPolicy,
    pub summary: InstabilitySummary,
}

/// One dense network (first init, the parents' data order) trained at the scale's length and
/// at a multiple of it, evaluated alike: how far from trained a shortened scale leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LengthCheck {
    pub steps: u64,
    /// Test accuracy (%) at the end of `steps`.
    pub test_accuracy: f64,
    pub long_steps: u64,
    pub long_test_accuracy: f64,
}

impl LengthCheck {
    /// Accuracy points the longer run gains.
    pub fn shortfall(&self) -> f64 {
        self.long_test_accuracy - self.test_accuracy
    }
}

impl ModelResults {
    /// The IMP series rewound to `k`.
    pub fn imp_at(&self, k: u64) -> Option<&ImpSeries> {
        self.imp.iter().find(|s| s.k == k)
    }

    /// The sparse analysis of `branch` rewound to `k`.
    pub fn sparse_at(&self, k: u64, branch: Branch) -> Option<&SparseAnalysis> {
        self.sparse.iter().find(|s| s.k == k && s.branch == branch)
    }
}

/// Compute time of one kind of run of one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeShare {
    pub network: String,
    pub kind: RunKind,
    pub runs: usize,
    pub seconds: f64,
}

/// A whole reproduction: what the renderer reads (`results.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub config: ReproduceConfig,
    pub models: Vec<ModelResults>,
    pub backend: String,
    pub git_commit: String,
    /// Wall time of this invocation (runs reused from the store cost nothing).
    pub wall_seconds: f64,
    /// Sum of the wall times of every run the figures use, as recorded when each was trained.
    pub compute_seconds: f64,
    /// `compute_seconds` by network and kind of run.
    #[serde(default)]
    pub time: Vec<TimeShare>,
    pub runs: usize,
    /// The specs of the datasets of one's own the networks trained on (registered by
    /// [`Results::from_json`] before the rest is read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_datasets: Vec<crate::DatasetRecord>,
}

impl Results {
    /// Reads a `results.json`, registering the datasets of one's own it records first.
    pub fn from_json(bytes: &[u8]) -> Result<Results, serde_json::Error> {
        #[derive(Deserialize)]
        struct OwnDatasets {
            #[serde(default)]
            own_datasets: Vec<crate::DatasetRecord>,
        }
        let own: OwnDatasets = serde_json::from_slice(bytes)?;
        for record in &own.own_datasets {
            record.register().map_err(serde::de::Error::custom)?;
        }
        serde_json::from_slice(bytes)
    }
}
