//! Every run the paper's figures need, at a chosen scale, deduplicated across figures, and
//! the results the figures are drawn from.
//!
//! One code path serves every scale: a [`Scale`] only changes the numbers in
//! [`ModelSetup`] (training length, width, seeds, k values, pruning rounds, evaluation
//! subsets), and every cut is written down in [`ModelSetup::cuts`] so that the report can say
//! what was run.

use std::collections::BTreeMap;
use std::time::Instant;

use data::DatasetName;
use lmc::BnPolicy;
use nets::ModelConfig;
use serde::{Deserialize, Serialize};
use sparsity::PruneRule;
use train::{EvalConfig, Recipe, Steps};

use crate::imp::{Baseline, ImpConfig, ImpRuns, LevelResult, imp_results};
use crate::instability::{
    InstabilityConfig, InstabilitySummary, MeanStd, PairRuns, ParentRun, instability_summary,
};
use crate::runs::{DataCache, OptimizerAtRewind, Plan};
use crate::store::Store;
use crate::{Error, Result};

/// How much of the paper to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// The whole pipeline in minutes (CI): tiny lengths and widths.
    Smoke,
    /// A few hours on a 2-core CPU: Lenet at full length, the conv nets shortened and
    /// narrowed, one init, two data orders, fewer k values and coarser pruning rounds.
    Quick,
    /// Table 1 exactly: 3 inits x 3 data orders, every k, 20% pruning rounds.
    Paper,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Quick => "quick",
            Scale::Paper => "paper",
        }
    }
}

impl std::str::FromStr for Scale {
    type Err = Error;
    fn from_str(s: &str) -> Result<Scale> {
        match s {
            "smoke" => Ok(Scale::Smoke),
            "quick" => Ok(Scale::Quick),
            "paper" => Ok(Scale::Paper),
            other => Err(Error::Invalid(format!(
                "unknown scale `{other}`: use smoke, quick or paper"
            ))),
        }
    }
}

/// The figures of the paper (main text and appendices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Figure {
    Fig2,
    Fig3,
    Fig4,
    Fig5,
    Fig6,
    Fig7,
    Fig8,
    AppB,
    AppC,
    AppD,
    AppE,
}

impl Figure {
    pub const ALL: [Figure; 11] = [
        Figure::Fig2,
        Figure::Fig3,
        Figure::Fig4,
        Figure::Fig5,
        Figure::Fig6,
        Figure::Fig7,
        Figure::Fig8,
        Figure::AppB,
        Figure::AppC,
        Figure::AppD,
        Figure::AppE,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Figure::Fig2 => "fig2",
            Figure::Fig3 => "fig3",
            Figure::Fig4 => "fig4",
            Figure::Fig5 => "fig5",
            Figure::Fig6 => "fig6",
            Figure::Fig7 => "fig7",
            Figure::Fig8 => "fig8",
            Figure::AppB => "appb",
            Figure::AppC => "appc",
            Figure::AppD => "appd",
            Figure::AppE => "appe",
        }
    }

    /// What the figure shows (for captions).
    pub fn title(self) -> &'static str {
        match self {
            Figure::Fig2 => "Error along the linear path between two children trained from k = 0",
            Figure::Fig3 => "Instability (test and train) against the branch iteration k",
            Figure::Fig4 => "Test instability throughout training, one line per k",
            Figure::Fig5 => {
                "Test accuracy against density: IMP, random pruning, random reinit (k = 0)"
            }
            Figure::Fig6 => "Error along the linear path for sparse IMP subnetworks (k = 0)",
            Figure::Fig7 => {
                "Sparse subnetworks: instability and accuracy against the rewind iteration k"
            }
            Figure::Fig8 => "Maximum test accuracy reached under rewinding, against density",
            Figure::AppB => "Error along the linear path for unpruned networks at selected k",
            Figure::AppC => "Error along the linear path for sparse IMP subnetworks at selected k",
            Figure::AppD => "L2 distance between the children of unpruned networks against k",
            Figure::AppE => "L2 distance between the children of sparse subnetworks against k",
        }
    }

    fn needs_dense(self) -> bool {
        matches!(
            self,
            Figure::Fig2 | Figure::Fig3 | Figure::Fig4 | Figure::AppB | Figure::AppD
        )
    }

    fn needs_sparse(self) -> bool {
        matches!(
            self,
            Figure::Fig6 | Figure::Fig7 | Figure::AppC | Figure::AppE
        )
    }
}

