//! Bring your own model: a small residual CNN defined here, outside the workspace's model
//! crates, through instability analysis and IMP with rewinding, by the same plans, store and
//! executor as the paper's networks.
//!
//! What a network needs is [`nets::Classifier`] (a burn module with a forward pass from images
//! to logits) and one [`ModelFactory`]: how to build it from the recipe's
//! `ModelConfig::External { name }`, and, for weight matching, which hidden units may be
//! permuted. Everything else is the framework's:
//!
//! * `experiments::imp::ImpConfig` and `experiments::instability::InstabilityConfig` plan the
//!   runs of Algorithms 2 and 1 (the dense parent is shared between them);
//! * `experiments::executor::Local` runs the plan in a content-addressed store: finished runs
//!   are reused, interrupted ones resume from their last checkpoint, bit-identically;
//! * `imp_results` and `instability_summary` read the measurements back.
//!
//! [`run`] does both on MNIST, and interpolates the children once more after weight matching.

use std::path::PathBuf;

use align::{Axis, Group, PermutationSpec};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use data::{Augmentation, DatasetName};
use experiments::executor::{Executor, Local};
use experiments::imp::{ImpConfig, LevelResult, imp_results};
use experiments::instability::{InstabilityConfig, ParentRun, instability_summary};
use experiments::models::{InputShape, ModelFactory};
use experiments::runs::{DataCache, OptimizerAtRewind, PairResult, Plan, Runner};
use lmc::BnPolicy;
use nets::{BnInit, Classifier, ModelConfig};
use results::{Alignment, InstabilitySummary};
use sparsity::PruneRule;
use store::Store;
use train::{DataConfig, EvalConfig, LrSchedule, OptimizerConfig, Recipe, Steps};

/// The name the recipe gives the network (`ModelConfig::External`).
pub const NAME: &str = "small-resnet";

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

/// Builds [`SmallResNet`]s for the runner, and says how weight matching may permute them.
#[derive(Debug, Clone)]
pub struct SmallResNets {
    /// The width (the channels and classes come from the data).
    pub config: SmallResNetConfig,
}

impl Default for SmallResNets {
    fn default() -> Self {
        SmallResNets {
            config: SmallResNetConfig::new(),
        }
    }
}

impl ModelFactory for SmallResNets {
    type Model = SmallResNet;

    fn build(
        &self,
        config: &ModelConfig,
        input: InputShape,
        device: &Device,
    ) -> nets::Result<SmallResNet> {
        match config {
            ModelConfig::External { name } if name == NAME => Ok(SmallResNetConfig {
                in_channels: input.channels,
                num_classes: input.num_classes,
                ..self.config.clone()
            }
            .init(device)),
            other => Err(nets::Error::Invalid(format!(
                "this factory builds `{NAME}`, not `{}`",
                other.name()
            ))),
        }
    }

    /// Two groups: the residual stream (the stem's and the block's second conv's outputs,
    /// tied by the identity shortcut, read by the block and the classifier) and the block's
    /// inner layer. A conv weight is `[out, in, h, w]`, a linear weight `[in, out]`.
    fn permutation_spec(&self, _model: &SmallResNet) -> align::Result<PermutationSpec> {
        let axis = |path: &str, axis| Axis {
            path: path.into(),
            axis,
        };
        let bn = |layer: &str| {
            ["gamma", "beta", "running_mean", "running_var"]
                .map(|t| axis(&format!("{layer}.{t}"), 0))
        };
        let size = self.config.width;
        let mut stream = vec![axis("stem.weight", 0), axis("conv1.weight", 1)];
        stream.extend(bn("stem_bn"));
        stream.extend([axis("conv2.weight", 0), axis("fc.weight", 0)]);
        stream.extend(bn("bn2"));
        let mut inner = vec![axis("conv1.weight", 0), axis("conv2.weight", 1)];
        inner.extend(bn("bn1"));
        Ok(PermutationSpec {
            groups: vec![
                Group {
                    name: "stream".into(),
                    size,
                    axes: stream,
                },
                Group {
                    name: "conv1".into(),
                    size,
                    axes: inner,
                },
            ],
        })
    }
}

/// What [`run`] does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holds `mnist/` (see `data::resolve_data_dir`).
    pub data_dir: PathBuf,
    pub allow_download: bool,
    /// The experiment store the runs go to (one directory per run, each resumable).
    pub store: PathBuf,
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
    pub fn new(data_dir: PathBuf, store: PathBuf) -> Options {
        Options {
            data_dir,
            allow_download: true,
            store,
            steps: 1000,
            k: 100,
            levels: 3,
            fraction: 0.5,
            points: 11,
            test_examples: 10_000,
        }
    }
}

