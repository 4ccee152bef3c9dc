//! Bring your own model: a small residual CNN defined here, outside the workspace's model
//! crates, through every experiment of the paper by the same code as the paper's networks.
//!
//! What a network needs is [`nets::Classifier`] (a burn module with a forward pass from images
//! to logits), one [`ModelFactory`] (how to build it from the recipe's
//! `ModelConfig::External`; for alignment, which hidden units may be permuted and where their
//! activations are), and one `experiments::registry::Entry` (its recipe, IMP's schedule, the k
//! values, the scales' cuts) with no paper numbers. Everything else is the framework's:
//! `reproduce::plan_networks` plans the instability analyses, IMP with rewinding and its
//! baselines; the local executor runs them in a content-addressed store (finished runs
//! reused, interrupted ones resumed bit-identically); `figures::write_report` draws every
//! figure of the scale (all but the opt-in `levels` and `layerwise`) and writes the report. [`run`] does it all on MNIST; [`cluster`] hands the same
//! plan to Slurm, with this example's binary as the jobs' command.

pub mod cluster;

use std::path::PathBuf;

use align::{Axis, Group, PermutationSpec};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use data::{Augmentation, DatasetName};
use experiments::models::{InputShape, ModelFactory};
use experiments::registry::{Cut, Entry, EvalCut, KChoice, PaperKs, Pruning};
use experiments::reproduce;
use experiments::runs::{DataCache, Runner};
use nets::activations::Tap;
use nets::{BnInit, Classifier, ModelConfig};
use results::{KUnit, ReproduceConfig, Results, Scale};
use store::Store;
use train::{DataConfig, LrSchedule, OptimizerConfig, Recipe, Steps};

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

    /// No dropout: concurrent runs of this model train without the trainer's RNG lock.
    fn draws_random_numbers(&self) -> bool {
        false
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
            ModelConfig::External { name, .. } if name == NAME => Ok(SmallResNetConfig {
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
    fn permutation_spec(
        &self,
        _config: &ModelConfig,
        _model: &SmallResNet,
    ) -> align::Result<PermutationSpec> {
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

    /// The post-ReLU outputs of each group: the stream after the stem and after the block,
    /// the inner layer after its BN; one sample per image and position.
    fn activations(&self, model: &SmallResNet, images: Tensor<4>) -> nets::Result<Vec<Tap>> {
        use nets::activations::per_position;
        let x = relu(model.stem_bn.forward(model.stem.forward(images)));
        let y = relu(model.bn1.forward(model.conv1.forward(x.clone())));
        let out = relu(x.clone() + model.bn2.forward(model.conv2.forward(y.clone())));
        let tap = |group: &str, values| Tap {
            group: group.into(),
            values,
        };
        Ok(vec![
            tap("stream", per_position(x)),
            tap("conv1", per_position(y)),
            tap("stream", per_position(out)),
        ])
    }
}

/// The network's entry, as the paper's networks have theirs in `paper::ENTRIES`: its
/// recipe, IMP's schedule, the k values to look at, and what the smoke and quick scales cut.
/// It has no paper numbers, so the report states the measurements without verdicts.
pub static SMALL_RESNET: Entry = Entry {
    name: NAME,
    title: "Small ResNet (examples/custom-model)",
    recipe: full_recipe,
    pruning: Pruning {
        rounds: 3,
        fraction: 0.5,
    },
    ks: PaperKs {
        values: &[0, 25, 100, 250],
        unit: KUnit::Iterations,
        stable_from: 100,
    },
    paper: None,
    in_quick_set: false,
    smoke: Cut {
        steps: Some(40),
        dense_ks: KChoice::ZeroQuarter,
        sparse_ks: KChoice::ZeroQuarter,
        eval: EvalCut {
            every: None,
            train_subset: 500,
            test_subset: Some(500),
            curve_subset: None,
            batch_size: 500,
            points: 3,
        },
        eval_notes: &["accuracy on 500 test and train examples, 3 interpolation points"],
        throughout_divisor: 2,
        ..QUICK
    },
    quick: QUICK,
    medium: None,
};

/// The whole recipe's length, k at 0, 100 (stable) and 250 dense, 0 and 100 sparse.
const QUICK: Cut = Cut {
    model: None,
    images: None,
    note: None,
    substitute_own_augmentation: false,
    steps: None,
    imp_rounds: None,
    dense_ks: KChoice::ZeroStableLast,
    sparse_ks: KChoice::ZeroStable,
    baseline_ks: None,
    eval: EvalCut {
        every: Some(250),
        train_subset: 2000,
        test_subset: None,
        curve_subset: Some(2000),
        batch_size: 500,
        points: 11,
    },
    eval_notes: &["interpolation paths on the first 2,000 test and train examples, 11 points"],
    throughout_divisor: 4,
    length_check: None,
};

/// The recipe: MNIST in batches of 60, SGD with momentum for 1,000 iterations. The network is
/// external to the workspace: the recipe names it and states what the framework needs to
/// know (the classifier stays unpruned, it has BN), [`SmallResNets`] builds it.
pub fn full_recipe() -> Recipe {
    Recipe {
        name: NAME.into(),
        model: ModelConfig::External {
            name: NAME.into(),
            unpruned_layers: vec!["fc".into()],
            batch_norm: true,
        },
        data: DataConfig::new(DatasetName::Mnist, 60, Augmentation::None),
        training_steps: Steps::iterations(1000),
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        schedule: LrSchedule::constant(0.05),
        bn_init: BnInit::Uniform,
    }
}

/// What [`run`] does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holds `mnist/` (see `data::resolve_data_dir`).
    pub data_dir: PathBuf,
    pub allow_download: bool,
    /// The experiment store (one directory per run, each reused or resumed).
    pub store: PathBuf,
    /// Where the report goes: `REPORT.md`, a PNG per figure, `results.json`.
    pub out: PathBuf,
    /// `smoke` (40 iterations, seconds) or `quick` (the recipe's 1,000, minutes).
    pub scale: Scale,
}

/// What [`run`] measured and wrote.
#[derive(Debug)]
pub struct Report {
    pub results: Results,
    pub written: figures::Written,
    /// Runs of the plan, and how many of them the store held before this invocation.
    pub runs: usize,
    pub reused: usize,
}

/// Every figure of the paper for [`SMALL_RESNET`] at `options.scale`: the paper's
/// instability and IMP plans, run in the store by the local executor with [`SmallResNets`],
/// then the report.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    run_config(options, &reproduction(options.scale))
}

/// What [`run`] reproduces at `scale`: every figure of [`SMALL_RESNET`].
pub fn reproduction(scale: Scale) -> ReproduceConfig {
    ReproduceConfig::new(scale, vec![NAME.into()])
}

/// [`run`] for `config` (its scale, figures and BN policy; it must name only [`NAME`]).
pub fn run_config(options: &Options, config: &ReproduceConfig) -> anyhow::Result<Report> {
    anyhow::ensure!(
        config.models == [NAME],
        "this example reproduces `{NAME}` only, not {:?}",
        config.models
    );
    let networks = [&SMALL_RESNET];
    let data = DataCache::new(&options.data_dir, options.allow_download);
    let store = Store::open(&options.store)?;
    let (plan, _) = reproduce::plan_networks(config, &networks, &data)?;
    let reused = plan
        .ids()
        .iter()
        .filter(|id| plan.is_complete(&store, id))
        .count();
    let mut runner = Runner::with_models(
        store,
        data,
        &train::default_device(),
        SmallResNets::default(),
    );
    runner.show_run_progress = false;
    let results = reproduce::run_networks_here(config, &networks, &runner, 1)?;
    let written = figures::write_report(&results, &options.out)?;
    Ok(Report {
        results,
        written,
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
        let config = full_recipe().model;
        let net = nets::initialize(
            factory.build(&config, input, &device).expect("build"),
            3,
            BnInit::Uniform,
        );
        let spec = factory.permutation_spec(&config, &net).expect("spec");
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
