use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
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
    pub fn init(&self) -> ModuleOptimizer {
        let decay = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
        match *self {
            OptimizerConfig::Adam { weight_decay } => AdamConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(decay(weight_decay))
                .init(),
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
            } => SgdConfig::new()
                .with_momentum((momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                }))
                .with_weight_decay(decay(weight_decay))
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
pub const PRESETS: [&str; 7] = [
    "lenet",
    "resnet20",
    "resnet20-low",
    "resnet20-warmup",
    "vgg16",
    "vgg16-low",
    "vgg16-warmup",
];

impl Recipe {
    /// A Table 1 recipe by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Recipe> {
        let cifar = |model: ModelConfig, lr: f64, warmup: bool| Recipe {
            name: name.to_string(),
            model,
            data: DataConfig {
                dataset: DatasetName::Cifar10,
                batch_size: 128,
                augmentation: DatasetName::Cifar10.default_augmentation(),
            },
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
        Ok(match name {
            "lenet" => Recipe {
                name: name.to_string(),
                model: ModelConfig::lenet_300_100(),
                data: DataConfig {
                    dataset: DatasetName::Mnist,
                    batch_size: 60,
                    augmentation: Augmentation::None,
                },
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
        let short = Recipe::preset("resnet20")
            .expect("r")
            .with_length(Steps::iterations(630), 391);
        assert_eq!(
            short.schedule.milestones,
            vec![Steps::iterations(320), Steps::iterations(480)]
        );
    }
}
