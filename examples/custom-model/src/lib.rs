//! Bring your own model: a small residual CNN defined here, outside the workspace's model
//! crates, through instability analysis and IMP with rewinding, with the library API alone.
//!
//! What a network needs to go through the framework is [`nets::Classifier`] (a burn module
//! with a forward pass from images to logits). Everything else is generic:
//!
//! * `train::Trainer::run_from` trains any classifier from any starting state, checkpointed
//!   and resumable, with the recipe's data order, optimiser and schedule;
//! * `sparsity::Sparse` wraps it with pruning masks (`prune_magnitude`, `transplant` onto
//!   rewound weights, `MaskHook` to keep pruned weights at zero while training);
//! * `lmc::error_curve` interpolates two trained copies and measures the instability.
//!
//! [`run`] does Algorithm 1 (two children from the state at step k, different data orders)
//! and Algorithm 2 (prune, rewind to k, retrain) on MNIST.

use std::path::PathBuf;

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use data::{Augmentation, DatasetName};
use lmc::{BnPolicy, CurveData, ErrorCurve, Instability};
use nets::{BnInit, Classifier, ModelConfig};
use sparsity::{MaskHook, PruneRule, Sparse};
use train::{
    DataConfig, EvalConfig, LrSchedule, NoHooks, OptimizerConfig, Recipe, Steps, TrainConfig,
    TrainData, TrainState, Trainer,
};

/// A stride-2 stem, one residual block of two 3x3 conv-BN layers, global average pooling and
/// a linear classifier.
#[derive(Config, Debug)]
pub struct SmallResNetConfig {
    #[config(default = 1)]
    pub in_channels: usize,
    #[config(default = 16)]
    pub width: usize,
    #[config(default = 10)]
    pub num_classes: usize,
}

#[derive(Module, Debug)]
pub struct SmallResNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    fc: Linear,
}

impl SmallResNetConfig {
    pub fn init(&self, device: &Device) -> SmallResNet {
        let w = self.width;
        let conv = |from: usize, stride: usize| {
            Conv2dConfig::new([from, w], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device)
        };
        SmallResNet {
            stem: conv(self.in_channels, 2),
            stem_bn: BatchNormConfig::new(w).init(device),
            conv1: conv(w, 1),
            bn1: BatchNormConfig::new(w).init(device),
            conv2: conv(w, 1),
            bn2: BatchNormConfig::new(w).init(device),
            fc: LinearConfig::new(w, self.num_classes).init(device),
        }
    }
}

impl Classifier for SmallResNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = relu(self.stem_bn.forward(self.stem.forward(images)));
        let y = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let y = self.bn2.forward(self.conv2.forward(y));
        let x = relu(x + y);
        let pooled = x.mean_dim(3).mean_dim(2); // [batch, width, 1, 1]
        self.fc.forward(pooled.flatten(1, 3))
    }
}

/// What [`run`] does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holds `mnist/` (see `data::resolve_data_dir`).
    pub data_dir: PathBuf,
    pub allow_download: bool,
    /// Where the runs go (one directory per run, each resumable).
    pub out: PathBuf,
    /// Training iterations of every run.
    pub steps: u64,
    /// The branch and rewind step.
    pub k: u64,
    /// IMP rounds, each pruning `fraction` of the surviving weights.
    pub levels: usize,
    pub fraction: f64,
    /// Points on the interpolation path.
    pub points: usize,
    /// Test examples every evaluation uses.
    pub test_examples: usize,
}

impl Options {
    /// A run of a few minutes on two CPU cores.
    pub fn new(data_dir: PathBuf, out: PathBuf) -> Options {
        Options {
            data_dir,
            allow_download: true,
            out,
            steps: 1000,
            k: 100,
            levels: 3,
            fraction: 0.5,
            points: 11,
            test_examples: 10_000,
        }
    }
}

/// One IMP level.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub level: usize,
    /// Fraction of the prunable weights kept.
    pub density: f64,
    /// Test accuracy in [0, 1].
    pub test_accuracy: f32,
    /// Pruned weights that are not exactly zero after training (always 0).
    pub nonzero_pruned: usize,
}

/// What [`run`] measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Instability of the dense network from step k.
    pub instability: Instability,
    pub curve: ErrorCurve,
    /// Level 0 is the dense network.
    pub levels: Vec<Level>,
}

const INIT_SEED: u64 = 1;

/// The recipe: MNIST in batches of 60, SGD with momentum. The network is external to the
/// workspace, so the recipe names it and never builds it.
pub fn recipe(steps: u64) -> Recipe {
    Recipe {
        name: "small-resnet".into(),
        model: ModelConfig::External {
            name: "small-resnet".into(),
        },
        data: DataConfig::new(DatasetName::Mnist, 60, Augmentation::None),
        training_steps: Steps::iterations(steps),
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        schedule: LrSchedule::constant(0.05),
        bn_init: BnInit::Uniform,
    }
}

type Net = Sparse<SmallResNet>;