impl std::str::FromStr for Figure {
    type Err = Error;
    fn from_str(s: &str) -> Result<Figure> {
        let s = s.to_ascii_lowercase().replace(['-', '_'], "");
        Figure::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown figure `{s}`: use fig2..fig8, appb, appc, appd or appe"
                ))
            })
    }
}

/// The paper's small networks that `reproduce` knows: the Table 1 presets.
pub use train::PRESETS as MODELS;

/// Models a scale runs when none are named.
pub fn default_models(scale: Scale) -> Vec<String> {
    match scale {
        Scale::Paper => MODELS.iter().map(|m| m.to_string()).collect(),
        Scale::Quick | Scale::Smoke => ["lenet", "resnet20", "vgg16"]
            .iter()
            .map(|m| m.to_string())
            .collect(),
    }
}

/// The k values (iterations) of the paper's Figures 3 and 7 for the CIFAR-size networks.
pub const PAPER_KS: [u64; 6] = [0, 25, 100, 500, 2000, 10_000];

/// The k values (epochs) for Resnet-50 and Inception-v3, whose figures have a linear epoch
/// axis: dense networks become stable around epoch 18-20, sparse ones (rewinding) from about
/// epoch 4.
pub const PAPER_KS_EPOCHS_IMAGENET: [u64; 7] = [0, 2, 4, 6, 10, 14, 20];

/// Whether a preset is one of the ImageNet networks (one-shot pruning, k in epochs).
pub fn is_imagenet(preset: &str) -> bool {
    train::IMAGENET_PRESETS.contains(&preset)
}

/// The paper's k values of `preset` in iterations, and the k from which the paper finds the
/// dense network stable (2000 of 63K iterations; epoch 20 of 90 on ImageNet).
pub fn paper_ks(preset: &str, iterations_per_epoch: u64) -> (Vec<u64>, u64) {
    if is_imagenet(preset) {
        (
            PAPER_KS_EPOCHS_IMAGENET
                .iter()
                .map(|e| e * iterations_per_epoch)
                .collect(),
            20 * iterations_per_epoch,
        )
    } else {
        (PAPER_KS.to_vec(), 2000)
    }
}

/// Rounds of 20% pruning that reach the Table 1 density of a preset.
pub fn table1_rounds(preset: &str) -> usize {
    table1_pruning(preset).0
}

/// How IMP reaches the Table 1 density of a preset: (rounds, fraction pruned per round). The
/// CIFAR-size networks prune 20% per round; Resnet-50 and Inception-v3 prune one-shot to 30%.
pub fn table1_pruning(preset: &str) -> (usize, f64) {
    match preset {
        "lenet" => (15, 0.2),                    // 3.5%
        "resnet20" => (8, 0.2),                  // 16.8%
        "resnet20-low" => (11, 0.2),             // 8.6%
        "resnet20-warmup" => (12, 0.2),          // 6.9%
        "vgg16" | "vgg16-warmup" => (19, 0.2),   // 1.4% (Table 1: 1.5%)
        "vgg16-low" => (13, 0.2),                // 5.5%
        "resnet50" | "inception-v3" => (1, 0.7), // 30%, one-shot
        _ => (8, 0.2),
    }
}

/// Everything one network's experiments use at one scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSetup {
    pub preset: String,
    /// The recipe as run (length, width and dataset already changed for the scale).
    pub recipe: Recipe,
    /// The dataset of the preset when another was substituted for it.
    pub substituted_for: Option<DatasetName>,
    pub eval: EvalConfig,
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
    pub points: usize,
    pub curve_eval: EvalConfig,
    /// Pruning rounds to the Table 1 density, and the fraction pruned per round.
    pub levels: usize,
    pub fraction: f64,
    /// Levels with baselines at k = 0 (Figure 5); the last level always has them.
    pub baseline_levels: Vec<usize>,
    pub rule: PruneRule,
    pub bn_policy: BnPolicy,
    pub total_steps: u64,
    pub iterations_per_epoch: u64,
    /// What differs from the paper, in words.
    pub cuts: Vec<String>,
}

