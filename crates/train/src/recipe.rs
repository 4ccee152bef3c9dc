use burn::optim::ModuleOptimizer;
use data::{Augmentation, DatasetName};
use nets::{BnInit, ModelConfig};
use serde::{Deserialize, Serialize};

use crate::{Error, LrSchedule, Result, Steps};

/// The optimiser of a recipe. Defaults follow PyTorch (and so the paper): Adam with
/// epsilon 1e-8; SGD momentum without dampening; L2 weight decay added to the gradient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OptimizerConfig {
    Adam {
        #[serde(default)]
        weight_decay: f64,
    },
    Sgd {
        momentum: f64,
        weight_decay: f64,
        #[serde(default)]
        nesterov: bool,
    },
}

impl OptimizerConfig {
    /// The optimiser: `kernels`' Adam and SGD, the same update as burn's (and PyTorch's),
    /// computed in one fused pass on the CPU backend.
    pub fn init(&self) -> ModuleOptimizer {
        match *self {
            OptimizerConfig::Adam { weight_decay } => {
                kernels::optim::Adam::new(weight_decay as f32).init()
            }
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
            } => kernels::optim::Sgd {
                momentum: momentum as f32,
                weight_decay: weight_decay as f32,
                nesterov,
            }
            .init(),
        }
    }
}

/// Which data a recipe trains on and how it is batched and augmented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub dataset: DatasetName,
    pub batch_size: usize,
    pub augmentation: Augmentation,
    /// Side of the square crops fed to the network; by default the network's own input size
    /// (224 for Resnet-50, 299 for Inception-v3, 32 for the CIFAR nets). Smaller crops make
    /// cheap small-scale ImageNet runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Each batch is computed as this many consecutive micro-batches whose gradients are
    /// summed (weighted by size) before the one optimiser step: the same update as the whole
    /// batch at once, in less memory. Micro-batches are spread over the training devices when
    /// there are several (data parallelism); either way each is batch-normalised on its own,
    /// as every GPU of a data-parallel PyTorch run does, so the numbers depend on this setting
    /// and not on the number of devices.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub micro_batches: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl DataConfig {
    /// A batch of `batch_size` in one piece, at the network's own input size.
    pub fn new(dataset: DatasetName, batch_size: usize, augmentation: Augmentation) -> Self {
        DataConfig {
            dataset,
            batch_size,
            augmentation,
            image_size: None,
            micro_batches: 1,
        }
    }
}

/// A complete training recipe: network, data, length, optimiser and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub name: String,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub training_steps: Steps,
    pub optimizer: OptimizerConfig,
    pub schedule: LrSchedule,
    #[serde(default)]
    pub bn_init: BnInit,
}

impl Recipe {
    /// The recipe shortened (or lengthened) to `steps`, with warmup and milestones scaled by
    /// the same factor so the schedule keeps its shape.
    pub fn with_length(&self, steps: Steps, iterations_per_epoch: u64) -> Recipe {
        let old = self.training_steps.resolve(iterations_per_epoch).max(1);
        let new = steps.resolve(iterations_per_epoch);
        Recipe {
            training_steps: steps,
            schedule: self
                .schedule
                .scaled(new as f64 / old as f64, iterations_per_epoch),
            ..self.clone()
        }
    }

    /// Checks what can be checked without data.
    pub fn validate(&self) -> Result<()> {
        if self.data.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if self.data.micro_batches == 0 || self.data.micro_batches > self.data.batch_size {
            return Err(Error::Config(format!(
                "micro_batches must be between 1 and the batch size {}, got {}",
                self.data.batch_size, self.data.micro_batches
            )));
        }
        if let Some(size) = self.data.image_size {
            let min = self.model.architecture().min_image_size;
            if size < min {
                return Err(Error::Config(format!(
                    "image_size {size} is too small for {}: it needs at least {min}",
                    self.model.name()
                )));
            }
        }
        if !(self.schedule.base.is_finite() && self.schedule.base >= 0.0) {
            return Err(Error::Config(format!(
                "learning rate {} is not a finite non-negative number",
                self.schedule.base
            )));
        }
        if self.training_steps == Steps::default() {
            return Err(Error::Config("training_steps is zero".into()));
        }
        Ok(())
    }
}
