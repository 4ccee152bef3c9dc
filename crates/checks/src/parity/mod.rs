//! Step-for-step parity with PyTorch (the framework of the paper's code).
//!
//! A parity case trains a registry network for a few steps, takes one IMP round (prune 20% of
//! the trained network's weights, rewind the survivors to step k, train the masked child on),
//! and records everything another framework needs to repeat each step exactly: the state before
//! every step (parameters and BN buffers), the batch as training saw it (augmented and
//! normalised), and two endpoints of an interpolation with the test images they are evaluated
//! on ([`export`]). `bench/parity.py` loads *our* state before each step into the same network
//! in PyTorch and takes the step there with **the recipe of the paper's Table 1 written on its
//! own side**: its learning rate of every step (drops at 32K and 48K of 63K scaled to the case's
//! length), its optimiser constants, PyTorch's BN conventions, its own IMP mask of our trained
//! weights and its own rewound state. Nothing of our recipe reaches the reference, so a wrong
//! rate, weight decay, momentum, BN momentum, mask or rewind here shows as a mismatch there.
//!
//! The golden file ([`Fixture`]) holds per step the loss and, per tensor, a sketch of the
//! change the step made (random ±1 projections, [`sketch`]), so [`compare`] checks every
//! update element-wise (the estimated norm of our update minus PyTorch's), not norm against
//! norm. It also holds sketches of the states it was computed from: when our replay no longer
//! reproduces them (a kernel changed), the comparison says so instead of blaming the step.
//!
//! Checking every step from our own state, rather than comparing two free-running
//! trajectories, is what makes a tight tolerance possible: training is chaotic at the level
//! of float32 rounding. (Measured on Lenet: after one step, 5 of 266,610 weights differ from
//! PyTorch's by up to 2.7e-5 because Adam divides tiny gradients by their own magnitude;
//! PyTorch in float64, given our 5 weights and nothing else, then follows our losses to 1e-6
//! through step 20, where both are 0.6% away from its own float64 run.)
//!
//! What is covered: the loss, every parameter's update (gradient, optimiser, weight decay,
//! learning rate of the step) and every BN running statistic's update (BN momentum, unbiased
//! variance) of every step of the dense run and of the IMP child; the IMP mask bit for bit
//! (global magnitude pruning, which layers are prunable, how many weights go); the rewound
//! state (weights and BN buffers of step k, masked); the child's schedule position and fresh
//! optimiser; the mask held after every step; test errors along an interpolation. What is not:
//! data order and augmentation draws (the batches are inputs: the data crate's own tests pin
//! them), initialisation (an input), later IMP rounds, evaluation outside the interpolation,
//! and multi-device training. The tests in `tests/parity.rs` perturb one convention at a time
//! ([`Perturbation`]) and assert that the comparison rejects each at the step it first acts.
//!
//! The tolerances, measured with torch 2.15.0, are derived in [`compare`]'s module docs.

mod export;
mod fixture;
pub mod sketch;

use std::path::Path;

use burn::tensor::Device;
use data::DatasetName;
use nets::params::{TensorInfo, tensor_values};
use paper_networks::Network;
use results::BnPolicy;
use sparsity::{MaskHook, PruneRule, Sparse};
use train::{Recipe, Steps, TrainConfig, TrainData, TrainHooks, TrainState, Trainer};

pub use export::export_full_length;
pub use fixture::{Check, Comparison, Failure, Fixture, Lookup, Phase, compare};

use self::export::ExportFiles;
use self::sketch::{Sketcher, TensorSketch};
use crate::{Error, Result};
use experiments::runs::{DataCache, OptimizerAtRewind};

