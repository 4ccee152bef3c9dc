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

/// The Table 1 presets.
pub const PRESETS: [&str; 9] = [
    "lenet",
    "resnet20",
    "resnet20-low",
    "resnet20-warmup",
    "vgg16",
    "vgg16-low",
    "vgg16-warmup",
    "resnet50",
    "inception-v3",
];

/// The presets of the ImageNet networks (one-shot pruning, epoch-based k).
pub const IMAGENET_PRESETS: [&str; 2] = ["resnet50", "inception-v3"];

impl Recipe {
    /// A Table 1 recipe by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Recipe> {
        let cifar = |model: ModelConfig, lr: f64, warmup: bool| Recipe {
            name: name.to_string(),
            model,
            data: DataConfig::new(
                DatasetName::Cifar10,
                128,
                DatasetName::Cifar10.default_augmentation(),
            ),
            training_steps: Steps::iterations(63_000),
            optimizer: OptimizerConfig::Sgd {
                momentum: 0.9,
                weight_decay: 1e-4,
                nesterov: false,
            },
            schedule: LrSchedule {
                warmup: warmup.then_some(Steps::iterations(30_000)),
                milestones: vec![Steps::iterations(32_000), Steps::iterations(48_000)],
                ..LrSchedule::constant(lr)
            },
            bn_init: BnInit::Uniform,
        };
        let imagenet = |micro_batches: usize| DataConfig {
            micro_batches,
            ..DataConfig::new(
                DatasetName::Imagenet,
                1024,
                DatasetName::Imagenet.default_augmentation(),
            )
        };
        Ok(match name {
            "lenet" => Recipe {
                name: name.to_string(),
                model: ModelConfig::lenet_300_100(),
                data: DataConfig::new(DatasetName::Mnist, 60, Augmentation::None),
                training_steps: Steps::iterations(24_000),
                optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
                schedule: LrSchedule::constant(1.2e-3),
                bn_init: BnInit::Uniform,
            },
            "resnet20" => cifar(ModelConfig::resnet20(), 0.1, false),
            "resnet20-low" => cifar(ModelConfig::resnet20(), 0.01, false),
            "resnet20-warmup" => cifar(ModelConfig::resnet20(), 0.03, true),
            "vgg16" => cifar(ModelConfig::vgg16(), 0.1, false),
            "vgg16-low" => cifar(ModelConfig::vgg16(), 0.01, false),
            "vgg16-warmup" => cifar(ModelConfig::vgg16(), 0.1, true),
            // Batch 1024 as 4 micro-batches of 256 (one per GPU of a 4-GPU node, or
            // accumulated on one).
            "resnet50" => Recipe {
                name: name.to_string(),
                model: ModelConfig::resnet50(),
                data: imagenet(4),
                training_steps: Steps::epochs(90),
                optimizer: OptimizerConfig::Sgd {
                    momentum: 0.9,
                    weight_decay: 1e-4,
                    nesterov: false,
                },
                schedule: LrSchedule {
                    warmup: Some(Steps::epochs(5)),
                    milestones: vec![Steps::epochs(30), Steps::epochs(60), Steps::epochs(80)],
                    ..LrSchedule::constant(0.4)
                },
                bn_init: BnInit::Ones,
            },
            // 299x299 crops: 8 micro-batches of 128.
            "inception-v3" => Recipe {
                name: name.to_string(),
                model: ModelConfig::inception_v3(),
                data: imagenet(8),
                training_steps: Steps::epochs(171),
                optimizer: OptimizerConfig::Sgd {
                    momentum: 0.9,
                    weight_decay: 1e-4,
                    nesterov: false,
                },
                schedule: LrSchedule {
                    final_lr: Some(0.005),
                    ..LrSchedule::constant(0.03)
                },
                bn_init: BnInit::Ones,
            },
            other => return Err(Error::UnknownPreset(other.to_string(), PRESETS.join(", "))),
        })
    }

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
            let min = self.model.min_image_size();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_table_1() {
        for name in PRESETS {
            let r = Recipe::preset(name).expect(name);
            r.validate().expect("valid");
            let text = toml::to_string(&r).expect("toml");
            assert_eq!(toml::from_str::<Recipe>(&text).expect("parse"), r, "{text}");
        }
        let lenet = Recipe::preset("lenet").expect("lenet");
        assert_eq!(
            (lenet.data.batch_size, lenet.training_steps.resolve(1000)),
            (60, 24_000)
        );
        assert_eq!(lenet.schedule.lr_at(20_000, 24_000, 1000), 1.2e-3);
        let warm = Recipe::preset("resnet20-warmup").expect("warmup");
        assert!((warm.schedule.lr_at(15_000, 63_000, 391) - 0.015).abs() < 1e-12);
        assert!((warm.schedule.lr_at(50_000, 63_000, 391) - 0.0003).abs() < 1e-12);
        assert!(matches!(
            Recipe::preset("resnet56"),
            Err(Error::UnknownPreset(..))
        ));
        // ImageNet: 1,281,167 images in batches of 1024 are 1252 iterations per epoch.
        let r50 = Recipe::preset("resnet50").expect("resnet50");
        assert_eq!(r50.training_steps.resolve(1252), 90 * 1252);
        assert_eq!((r50.data.batch_size, r50.data.micro_batches), (1024, 4));
        assert!((r50.schedule.lr_at(0, 112_680, 1252) - 0.0).abs() < 1e-12);
        assert!((r50.schedule.lr_at(2 * 1252 + 626, 112_680, 1252) - 0.2).abs() < 1e-12);
        assert!((r50.schedule.lr_at(29 * 1252, 112_680, 1252) - 0.4).abs() < 1e-12);
        assert!((r50.schedule.lr_at(30 * 1252, 112_680, 1252) - 0.04).abs() < 1e-12);
        assert!((r50.schedule.lr_at(85 * 1252, 112_680, 1252) - 0.0004).abs() < 1e-9);
        let inc = Recipe::preset("inception-v3").expect("inception");
        let total = inc.training_steps.resolve(1252);
        assert_eq!(total, 171 * 1252);
        assert!((inc.schedule.lr_at(0, total, 1252) - 0.03).abs() < 1e-12);
        assert!((inc.schedule.lr_at(total / 2, total, 1252) - 0.0175).abs() < 1e-6);
        assert!((inc.schedule.lr_at(total, total, 1252) - 0.005).abs() < 1e-12);
        // Epoch-based positions such as the paper's k = 18 epochs.
        assert_eq!(Steps::parse("18ep").expect("18ep").resolve(1252), 22_536);
        let mut small = r50.clone();
        small.data.image_size = Some(16);
        assert!(matches!(small.validate(), Err(Error::Config(_))));
        small.data.image_size = Some(64);
        small.data.micro_batches = 2048;
        assert!(matches!(small.validate(), Err(Error::Config(_))));
        let short = Recipe::preset("resnet20")
            .expect("r")
            .with_length(Steps::iterations(630), 391);
        assert_eq!(
            short.schedule.milestones,
            vec![Steps::iterations(320), Steps::iterations(480)]
        );
    }
}
