//! What the pipeline knows of a network outside its model crate, one [`Entry`] each: its
//! recipe, how IMP reaches its density, its k values and their unit, the paper's numbers (if
//! any), and what the smoke, quick and medium scales cut. The rest of the code is generic over
//! entries.
//!
//! The paper's networks are the `paper` crate's table of entries. A network of your own is an
//! [`Entry`] of your own (`paper: None`), `ModelConfig::External` in its recipe and a
//! [`crate::models::ModelFactory`] (see `examples/custom-model`).

pub mod scales;

use std::borrow::Cow;

use data::DatasetName;
use nets::ModelConfig;
use results::{KUnit, PaperReference, Scale};
use train::Recipe;

pub use self::scales::{ScalePolicy, policy};
use crate::{Error, Result};

/// One network: the paper's or your own.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name on the command line, in recipes and in reports: `resnet20`.
    pub name: &'static str,
    /// How the paper names it: "Resnet-20 Low".
    pub title: &'static str,
    /// Its Table 1 recipe.
    pub recipe: fn() -> Recipe,
    /// How IMP reaches the Table 1 density.
    pub pruning: Pruning,
    /// The paper's k values.
    pub ks: PaperKs,
    /// What the paper reports (`None`: a network of your own, which the report then
    /// describes without the paper's claims).
    pub paper: Option<PaperNumbers>,
    /// Whether `reproduce` runs it when no network is named at smoke and quick scale (at paper
    /// scale it runs every entry, at medium scale those with a medium cut).
    pub in_quick_set: bool,
    /// What the smoke scale changes.
    pub smoke: Cut,
    /// What the quick scale changes.
    pub quick: Cut,
    /// What the medium scale changes (`None`: no medium cut has been piloted for the network;
    /// the ones with a cut are the medium scale's default set).
    pub medium: Option<Cut>,
}

/// IMP's schedule: `rounds` rounds, each pruning `fraction` of the surviving weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pruning {
    pub rounds: usize,
    pub fraction: f64,
}

impl Pruning {
    /// 20% of the surviving weights per round (the CIFAR-size networks).
    pub const fn rounds_of_20_percent(rounds: usize) -> Pruning {
        Pruning {
            rounds,
            fraction: 0.2,
        }
    }

    /// One round straight to `density` (Resnet-50 and Inception-v3: 30%).
    pub const fn one_shot_to(density: f64) -> Pruning {
        Pruning {
            rounds: 1,
            fraction: 1.0 - density,
        }
    }

    pub fn is_one_shot(self) -> bool {
        self.rounds == 1
    }

    /// The density IMP reaches.
    pub fn density(self) -> f64 {
        (1.0 - self.fraction).powi(self.rounds as i32)
    }
}

/// The k values of the paper's Figures 3 and 7 for a network.
#[derive(Debug, Clone, Copy)]
pub struct PaperKs {
    /// In `unit`.
    pub values: &'static [u64],
    pub unit: KUnit,
    /// The k from which the paper finds the dense network stable, in `unit`; the shortened
    /// scales keep the k nearest to it (scaled to their length).
    pub stable_from: u64,
}

impl PaperKs {
    /// The k values (and the stable k) in iterations.
    pub fn iterations(&self, iterations_per_epoch: u64) -> (Vec<u64>, u64) {
        let per = match self.unit {
            KUnit::Iterations => 1,
            KUnit::Epochs => iterations_per_epoch,
        };
        (
            self.values.iter().map(|k| k * per).collect(),
            self.stable_from * per,
        )
    }
}

/// What the paper reports for a network (SPEC.md sections 3 and 5).
#[derive(Debug, Clone, Copy)]
pub struct PaperNumbers {
    pub dataset: DatasetName,
    /// Test accuracy (%): mean and std.
    pub accuracy: (f64, f64),
    /// Table 1 IMP density (%).
    pub density: f64,
    pub stable_at_init: bool,
    pub stable_from: &'static str,
    pub imp_matching_at_init: bool,
    pub matching_from: &'static str,
    /// `stable_from` as a fraction of training.
    pub stable_from_fraction: f64,
    /// `matching_from` as a fraction of training (`None`: the paper does not say).
    pub matching_from_fraction: Option<f64>,
    /// The k before `stable_from` on the paper's grid, as a fraction of training: the paper's
    /// onset is the bound (after, from] (`None`: from k = 0, or not known).
    pub stable_after_fraction: Option<f64>,
    /// The k before `matching_from` on the paper's grid, as a fraction of training.
    pub matching_after_fraction: Option<f64>,
    pub random_pruning: PaperBaseline,
    pub reinit: PaperBaseline,
}