/// Instability analysis at k and IMP rewound to k, on MNIST.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(
        options.k < options.steps,
        "k must come before the end of training"
    );
    let recipe = recipe(options.steps);
    let data = TrainData::load(&recipe, &options.data_dir, options.allow_download)?;
    // Every conv and linear weight is prunable but the classifier's (as for Lenet and VGG).
    let rule = PruneRule {
        unpruned_layers: vec!["fc".into()],
    };
    let trainer = |data_seed: u64, keep: &[u64]| -> anyhow::Result<Trainer> {
        let mut config = TrainConfig::new(recipe.clone(), INIT_SEED, data_seed);
        config.eval = EvalConfig {
            every: None,
            train_subset: Some(0),
            test_subset: Some(options.test_examples),
            batch_size: 500,
        };
        config.keep_checkpoints = keep.iter().map(|&s| Steps::iterations(s)).collect();
        Ok(Trainer::new(config, data.clone(), &train::default_device())?.with_progress(false))
    };
    let build = |t: &Trainer| {
        let image = &t.data.transform;
        let model = SmallResNetConfig::new()
            .with_in_channels(image.channels())
            .with_num_classes(t.data.num_classes)
            .init(&t.device);
        nets::initialize(model, INIT_SEED, BnInit::Uniform)
    };
    let end = options.steps;

    // The parent: W_0 to W_T with data order 1, keeping W_k.
    let parent = trainer(1, &[options.k])?;
    let template = || -> train::Result<Net> { Ok(Sparse::dense(build(&parent), &rule)) };
    let parent_dir = options.out.join("parent");
    let dense = parent.run_from(
        &parent_dir,
        || {
            Ok(TrainState {
                model: template()?,
                optimizer: recipe.optimizer.init(),
                step: 0,
                metrics: vec![],
            })
        },
        template,
        &mut NoHooks,
    )?;
    let state_at =
        |dir: &std::path::Path, step: u64| parent.load_state_into(dir, step, template()?);

    // Algorithm 1: a second child from W_k (weights, BN buffers and optimiser state) with data
    // order 2; the first child is the parent's own continuation.
    let child = trainer(2, &[])?;
    let child_dir = options.out.join("child-data-2");
    child.run_from(
        &child_dir,
        || {
            let at_k = state_at(&parent_dir, options.k)?;
            Ok(TrainState {
                metrics: vec![],
                ..at_k
            })
        },
        template,
        &mut NoHooks,
    )?;
    let a = state_at(&parent_dir, end)?.model;
    let b = state_at(&child_dir, end)?.model;
    let curve = lmc::error_curve(
        &a,
        &b,
        options.points,
        BnPolicy::Interpolate,
        &CurveData {
            test: &data.test,
            train: &data.train,
            transform: &data.transform,
            train_subset: Some(0),
            test_subset: Some(options.test_examples),
            batch_size: 500,
            bn_batches: None,
        },
        &train::default_device(),
        Sparse::apply,
    )?;

    // Algorithm 2: prune the smallest weights of the last level's final network, rewind the
    // survivors to W_k, train from k to the end with the mask held (a fresh optimiser, as the
    // paper's code does after rewinding).
    let accuracy =
        |outcome: &train::RunOutcome| outcome.final_record().map_or(f32::NAN, |r| r.test_accuracy);
    let mut levels = vec![Level {
        level: 0,
        density: 1.0,
        test_accuracy: accuracy(&dense),
        nonzero_pruned: 0,
    }];
    let mut previous = parent_dir.clone();
    for level in 1..=options.levels {
        let dir = options.out.join(format!("imp-level-{level}"));
        let outcome = parent.run_from(
            &dir,
            || {
                let pruned = state_at(&previous, end)?
                    .model
                    .prune_magnitude(options.fraction)
                    .map_err(|e| train::Error::Start(Box::new(e)))?;
                let rewound = state_at(&parent_dir, options.k)?.model.model;
                let model = pruned
                    .transplant(rewound)
                    .map_err(|e| train::Error::Start(Box::new(e)))?;
                Ok(TrainState {
                    model,
                    optimizer: recipe.optimizer.init(),
                    step: options.k,
                    metrics: vec![],
                })
            },
            template,
            &mut MaskHook,
        )?;
        let trained = state_at(&dir, end)?.model;
        levels.push(Level {
            level,
            density: trained.density().fraction(),
            test_accuracy: accuracy(&outcome),
            nonzero_pruned: nonzero_pruned(&trained),
        });
        previous = dir;
    }
    Ok(Report {
        instability: curve.instability(),
        curve,
        levels,
    })
}

/// Weights whose mask is 0 but whose value is not exactly 0.
fn nonzero_pruned(net: &Net) -> usize {
    let weights = nets::params::tensor_values(&net.model);
    net.mask
        .to_host()
        .iter()
        .map(|(path, mask)| {
            weights
                .iter()
                .find(|(info, _)| info.path == *path)
                .map_or(0, |(_, w)| {
                    w.iter()
                        .zip(mask)
                        .filter(|(w, m)| **m == 0.0 && **w != 0.0)
                        .count()
                })
        })
        .sum()
}