impl ModelSetup {
    /// The density IMP reaches.
    pub fn target_density(&self) -> f64 {
        (1.0 - self.fraction).powi(self.levels as i32)
    }
}

/// What to reproduce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproduceConfig {
    pub scale: Scale,
    pub models: Vec<String>,
    pub figures: Vec<Figure>,
    /// (dataset of the paper, dataset used instead).
    pub substitutes: Vec<(DatasetName, DatasetName)>,
    pub bn_policy: BnPolicy,
}

impl ReproduceConfig {
    pub fn new(scale: Scale) -> ReproduceConfig {
        ReproduceConfig {
            scale,
            models: default_models(scale),
            figures: Figure::ALL.to_vec(),
            substitutes: vec![],
            bn_policy: BnPolicy::Interpolate,
        }
    }

    fn wants(&self, f: impl Fn(Figure) -> bool) -> bool {
        self.figures.iter().any(|&x| f(x))
    }

    /// The settings of `preset` at this scale.
    pub fn setup(&self, preset: &str, data: &DataCache) -> Result<ModelSetup> {
        if !MODELS.contains(&preset) {
            return Err(Error::Invalid(format!(
                "reproduce knows the networks {}; `{preset}` is not one of them",
                MODELS.join(", ")
            )));
        }
        let mut recipe = Recipe::preset(preset)?;
        let mut cuts = Vec::new();
        let paper_dataset = recipe.data.dataset;
        let substituted_for = self
            .substitutes
            .iter()
            .find(|(from, _)| *from == paper_dataset)
            .map(|(_, to)| {
                recipe.data.dataset = *to;
                cuts.push(format!("trained on {to} instead of {paper_dataset}"));
                paper_dataset
            });
        let lenet = preset == "lenet";
        let scale = self.scale;
        // Width and length first: iterations per epoch depend on the dataset only.
        match (scale, &recipe.model) {
            (Scale::Paper, _) | (_, ModelConfig::Lenet { .. }) => {}
            (Scale::Quick, ModelConfig::Resnet { depth, .. }) => {
                recipe.model = ModelConfig::Resnet {
                    depth: *depth,
                    width: 8,
                };
                cuts.push("Resnet-20 at half width (8/16/32 channels)".into());
            }
            (Scale::Smoke, ModelConfig::Resnet { .. }) => {
                recipe.model = ModelConfig::Resnet { depth: 8, width: 4 };
                cuts.push("Resnet-8 at width 4 instead of Resnet-20".into());
            }
            (Scale::Quick, ModelConfig::Vgg16 { .. }) => {
                recipe.model = ModelConfig::Vgg16 { width_divisor: 8 };
                cuts.push("VGG-16 at 1/8 width (8..64 channels)".into());
            }
            (Scale::Smoke, ModelConfig::Vgg16 { .. }) => {
                recipe.model = ModelConfig::Vgg16 { width_divisor: 16 };
                cuts.push("VGG-16 at 1/16 width".into());
            }
            (_, &ModelConfig::ImagenetResnet { depth, .. }) => {
                let (width, size, batch) = if scale == Scale::Quick {
                    (16, 112, 128)
                } else {
                    (4, 64, 16)
                };
                recipe.model = ModelConfig::ImagenetResnet { depth, width };
                cuts.push(format!(
                    "Resnet-{depth} at width {width} (of 64), {size}x{size} crops, batch {batch} instead of 1024"
                ));
                recipe.data = train::DataConfig {
                    image_size: Some(size),
                    batch_size: batch,
                    micro_batches: 1,
                    ..recipe.data
                };
            }
            (_, ModelConfig::InceptionV3 { .. }) => {
                let (size, batch) = if scale == Scale::Quick {
                    (150, 128)
                } else {
                    (75, 16)
                };
                cuts.push(format!(
                    "Inception-v3 on {size}x{size} crops (auxiliary head inactive below 299), batch {batch} instead of 1024"
                ));
                recipe.data = train::DataConfig {
                    image_size: Some(size),
                    batch_size: batch,
                    micro_batches: 1,
                    ..recipe.data
                };
            }
        }
        let ipe = data.iterations_per_epoch(&recipe)?;
        let paper_steps = recipe.training_steps.resolve(ipe);
        let steps = match (scale, lenet) {
            (Scale::Paper, _) | (Scale::Quick, true) => paper_steps,
            (Scale::Quick, false) if matches!(recipe.model, ModelConfig::Resnet { .. }) => 200,
            (Scale::Quick, false) => 300,
            (Scale::Smoke, true) => 60,
            (Scale::Smoke, false) => 16,
        };
        if steps != paper_steps {
            recipe = recipe.with_length(Steps::iterations(steps), ipe);
            cuts.push(format!(
                "{steps} training iterations instead of {paper_steps} (schedule scaled to the length)"
            ));
        }
        let factor = steps as f64 / paper_steps as f64;
        let scaled_ks = |ks: &[u64]| -> Vec<u64> {
            let mut out: Vec<u64> = ks
                .iter()
                .map(|&k| (k as f64 * factor).round() as u64)
                .filter(|&k| k < steps)
                .collect();
            out.dedup();
            out
        };
        let (init_seeds, data_seeds, parent_data_seed) = match scale {
            Scale::Paper => (vec![1, 2, 3], vec![1, 2, 3], 0),
            Scale::Quick | Scale::Smoke => (vec![1], vec![1, 2], 1),
        };
        if scale != Scale::Paper {
            cuts.push(
                "1 init x 2 data orders (1 pair per k) instead of 3 x 3; the parent's order is the first child's"
                    .into(),
            );
        }
        let (unscaled_ks, paper_stable_k) = paper_ks(preset, ipe);
        let paper_ks = scaled_ks(&unscaled_ks);
        // The paper's "stable" k (2000 of 63K iterations), scaled to the length.
        let stable_k = paper_ks
            .iter()
            .copied()
            .find(|&k| k as f64 >= (paper_stable_k as f64 * factor).round());
        let dense_ks = match scale {
            Scale::Paper => paper_ks.clone(),
            Scale::Quick if lenet => vec![0, 100, 2000],
            Scale::Quick => {
                // k = 0, the stable k and the largest.
                let mut picked = vec![0];
                picked.extend(stable_k);
                picked.extend(paper_ks.last().copied());
                picked.dedup();
                picked
            }
            Scale::Smoke => vec![0, steps / 4],
        };
        let sparse_ks = match scale {
            Scale::Paper => paper_ks.clone(),
            // Lenet is stable at k = 0 already: rewinding adds little to its story.
            Scale::Quick if lenet => vec![0],
            Scale::Quick => std::iter::once(0).chain(stable_k).collect(),
            Scale::Smoke => vec![0, steps / 4],
        };
        let mut sparse_ks = sparse_ks;
        sparse_ks.dedup();
        if scale != Scale::Paper {
            cuts.push(format!(
                "k values: {dense_ks:?} (dense), {sparse_ks:?} (sparse) instead of the paper's {unscaled_ks:?}"
            ));
        }
        let (paper_rounds, paper_fraction) = table1_pruning(preset);
        let (levels, fraction) = match scale {
            Scale::Paper => (paper_rounds, paper_fraction),
            Scale::Quick | Scale::Smoke => {
                let levels = if scale == Scale::Smoke {
                    paper_rounds.min(2)
                } else {
                    paper_rounds.div_ceil(4)
                };
                let density = (1.0 - paper_fraction).powi(paper_rounds as i32);
                (levels, 1.0 - density.powf(1.0 / levels as f64))
            }
        };
        if (levels, fraction) != (paper_rounds, paper_fraction) {
            cuts.push(format!(
                "IMP in {levels} rounds of {:.1}% instead of {paper_rounds} rounds of {:.0}% (same final density)",
                100.0 * fraction,
                100.0 * paper_fraction
            ));
        }
        let baseline_levels: Vec<usize> = match scale {
            Scale::Paper => (1..=levels).collect(),
            Scale::Quick if lenet => vec![2, levels],
            Scale::Quick => vec![levels.div_ceil(2), levels],
            Scale::Smoke => (1..=levels).collect(),
        };
        let (eval, curve_eval, points) = match scale {
            Scale::Paper => (
                EvalConfig::default(),
                EvalConfig {
                    every: None,
                    ..EvalConfig::default()
                },
                30,
            ),
            Scale::Quick => {
                let eval = EvalConfig {
                    every: Some(Steps::iterations(if lenet { 4000 } else { 100 })),
                    train_subset: Some(if lenet { 10_000 } else { 2000 }),
                    test_subset: if lenet { None } else { Some(2000) },
                    batch_size: 1000,
                };
                if !lenet {
                    cuts.push("accuracy on the first 2,000 test and train examples".into());
                }
                let points = if lenet { 30 } else { 12 };
                if points != 30 {
                    cuts.push(format!("{points} interpolation points instead of 30"));
                }
                (
                    eval.clone(),
                    EvalConfig {
                        every: None,
                        ..eval
                    },
                    points,
                )
            }
            Scale::Smoke => {
                let eval = EvalConfig {
                    every: None,
                    train_subset: Some(200),
                    test_subset: Some(200),
                    batch_size: 200,
                };
                cuts.push("accuracy on 200 test and train examples, 5 interpolation points".into());
                (eval.clone(), eval, 5)
            }
        };
        let throughout_every = match scale {
            Scale::Smoke => steps / 2,
            Scale::Quick if !lenet => steps / 4,
            _ => (steps / 8).max(1),
        };
        if scale != Scale::Paper {
            cuts.push(format!(
                "Figure 4 interpolates the children every {throughout_every} iterations"
            ));
        }
        Ok(ModelSetup {
            preset: preset.to_string(),
            rule: PruneRule {
                unpruned_layers: recipe.model.default_unpruned_layers(),
            },
            recipe,
            substituted_for,
            eval,
            init_seeds,
            data_seeds,
            parent_data_seed,
            dense_ks,
            sparse_ks,
            throughout_every,
            points,
            curve_eval,
            levels,
            fraction,
            baseline_levels,
            bn_policy: self.bn_policy,
            total_steps: steps,
            iterations_per_epoch: ipe,
            cuts,
        })
    }
}