/// What the paper finds for one baseline of a network.
#[derive(Debug, Clone, Copy)]
pub struct PaperBaseline {
    /// Stable at the rewind k (`None`: no claim).
    pub stable: Option<bool>,
    pub matching: bool,
    pub words: &'static str,
}

impl PaperBaseline {
    fn claim(&self) -> results::BaselineClaim {
        results::BaselineClaim {
            stable: self.stable,
            matching: self.matching,
            words: Cow::Borrowed(self.words),
        }
    }
}

impl PaperNumbers {
    pub fn reference(&self) -> PaperReference {
        PaperReference {
            dataset: self.dataset,
            accuracy: self.accuracy,
            density: self.density,
            stable_at_init: self.stable_at_init,
            stable_from: Cow::Borrowed(self.stable_from),
            imp_matching_at_init: self.imp_matching_at_init,
            matching_from: Cow::Borrowed(self.matching_from),
            stable_from_fraction: Some(self.stable_from_fraction),
            matching_from_fraction: self.matching_from_fraction,
            stable_after_fraction: self.stable_after_fraction,
            matching_after_fraction: self.matching_after_fraction,
            random_pruning: Some(self.random_pruning.claim()),
            reinit: Some(self.reinit.claim()),
        }
    }
}

/// How a smaller scale shrinks a network's experiments. Seeds, k scaling, pruning rounds and
/// the wording of every cut are the same for all networks (see `reproduce::setup`).
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    /// The architecture as run (`None`: the paper's).
    pub model: Option<fn() -> ModelConfig>,
    /// Crops and batch size instead of the recipe's, in one micro-batch (ImageNet networks).
    pub images: Option<ImageCut>,
    /// What `model` and `images` change, in words.
    pub note: Option<&'static str>,
    /// Where another dataset stands in for the paper's, train it with that dataset's own
    /// augmentation (`data::Augmentation::default_for`) instead of the recipe's.
    pub substitute_own_augmentation: bool,
    /// Training iterations (`None`: the paper's length).
    pub steps: Option<u64>,
    /// IMP's rounds to the Table 1 density (`None`: the scale's rule, see `reproduce::setup`).
    pub imp_rounds: Option<usize>,
    pub dense_ks: KChoice,
    pub sparse_ks: KChoice,
    /// The sparse k at which the baselines (random pruning, reinitialisation) run (`None`:
    /// every sparse k).
    pub baseline_ks: Option<KChoice>,
    pub eval: EvalCut,
    /// Words for the evaluation cuts.
    pub eval_notes: &'static [&'static str],
    /// Figure 4 interpolates the children every `steps / throughout_divisor` iterations.
    pub throughout_divisor: u64,
    /// Also train the dense network (first init, parent's data order) for this many times
    /// `steps`, to show how far from trained the cut's length leaves it: "matching" means
    /// little beside a dense network that is far from trained.
    pub length_check: Option<u64>,
}

/// Crop side and batch size of a shortened ImageNet run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageCut {
    pub size: usize,
    pub batch: usize,
}

/// Which of the paper's k values (scaled to the run's length) a scale measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KChoice {
    /// These iterations.
    Listed(&'static [u64]),
    /// 0, the stable k and the largest.
    ZeroStableLast,
    /// 0 and the stable k.
    ZeroStable,
    /// 0 and a quarter of training.
    ZeroQuarter,
    /// These fractions of training, rounded to iterations.
    Fractions(&'static [f64]),
}

/// Evaluation of a shortened run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalCut {
    /// Evaluate every this many iterations (and at the end).
    pub every: Option<u64>,
    pub train_subset: usize,
    pub test_subset: Option<usize>,
    /// Interpolation paths are evaluated on the first this many train and test examples
    /// (`None`: the subsets above).
    pub curve_subset: Option<usize>,
    pub batch_size: usize,
    /// Points on an interpolation path.
    pub points: usize,
}

impl Entry {
    /// What `scale` changes (`None` at paper scale: Table 1 as published); an error where the
    /// entry has no cut for `scale`.
    pub fn cut(&self, scale: Scale) -> Result<Option<&Cut>> {
        Ok(match scale {
            Scale::Smoke => Some(&self.smoke),
            Scale::Quick => Some(&self.quick),
            Scale::Medium => Some(self.medium.as_ref().ok_or_else(|| Error::NoCut {
                name: self.name.to_string(),
                scale,
            })?),
            Scale::Paper => None,
        })
    }
}