/// What [`run`] measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The dense network's instability from step k (one pair of children).
    pub instability: InstabilitySummary,
    /// That pair's interpolation, and the same pair after weight matching.
    pub pair: PairResult,
    pub aligned: PairResult,
    /// IMP rewound to k, level by level (level 0 is the dense network).
    pub levels: Vec<LevelResult>,
    /// Runs of the plan, and how many of them the store held before this invocation.
    pub runs: usize,
    pub reused: usize,
}

const INIT_SEED: u64 = 1;

/// The recipe: MNIST in batches of 60, SGD with momentum. The network is external to the
/// workspace: the recipe names it, [`SmallResNets`] builds it.
pub fn recipe(steps: u64) -> Recipe {
    Recipe {
        name: NAME.into(),
        model: ModelConfig::External { name: NAME.into() },
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

/// Instability analysis at k and IMP rewound to k, on MNIST, in the store of `options`.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(
        options.k < options.steps,
        "k must come before the end of training"
    );
    let eval = EvalConfig {
        every: None,
        train_subset: Some(0),
        test_subset: Some(options.test_examples),
        batch_size: 500,
    };
    let mut plan = Plan::new();
    // Algorithm 2: prune the smallest weights of the last level's final network, rewind the
    // survivors to W_k, train from k to the end with the mask held (a fresh optimiser, as the
    // paper's code does after rewinding). Every weight is prunable but the classifier's.
    let imp = ImpConfig {
        recipe: recipe(options.steps),
        eval: eval.clone(),
        init_seed: INIT_SEED,
        data_seed: 1,
        rewind: options.k,
        levels: options.levels,
        fraction: options.fraction,
        rule: PruneRule {
            unpruned_layers: vec!["fc".into()],
        },
        optimizer_at_rewind: OptimizerAtRewind::Fresh,
        baselines: vec![],
        baseline_levels: vec![],
        baseline_seed: 0,
    }
    .plan(&mut plan)?;
    // Algorithm 1 from the same dense run: children from W_k (weights, BN buffers and
    // optimiser state) with data orders 1 and 2; the first is the parent's own continuation.
    let parent = ParentRun {
        init_seed: INIT_SEED,
        run: imp.levels[0].clone(),
        ks: vec![options.k],
    };
    let instability = InstabilityConfig {
        data_seeds: vec![1, 2],
        points: options.points,
        bn_policy: BnPolicy::Interpolate,
        eval,
        throughout_every: None,
        align: Alignment::None,
    };
    let pairs = instability.plan(&mut plan, std::slice::from_ref(&parent), options.steps)?;
    let aligned = InstabilityConfig {
        align: Alignment::Weights,
        ..instability
    }
    .plan(&mut plan, &[parent], options.steps)?;

    let store = Store::open(&options.store)?;
    let reused = plan
        .ids()
        .iter()
        .filter(|id| plan.is_complete(&store, id))
        .count();
    let mut runner = Runner::with_models(
        store,
        DataCache::new(&options.data_dir, options.allow_download),
        &train::default_device(),
        SmallResNets::default(),
    );
    runner.show_run_progress = false;
    Local::new(&runner, 1).execute(&plan, &runner.store)?;

    let store = &runner.store;
    Ok(Report {
        instability: instability_summary(store, &pairs)?,
        pair: store.finished(&pairs[0].last)?,
        aligned: store.finished(&aligned[0].last)?,
        levels: imp_results(store, &imp)?,
        runs: plan.len(),
        reused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use align::Permutation;
    use nets::params::{tensor_infos, tensor_values, to_vec};

    /// Permuting every group of the spec (each reversed) changes the weights but not the
    /// function: the spec names every axis that moves with a unit, and only those.
    #[test]
    fn the_permutation_spec_is_a_symmetry_of_the_network() {
        let device = Device::default();
        let factory = SmallResNets::default();
        let input = InputShape {
            channels: 1,
            size: 12,
            num_classes: 10,
        };
        let config = ModelConfig::External { name: NAME.into() };
        let net = nets::initialize(
            factory.build(&config, input, &device).expect("build"),
            3,
            BnInit::Uniform,
        );
        let spec = factory.permutation_spec(&net).expect("spec");
        spec.check(&tensor_infos(&net)).expect("fits");
        let reversed = Permutation {
            groups: spec
                .groups
                .iter()
                .map(|g| (0..g.size).rev().collect())
                .collect(),
        };
        let moved = align::permute(net.clone(), &spec, &reversed).expect("permute");
        let stem = |m: &SmallResNet| {
            tensor_values(m)
                .into_iter()
                .find(|(i, _)| i.path == "stem.weight")
                .map(|(_, v)| v)
        };
        assert_ne!(stem(&net), stem(&moved));
        let images = Tensor::<4>::ones([2, 1, 12, 12], &device).cumsum(3) / 12.0;
        let logits = |m: &SmallResNet| to_vec(m.forward(images.clone()).flatten(0, 1));
        for (a, b) in logits(&net).iter().zip(logits(&moved)) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert!(
            factory
                .build(&ModelConfig::lenet_300_100(), input, &device)
                .is_err()
        );
    }
}