/// The runs of one network's experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRuns {
    pub setup: ModelSetup,
    pub dense_pairs: Vec<PairRuns>,
    /// One IMP experiment per (rewind k, init seed).
    pub imp: Vec<(u64, u64, ImpRuns)>,
    /// Sparse analyses: (k, branch, pairs); branch `None` is IMP.
    pub sparse_pairs: Vec<(u64, Option<Baseline>, Vec<PairRuns>)>,
}

/// Plans every run of `config` (nothing is trained).
pub fn plan(config: &ReproduceConfig, data: &DataCache) -> Result<(Plan, Vec<ModelRuns>)> {
    let mut plan = Plan::new();
    let mut models = Vec::new();
    for preset in &config.models {
        let setup = config.setup(preset, data)?;
        models.push(plan_model(config, setup, &mut plan)?);
    }
    Ok((plan, models))
}

fn plan_model(config: &ReproduceConfig, setup: ModelSetup, plan: &mut Plan) -> Result<ModelRuns> {
    let dense_needed = config.wants(Figure::needs_dense);
    let imp_needed = config.wants(|f| matches!(f, Figure::Fig5 | Figure::Fig8))
        || config.wants(Figure::needs_sparse);
    let instability = InstabilityConfig {
        data_seeds: setup.data_seeds.clone(),
        points: setup.points,
        bn_policy: setup.bn_policy,
        eval: setup.curve_eval.clone(),
        throughout_every: config
            .figures
            .contains(&Figure::Fig4)
            .then_some(setup.throughout_every),
    };
    let mut dense_pairs = Vec::new();
    if dense_needed {
        let parents = setup
            .init_seeds
            .iter()
            .map(|&init| {
                Ok(ParentRun {
                    init_seed: init,
                    run: plan.train_from_init(
                        &setup.recipe,
                        init,
                        setup.parent_data_seed,
                        &setup.eval,
                        &setup.rule,
                    )?,
                    ks: setup.dense_ks.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        dense_pairs = instability.plan(plan, &parents, setup.total_steps)?;
    }
    let mut imp = Vec::new();
    let mut sparse_pairs = Vec::new();
    if imp_needed {
        let sparse_instability = InstabilityConfig {
            throughout_every: None,
            ..instability.clone()
        };
        for &k in &setup.sparse_ks {
            let mut branches: Vec<(Option<Baseline>, Vec<ParentRun>)> = vec![(None, vec![])];
            branches.extend(Baseline::ALL.iter().map(|b| (Some(*b), vec![])));
            for &init in &setup.init_seeds {
                let experiment = ImpConfig {
                    recipe: setup.recipe.clone(),
                    eval: setup.eval.clone(),
                    init_seed: init,
                    data_seed: setup.parent_data_seed,
                    rewind: k,
                    levels: setup.levels,
                    fraction: setup.fraction,
                    rule: setup.rule.clone(),
                    optimizer_at_rewind: OptimizerAtRewind::Fresh,
                    baselines: Baseline::ALL.to_vec(),
                    baseline_levels: if k == 0 {
                        setup.baseline_levels.clone()
                    } else {
                        vec![setup.levels]
                    },
                    baseline_seed: 1000 + init,
                };
                let runs = experiment.plan(plan)?;
                for (branch, parents) in branches.iter_mut() {
                    if let Some(run) = runs.run(setup.levels, *branch) {
                        parents.push(ParentRun {
                            init_seed: init,
                            run: run.clone(),
                            ks: vec![k],
                        });
                    }
                }
                imp.push((k, init, runs));
            }
            if config.wants(Figure::needs_sparse) {
                for (branch, parents) in branches {
                    let pairs = sparse_instability.plan(plan, &parents, setup.total_steps)?;
                    sparse_pairs.push((k, branch, pairs));
                }
            }
        }
    }
    Ok(ModelRuns {
        setup,
        dense_pairs,
        imp,
        sparse_pairs,
    })
}

/// Accuracy of one branch at one level, over inits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    pub level: usize,
    pub branch: String,
    pub density: f64,
    /// Test accuracy in %.
    pub test_accuracy: MeanStd,
}

/// IMP at one rewind step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpSeries {
    pub k: u64,
    pub levels: Vec<LevelSummary>,
    pub runs: Vec<LevelResult>,
}

/// A sparse instability analysis at one rewind step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseAnalysis {
    pub k: u64,
    pub branch: String,
    pub density: f64,
    pub summary: InstabilitySummary,
}

/// Everything the figures and the report of one network show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResults {
    pub setup: ModelSetup,
    /// Test accuracy (%) of the dense network at the end of training: the k = 0 children (all
    /// inits and data orders) when there are two or more, else the dense IMP runs.
    pub dense_accuracy: Option<MeanStd>,
    pub dense: Option<InstabilitySummary>,
    pub imp: Vec<ImpSeries>,
    pub sparse: Vec<SparseAnalysis>,
}

