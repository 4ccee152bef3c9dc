//! What a run is configured with, the data it trains on, the hooks of the loop, and the state
//! and outcome of a run.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use data::{DatasetName, ImageSource, Split, Transform};
use serde::{Deserialize, Serialize};

use crate::{Divergence, Error, MetricRecord, Metrics, Recipe, Result, Steps};

/// How often a run evaluates, and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Evaluate every this many steps (and always at the end). `None`: only at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Steps>,
    /// Evaluate the training set on its first N examples (a fixed subset) instead of all;
    /// `Some(0)` skips the training-set evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// Evaluate on the first N test examples instead of all (small-scale runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_subset: Option<usize>,
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
}

fn default_eval_batch() -> usize {
    1000
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: Some(Steps::epochs(1)),
            train_subset: Some(10_000),
            test_subset: None,
            batch_size: default_eval_batch(),
        }
    }
}

/// Everything that determines a training run. Stored as `config.toml` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub recipe: Recipe,
    /// Seed of the initial weights.
    pub init_seed: u64,
    /// Seed of the data order and augmentation.
    pub data_seed: u64,
    #[serde(default)]
    pub eval: EvalConfig,
    /// Write a checkpoint every this many steps (the latest one is kept, older ones deleted
    /// unless listed in `keep_checkpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<Steps>,
    /// Steps whose checkpoints are kept for good (e.g. rewinding points). Step 0 (the
    /// initialisation) and the final step are always kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_checkpoints: Vec<Steps>,
    /// When a run whose loss stays finite but far above its early value stops.
    #[serde(default, skip_serializing_if = "Divergence::is_default")]
    pub divergence: Divergence,
}

impl TrainConfig {
    pub fn new(recipe: Recipe, init_seed: u64, data_seed: u64) -> Self {
        TrainConfig {
            recipe,
            init_seed,
            data_seed,
            eval: EvalConfig::default(),
            checkpoint_every: Some(Steps::epochs(1)),
            keep_checkpoints: vec![],
            divergence: Divergence::default(),
        }
    }
}

/// The data of a run: both splits and the transform that feeds them to the network.
#[derive(Clone)]
pub struct TrainData {
    pub dataset: DatasetName,
    pub train: ImageSource,
    pub test: ImageSource,
    pub transform: Transform,
    pub num_classes: usize,
}

impl TrainData {
    /// Loads the recipe's dataset from `data_dir` (downloading it if allowed) and builds the
    /// transform the recipe's network needs.
    pub fn load(recipe: &Recipe, data_dir: &Path, allow_download: bool) -> Result<TrainData> {
        let dataset = recipe.data.dataset;
        let train = data::load(dataset, data_dir, Split::Train, allow_download)?;
        let test = data::load(dataset, data_dir, Split::Test, allow_download)?;
        Self::from_sources(recipe, dataset, train, test)
    }

    /// Builds the transform for already-loaded sources.
    pub fn from_sources(
        recipe: &Recipe,
        dataset: DatasetName,
        train: ImageSource,
        test: ImageSource,
    ) -> Result<TrainData> {
        let first = train.get(0)?;
        let spec = dataset.spec();
        let native = spec
            .crop_side
            .unwrap_or_else(|| first.height.max(first.width));
        let (mean, std) = dataset.normalisation();
        if mean.len() != first.channels {
            return Err(Error::Config(format!(
                "{dataset} images have {} channels but its normalisation has {}",
                first.channels,
                mean.len()
            )));
        }
        let transform = Transform {
            size: recipe
                .data
                .image_size
                .unwrap_or_else(|| recipe.model.architecture().image_size.for_native(native)),
            mean,
            std,
            augmentation: recipe.data.augmentation,
        };
        Ok(TrainData {
            dataset,
            train,
            test,
            transform,
            num_classes: spec.classes,
        })
    }
}

/// Called by the loop; the `sparsity` crate re-applies masks in `after_step`.
pub trait TrainHooks<M> {
    /// After the optimiser update of step `step` (0-based); returns the model to continue with.
    fn after_step(&mut self, model: M, _step: u64) -> Result<M> {
        Ok(model)
    }
}

/// No hooks: plain training.
pub struct NoHooks;
impl<M> TrainHooks<M> for NoHooks {}

/// The state of a run in memory.
pub struct TrainState<M> {
    pub model: M,
    pub optimizer: ModuleOptimizer,
    /// Number of optimiser steps taken so far.
    pub step: u64,
    pub metrics: Vec<MetricRecord>,
}

/// What a finished run leaves behind.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub metrics: Metrics,
    /// True when the run was already complete and nothing was trained.
    pub reused: bool,
}

impl RunOutcome {
    pub fn final_record(&self) -> Option<&MetricRecord> {
        self.metrics.last()
    }
}