/// One parity case: a registry network, shortened (and narrowed) so that its steps, LR drops
/// included, run in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    /// The registry entry whose recipe (optimiser, schedule, augmentation) is used; also the
    /// Table 1 row `bench/parity.py` takes its recipe from.
    pub network: &'static str,
    pub model: fn() -> nets::ModelConfig,
    /// The data trained on (CIFAR-10 cannot be downloaded here; Fashion-MNIST stands in).
    pub dataset: DatasetName,
    /// The recipe is shortened to this many steps, its schedule scaled with it.
    pub steps: u64,
    /// The IMP round rewinds to this step (after the first LR drop where there is one, so a
    /// child whose schedule restarted at 0 would take the wrong rate).
    pub rewind_to: u64,
    /// The second endpoint of the interpolation is a child trained from this step with
    /// another data order.
    pub child_from: u64,
    /// The interpolation is evaluated on this many test examples (the first ones).
    pub test_examples: usize,
    pub points: usize,
    /// Largest relative difference allowed between our loss and PyTorch's at the same state.
    pub loss_tolerance: f64,
    /// Largest norm of (our update - PyTorch's) allowed, relative to PyTorch's update, beyond
    /// float32's own rounding (see [`compare`]).
    pub update_tolerance: f64,
    /// The same for BN running statistics, which only the forward pass moves.
    pub buffer_tolerance: f64,
}

pub const INIT_SEED: u64 = 1;
pub const DATA_SEED: u64 = 1;
pub const CHILD_DATA_SEED: u64 = 2;
/// The fraction of the remaining weights one IMP round prunes (Table 1: 20% per round).
pub const IMP_FRACTION: f64 = 0.2;

/// Lenet with Adam; Resnet-20 with BN, SGD momentum, weight decay and both LR drops; VGG-16
/// with BN, max pooling and an unpruned output layer.
pub const CASES: &[Case] = &[
    Case {
        name: "lenet",
        network: "lenet",
        model: nets::ModelConfig::lenet_300_100,
        dataset: DatasetName::Mnist,
        steps: 100,
        rewind_to: 50,
        child_from: 50,
        test_examples: 2000,
        points: 5,
        loss_tolerance: 1e-5,
        update_tolerance: 1e-4,
        buffer_tolerance: 1e-5,
    },
    Case {
        name: "resnet20",
        network: "resnet20",
        model: || nets::ModelConfig::Resnet {
            depth: 20,
            width: 4,
        },
        dataset: DatasetName::FashionMnist,
        steps: 60,
        rewind_to: 36,
        child_from: 30,
        test_examples: 2000,
        points: 5,
        loss_tolerance: 1e-4,
        update_tolerance: 6e-3,
        buffer_tolerance: 1e-5,
    },
    Case {
        name: "vgg16",
        network: "vgg16",
        model: || nets::ModelConfig::Vgg16 { width_divisor: 16 },
        dataset: DatasetName::FashionMnist,
        steps: 40,
        rewind_to: 24,
        child_from: 20,
        test_examples: 2000,
        points: 5,
        loss_tolerance: 1e-4,
        update_tolerance: 1e-2,
        buffer_tolerance: 1e-5,
    },
];