/// Compute time of one kind of run of one network (see [`crate::runs::run_kind`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeShare {
    pub network: String,
    pub kind: String,
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
}

/// Reads every planned run back from the store (all must be finished).
pub fn collect(
    config: &ReproduceConfig,
    models: &[ModelRuns],
    plan: &Plan,
    store: &Store,
    started: Instant,
) -> Result<Results> {
    let mut out = Vec::new();
    for m in models {
        let dense = if m.dense_pairs.is_empty() {
            None
        } else {
            Some(instability_summary(store, &m.dense_pairs)?)
        };
        let mut imp = Vec::new();
        let mut ks: Vec<u64> = m.imp.iter().map(|(k, _, _)| *k).collect();
        ks.dedup();
        for k in ks {
            let mut runs = Vec::new();
            for (_, _, r) in m.imp.iter().filter(|(x, _, _)| *x == k) {
                runs.extend(imp_results(store, r)?);
            }
            imp.push(ImpSeries {
                k,
                levels: summarise_levels(&runs),
                runs,
            });
        }
        // The dense networks trained from k = 0 (every init and data order) when there are
        // several, else the dense IMP runs.
        let dense_accuracy = dense
            .as_ref()
            .and_then(|d| d.per_k.iter().find(|k| k.k == 0))
            .map(|k| k.child_test_accuracy)
            .filter(|a| a.n >= 2)
            .or_else(|| {
                imp.iter()
                    .find(|s| s.k == 0)
                    .and_then(|s| s.levels.iter().find(|l| l.level == 0 && l.branch == "imp"))
                    .map(|l| l.test_accuracy)
            });
        let sparse = m
            .sparse_pairs
            .iter()
            .map(|(k, branch, pairs)| {
                let branch = branch.map_or("imp", |b| b.as_str()).to_string();
                let density = imp
                    .iter()
                    .find(|s| s.k == *k)
                    .and_then(|s| {
                        s.levels
                            .iter()
                            .find(|l| l.level == m.setup.levels && l.branch == branch)
                    })
                    .map_or(f64::NAN, |l| l.density);
                Ok(SparseAnalysis {
                    k: *k,
                    branch,
                    density,
                    summary: instability_summary(store, pairs)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(ModelResults {
            setup: m.setup.clone(),
            dense_accuracy,
            dense,
            imp,
            sparse,
        });
    }
    let time = time_by_kind(plan, store)?;
    let compute_seconds = time.iter().map(|t| t.seconds).sum();
    Ok(Results {
        config: config.clone(),
        models: out,
        backend: train::backend_name().to_string(),
        git_commit: git_commit(),
        wall_seconds: started.elapsed().as_secs_f64(),
        compute_seconds,
        time,
        runs: plan.len(),
    })
}

/// Recorded compute time of the plan's runs, by network and kind of run.
fn time_by_kind(plan: &Plan, store: &Store) -> Result<Vec<TimeShare>> {
    use crate::runs::{Job, PairResult, TrainResult, run_kind};
    let mut shares: BTreeMap<(String, &'static str), TimeShare> = BTreeMap::new();
    for id in plan.ids() {
        let Some(job) = plan.job(id) else { continue };
        let (network, seconds) = match job {
            Job::Train(spec) => (
                spec.recipe.name.clone(),
                store.finished::<TrainResult>(id)?.wall_seconds,
            ),
            Job::Pair(pair) => (
                plan.train_spec(&pair.a)
                    .map_or_else(|_| "?".to_string(), |s| s.recipe.name.clone()),
                store.finished::<PairResult>(id)?.wall_seconds,
            ),
        };
        let kind = run_kind(job);
        let share = shares
            .entry((network.clone(), kind))
            .or_insert_with(|| TimeShare {
                network,
                kind: kind.to_string(),
                runs: 0,
                seconds: 0.0,
            });
        share.runs += 1;
        share.seconds += seconds;
    }
    Ok(shares.into_values().collect())
}

fn summarise_levels(runs: &[LevelResult]) -> Vec<LevelSummary> {
    let mut keys: Vec<(usize, String)> = runs.iter().map(|r| (r.level, r.branch.clone())).collect();
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

fn git_commit() -> String {
    if let Ok(commit) = std::env::var("REWIND_GIT_COMMIT") {
        return commit;
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Plans, runs (what the store does not hold yet) and reads back everything `config` needs:
/// the whole of `reproduce` apart from rendering.
pub fn run(
    config: &ReproduceConfig,
    runner: &crate::runs::Runner,
    workers: usize,
    progress: &indicatif::ProgressBar,
) -> Result<Results> {
    let started = Instant::now();
    let (plan, models) = plan(config, &runner.data)?;
    runner.execute_plan(&plan, workers, progress)?;
    collect(config, &models, &plan, &runner.store, started)
}