pub fn case(name: &str) -> Result<&'static Case> {
    CASES.iter().find(|c| c.name == name).ok_or_else(|| {
        Error::Invalid(format!(
            "no parity case `{name}`; there are: {}",
            CASES.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// One convention broken on purpose, for the tests that show the parity comparison fails when
/// what it guards is wrong. [`Perturbation::None`] is the real code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Perturbation {
    None,
    /// Every learning-rate drop lands one step late.
    LrDropLate,
    /// The weight decay multiplied by this factor (0 removes it).
    WeightDecay(f64),
    /// SGD's momentum set to this value (Table 1: 0.9).
    Momentum(f64),
    /// BN's running-statistics momentum set to this value (PyTorch's: 0.1).
    BnMomentum(f64),
    /// The IMP child trains without its mask re-applied after each step.
    MaskNotReapplied,
    /// The IMP child is rewound to step k + 1 instead of k.
    RewindOneLate,
    /// The IMP child keeps the parent's optimiser state of step k instead of a fresh one.
    OptimizerNotReset,
}

impl Perturbation {
    fn recipe(self, mut recipe: Recipe) -> Result<Recipe> {
        use train::OptimizerConfig::{Adam, Sgd};
        match (self, &mut recipe.optimizer) {
            (Perturbation::LrDropLate, _) => {
                for m in &mut recipe.schedule.milestones {
                    *m = Steps::iterations(m.resolve(1) + 1);
                }
            }
            (Perturbation::WeightDecay(f), Sgd { weight_decay, .. } | Adam { weight_decay }) => {
                *weight_decay *= f;
            }
            (Perturbation::Momentum(m), Sgd { momentum, .. }) => *momentum = m,
            (Perturbation::Momentum(_), Adam { .. }) => {
                return Err(Error::Invalid("Adam has no momentum to perturb".into()));
            }
            _ => {}
        }
        Ok(recipe)
    }

    fn model(self, model: &mut Network) -> Result<()> {
        let Perturbation::BnMomentum(m) = self else {
            return Ok(());
        };
        let set = |bn: &mut burn::nn::BatchNorm| bn.momentum = m;
        match model {
            Network::Resnet(r) => {
                set(&mut r.stem.bn);
                for b in &mut r.blocks {
                    set(&mut b.conv1.bn);
                    set(&mut b.conv2.bn);
                    if let Some(s) = b.shortcut.as_mut() {
                        set(&mut s.bn);
                    }
                }
            }
            Network::Vgg(v) => v.layers.iter_mut().for_each(|l| set(&mut l.bn)),
            _ => {
                return Err(Error::Invalid(
                    "this case's network has no BN to perturb".into(),
                ));
            }
        }
        Ok(())
    }
}

impl Case {
    /// The registry recipe with this case's network and data, at its full length.
    pub fn full_recipe(&self) -> Result<Recipe> {
        let mut recipe = paper::recipe(self.network)?;
        recipe.model = (self.model)();
        recipe.data.dataset = self.dataset;
        Ok(recipe)
    }

    /// [`Case::full_recipe`] shortened to `steps`.
    pub fn recipe(&self, data: &TrainData) -> Result<Recipe> {
        let recipe = self.full_recipe()?;
        let ipe = (data.train.len() as u64).div_ceil(recipe.data.batch_size as u64);
        Ok(recipe.with_length(Steps::iterations(self.steps), ipe))
    }

    /// The case's data (the split sizes and transform do not depend on the length).
    pub fn data(&self, cache: &DataCache) -> Result<TrainData> {
        Ok(cache.for_recipe(&self.full_recipe()?)?)
    }

    fn trainer(
        &self,
        data: &TrainData,
        data_seed: u64,
        perturbation: Perturbation,
        device: &Device,
    ) -> Result<Trainer> {
        let recipe = perturbation.recipe(self.recipe(data)?)?;
        let config = TrainConfig::new(recipe, INIT_SEED, data_seed);
        Ok(Trainer::new(config, data.clone(), device)?.with_progress(false))
    }
}

/// A run replayed here, step by step, in the form the fixture holds PyTorch's.
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    /// The loss of every step.
    pub losses: Vec<f32>,
    /// The learning rate of every step.
    pub lrs: Vec<f64>,
    /// Per step, per tensor: the state before the step.
    pub states: Vec<Vec<TensorSketch>>,
    /// Per step, per tensor: the step's change.
    pub updates: Vec<Vec<TensorSketch>>,
}

/// The IMP round as replayed here.
#[derive(Debug, Clone)]
pub struct ImpMeasured {
    /// The step the child was rewound to.
    pub rewind_to: u64,
    /// Our mask of every prunable tensor (true: kept), by path.
    pub masks: Vec<(String, Vec<bool>)>,
    /// The child from its rewound state (`states[0]`) to the end.
    pub steps: Trajectory,
}

/// What a case measured here.
#[derive(Debug, Clone)]
pub struct Measured {
    pub paths: Vec<String>,
    /// Which tensors are BN running statistics.
    pub buffers: Vec<bool>,
    pub dense: Trajectory,
    pub imp: ImpMeasured,
    /// Test errors (examples) of the interpolation, alpha ascending (empty for a perturbed
    /// replay, which does not interpolate).
    pub interpolation_errors: Vec<usize>,
}

/// Re-applies the IMP child's mask after each step, unless perturbed not to.
struct ChildHook {
    reapply: bool,
}

impl TrainHooks<Sparse<Network>> for ChildHook {
    fn after_step(&mut self, model: Sparse<Network>, step: u64) -> train::Result<Sparse<Network>> {
        if self.reapply {
            MaskHook.after_step(model, step)
        } else {
            Ok(model)
        }
    }
}

/// Replays `case` here. With `out`, also writes what `bench/parity.py` reads there (see
/// [`export`]).
pub fn measure(case: &Case, data: &TrainData, out: Option<&Path>) -> Result<Measured> {
    measure_perturbed(case, data, out, Perturbation::None)
}

/// [`measure`] with one convention broken (the tests' hook; see [`Perturbation`]).
pub fn measure_perturbed(
    case: &Case,
    data: &TrainData,
    out: Option<&Path>,
    perturbation: Perturbation,
) -> Result<Measured> {
    let device = train::default_device();
    let trainer = case.trainer(data, DATA_SEED, perturbation, &device)?;
    let start = || -> Result<TrainState<Network>> {
        let mut state = trainer.initial_state()?;
        perturbation.model(&mut state.model)?;
        Ok(state)
    };
    let mut files = out.map(ExportFiles::create).transpose()?;
    let first = start()?;
    let infos: Vec<TensorInfo> = nets::params::tensor_infos(&first.model);
    let sketcher = Sketcher::new(&infos.iter().map(TensorInfo::numel).collect::<Vec<_>>());

    let (state, dense, labels) = record(
        &trainer,
        first,
        case.steps,
        &sketcher,
        &mut train::NoHooks,
        files.as_mut().map(|f| (&mut f.trajectory, &mut f.batches)),
        |m: &Network| m,
    )?;

    // The interpolation's second end: the same network from step `child_from` (a fresh replay
    // to that step, so it shares no BN buffers with the parent), then another data order. A
    // perturbed replay (the tests' hook) skips it: what it checks comes earlier.
    let mut interpolation_errors = Vec::new();
    let mut alphas = Vec::new();
    let examples = case.test_examples.min(data.test.len());
    if perturbation == Perturbation::None || out.is_some() {
        let child_trainer = case.trainer(data, CHILD_DATA_SEED, perturbation, &device)?;
        let child = trainer.step_losses(start()?, case.child_from)?.0;
        let child = child_trainer
            .step_losses(child, case.steps - case.child_from)?
            .0;
        let curve = lmc::error_curve(
            &state.model,
            &child.model,
            case.points,
            BnPolicy::Interpolate,
            &lmc::CurveData {
                test: &data.test,
                train: &data.train,
                transform: &data.transform,
                train_subset: Some(0),
                test_subset: Some(case.test_examples),
                batch_size: 500,
                bn_batches: None,
            },
            &train::default_device(),
            |m: Network| m,
        )?;
        interpolation_errors = curve
            .points
            .iter()
            .map(|p| (f64::from(p.test_error) * examples as f64 / 100.0).round() as usize)
            .collect();
        alphas = curve.points.iter().map(|p| f64::from(p.alpha)).collect();
        if let Some(files) = files.as_mut() {
            files
                .endpoints
                .write_tensors(&tensor_values(&state.model))?;
            files
                .endpoints
                .write_tensors(&tensor_values(&child.model))?;
        }
    }

    // One IMP round: prune the trained network, rewind the survivors to step k (weights, BN
    // buffers, schedule position) as the runner's branches do, train the masked child to the end.
    let rule = PruneRule::for_model(&trainer.config.recipe.model);
    let pruned = Sparse::dense(state.model, &rule).prune_magnitude(IMP_FRACTION)?;
    let k = case.rewind_to + u64::from(perturbation == Perturbation::RewindOneLate);
    let parent = trainer.step_losses(start()?, k)?.0;
    let parent = TrainState {
        model: Sparse::dense(parent.model, &rule),
        optimizer: parent.optimizer,
        step: parent.step,
        metrics: vec![],
    };
    let masked = pruned.transplant(parent.model.model.clone())?;
    let at_rewind = if perturbation == Perturbation::OptimizerNotReset {
        OptimizerAtRewind::Rewound
    } else {
        OptimizerAtRewind::Fresh
    };
    let child = at_rewind.branch_start(masked, parent, &trainer.config.recipe);
    let mut hook = ChildHook {
        reapply: perturbation != Perturbation::MaskNotReapplied,
    };
    // As long as the real child, also when perturbed to start late, so the steps line up.
    let (_, imp_steps, imp_labels) = record(
        &trainer,
        child,
        case.steps - case.rewind_to,
        &sketcher,
        &mut hook,
        files
            .as_mut()
            .map(|f| (&mut f.imp_trajectory, &mut f.imp_batches)),
        |m: &Sparse<Network>| &m.model,
    )?;
    let masks: Vec<(String, Vec<bool>)> = pruned
        .mask
        .to_host()
        .into_iter()
        .map(|(path, m)| (path, m.iter().map(|&v| v != 0.0).collect()))
        .collect();

    if let (Some(files), Some(dir)) = (files.as_mut(), out) {
        files.finish()?;
        export::write_export(
            dir,
            case,
            &trainer,
            data,
            &infos,
            export::Replayed {
                losses: &dense.losses,
                labels,
                imp_rewind_to: k,
                imp_labels,
                imp_kept: masks
                    .iter()
                    .map(|(_, m)| m.iter().filter(|&&k| k).count())
                    .sum(),
                alphas,
                interpolation_errors: &interpolation_errors,
                test_examples: examples,
            },
            &mut files.test,
        )?;
    }
    Ok(Measured {
        buffers: infos.iter().map(|i| i.role.is_buffer()).collect(),
        paths: infos.into_iter().map(|i| i.path).collect(),
        dense,
        imp: ImpMeasured {
            rewind_to: k,
            masks,
            steps: imp_steps,
        },
        interpolation_errors,
    })
}

type Export<'a> = Option<(&'a mut export::RawFile, &'a mut export::RawFile)>;

/// `steps` optimiser steps from `state` with `hooks`, each recorded as sketches of the state
/// before it and of its change to the network (`network` finds it inside the model); with
/// `export`, the states and batches are written too. Returns the last state, the trajectory
/// and every batch's labels.
fn record<M: nets::Classifier>(
    trainer: &Trainer,
    mut state: TrainState<M>,
    steps: u64,
    sketcher: &Sketcher,
    hooks: &mut impl TrainHooks<M>,
    mut export: Export<'_>,
    network: impl Fn(&M) -> &Network,
) -> Result<(TrainState<M>, Trajectory, Vec<Vec<i64>>)> {
    let loss_fn = trainer.loss_fn();
    let mut trajectory = Trajectory::default();
    let mut labels = vec![];
    let mut before = tensor_values(network(&state.model));
    for _ in 0..steps {
        let step = state.step;
        let lr = trainer.lr_at(step);
        if let Some((states, batches)) = export.as_mut() {
            states.write_tensors(&before)?;
            let batch = trainer.batch(step)?;
            batches.write_values(&batch.images)?;
            labels.push(batch.labels);
        }
        let (mut next, loss) = trainer.step(state, &loss_fn, lr, true)?;
        next.model = hooks.after_step(next.model, step)?;
        state = next;
        let after = tensor_values(network(&state.model));
        let (b, a) = (slices(&before), slices(&after));
        trajectory.states.push(sketcher.states(&b));
        trajectory.updates.push(sketcher.updates(&b, &a));
        trajectory.losses.push(loss.unwrap_or(f32::NAN));
        trajectory.lrs.push(lr);
        before = after;
    }
    if let Some((states, _)) = export.as_mut() {
        states.write_tensors(&before)?;
    }
    Ok((state, trajectory, labels))
}

fn slices(t: &[(TensorInfo, Vec<f32>)]) -> Vec<&[f32]> {
    t.iter().map(|(_, v)| v.as_slice()).collect()
}
