//! Does a GPU backend compute what the CPU backend computes? The same network trained from the
//! same initial weights (seeded on the host) on the same batches on two devices, step by step;
//! checkpoints written on one device resumed on the other; masks kept on the GPU; an
//! interpolation curve on both; whether the same seeds give bit-identical weights. Data is
//! seeded noise of the datasets' shapes ([`synthetic_data`]), so no dataset is needed. Used by
//! `rewind gpu-check` and by the wgpu test suite (lavapipe in CI).

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use data::ImageSource;
use data::synthetic::Noise;
use nets::params::tensor_values;
use paper_networks::Network;
use serde::Serialize;
use sparsity::{MaskHook, PruneRule, Sparse};
use train::{CheckpointStore, Recipe, TrainConfig, TrainData, TrainState, Trainer};

use crate::{Error, Result};

/// Training and test data of `recipe`'s dataset shapes made of seeded noise (10,000 training
/// images, or two batches of ImageNet's), and the length of a paper run of it in steps.
pub fn synthetic_data(recipe: &Recipe, test_images: usize) -> Result<(TrainData, u64)> {
    let batch = recipe.data.batch_size;
    let dataset = recipe.data.dataset;
    let spec = dataset.spec();
    // Images of varying size (ImageNet's decoded JPEGs) as 256x256, about their size, and two
    // batches of them; 10,000 images otherwise.
    let side = spec.stored_side.unwrap_or(256);
    let train_len = if spec.stored_side.is_some() {
        10_000
    } else {
        2 * batch
    };
    let (channels, epoch_len) = (spec.channels, spec.train_examples);
    let train: ImageSource = Arc::new(Noise::new(train_len, channels, side));
    let test: ImageSource = Arc::new(Noise::new(test_images.max(1), channels, side));
    let data = TrainData::from_sources(recipe, dataset, train, test)?;
    let paper_steps = recipe
        .training_steps
        .resolve((epoch_len as u64).div_ceil(batch.max(1) as u64));
    Ok((data, paper_steps))
}

/// Largest relative difference between the two devices' loss of one step taken from the same
/// state. Both compute in f32 but sum reductions (matrix products, convolutions, BN statistics)
/// in another order: measured, ~1e-7 (Lenet and Resnet-20 on an H200 through Vulkan, and on
/// lavapipe). A wrong kernel is off by 1e-2 or more.
pub const LOSS_TOLERANCE: f64 = 1e-4;

/// Largest relative difference (L2 norm over every tensor) between the two devices' updates of
/// one step taken from the same state. Gradients are sums over the batch in another order;
/// Adam divides by the root of the second moment, which makes small gradients' updates more
/// sensitive than the loss.
pub const UPDATE_TOLERANCE: f64 = 1e-3;

/// The same network trained on the CPU and on the GPU.
///
/// Free-running, two float32 trainings drift apart however right both are: a rounding
/// difference of 1e-7 in step 1 grows every step, fast in networks that are unstable to SGD
/// noise early on (Resnet-20 at initialisation, the paper's own finding), so 20 free-running
/// steps say little about the kernels. The check therefore takes every step from the *same*
/// state: the CPU's state before step i is written as a checkpoint, loaded on the GPU (which
/// also proves checkpoints portable), one step is taken on both, and their losses and updates
/// are compared. The free-running losses are kept for information.
#[derive(Serialize)]
pub struct Agreement {
    pub preset: String,
    pub steps: u64,
    /// The two devices start from bit-identical weights (seeded on the host).
    pub same_initial_weights: bool,
    /// Each step from the same state: largest relative difference of the losses.
    pub step_loss_difference: f64,
    /// Each step from the same state: largest relative difference of the updates (L2).
    pub step_update_difference: f64,
    /// Checkpoints written on one device load on the other bit for bit (weights, BN buffers).
    pub checkpoints_exact: bool,
    /// A checkpoint of the free-running GPU run after the last step, resumed on the CPU: the
    /// relative difference of the next step's loss.
    pub gpu_checkpoint_on_cpu: f64,
    /// Free-running losses (information: they drift apart, see above).
    pub cpu_losses: Vec<f32>,
    pub gpu_losses: Vec<f32>,
    pub free_running_difference: f64,
    /// Two GPU runs from the same seeds: how many weights differ in any bit.
    pub gpu_rerun_differing_weights: usize,
    pub weights: usize,
    /// Pruned to 20% by magnitude and trained on the GPU with the mask applied after every
    /// step: how many pruned weights are not exactly zero at the end.
    pub masked_nonzero: usize,
    pub masked: usize,
    pub passed: bool,
}

/// Interpolation between two Lenets, error at each alpha, on both devices.
#[derive(Serialize)]
pub struct CurveAgreement {
    pub alphas: usize,
    pub images: usize,
    pub cpu_errors: Vec<f32>,
    pub gpu_errors: Vec<f32>,
    /// Largest difference in misclassified examples at any alpha.
    pub max_example_difference: f64,
    pub passed: bool,
}

fn trainer(recipe: &Recipe, device: &Device) -> Result<Trainer> {
    let (data, _) = synthetic_data(recipe, 1000)?;
    Ok(Trainer::new(TrainConfig::new(recipe.clone(), 1, 1), data, device)?.with_progress(false))
}

fn relative_difference(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            if x.is_finite() && y.is_finite() {
                (x - y).abs() / x.abs().max(y.abs()).max(1e-12)
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max)
}

fn flat_weights<M: Module>(model: &M) -> Vec<f32> {
    tensor_values(model)
        .into_iter()
        .flat_map(|(_, v)| v)
        .collect()
}

/// `state` of `from`, written as a checkpoint into a fresh directory under `dir` and loaded
/// by `to` (on its device).
fn moved<M: nets::Classifier>(
    state: &TrainState<M>,
    to: &Trainer,
    dir: &std::path::Path,
    name: &str,
) -> Result<TrainState<Network>> {
    let run = dir.join(name);
    CheckpointStore::new(&run).save(state.step, &state.model, &state.optimizer, &state.metrics)?;
    let loaded = to.load_state::<Network>(&run, state.step)?;
    if loaded.step != state.step {
        return Err(Error::Invalid(format!(
            "the checkpoint of step {} resumed at step {}",
            state.step, loaded.step
        )));
    }
    Ok(loaded)
}

/// L2 norm of `a - b`.
fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// One step of `trainer` from `state`: the state after and the loss.
fn one_step(trainer: &Trainer, state: TrainState<Network>) -> Result<(TrainState<Network>, f32)> {
    let (next, losses) = trainer.step_losses(state, 1)?;
    Ok((next, losses.first().copied().unwrap_or(f32::NAN)))
}

/// Trains `recipe` (named `name` in the result) for `steps` steps on `cpu` and on `gpu` and
/// compares them (see [`Agreement`]).
pub fn agreement(
    name: &str,
    recipe: &Recipe,
    cpu: &Device,
    gpu: &Device,
    steps: u64,
) -> Result<Agreement> {
    let on_cpu = trainer(recipe, cpu)?;
    let on_gpu = trainer(recipe, gpu)?;
    let steps = steps.max(1);
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    // Step for step from the CPU's state.
    let mut cpu_state = on_cpu.initial_state::<Network>()?;
    let same_initial_weights =
        flat_weights(&cpu_state.model) == flat_weights(&on_gpu.initial_state::<Network>()?.model);
    let (mut step_loss_difference, mut step_update_difference) = (0f64, 0f64);
    let mut checkpoints_exact = true;
    let mut cpu_losses = Vec::new();
    for i in 0..steps {
        let before = flat_weights(&cpu_state.model);
        let gpu_state = moved(&cpu_state, &on_gpu, dir.path(), &format!("to-gpu-{i}"))?;
        checkpoints_exact &= flat_weights(&gpu_state.model) == before;
        let (gpu_next, gpu_loss) = one_step(&on_gpu, gpu_state)?;
        let (cpu_next, cpu_loss) = one_step(&on_cpu, cpu_state)?;
        cpu_losses.push(cpu_loss);
        step_loss_difference =
            step_loss_difference.max(relative_difference(&[cpu_loss], &[gpu_loss]));
        let (after_cpu, after_gpu) = (flat_weights(&cpu_next.model), flat_weights(&gpu_next.model));
        let update = distance(&after_cpu, &before).max(1e-30);
        step_update_difference =
            step_update_difference.max(distance(&after_gpu, &after_cpu) / update);
        cpu_state = cpu_next;
    }

    // Free-running on the GPU, then its last state resumed on the CPU for one step.
    let (gpu_end, gpu_losses) = on_gpu.step_losses(on_gpu.initial_state::<Network>()?, steps)?;
    let gpu_w = flat_weights(&gpu_end.model);
    let on_cpu_again = moved(&gpu_end, &on_cpu, dir.path(), "to-cpu")?;
    checkpoints_exact &= flat_weights(&on_cpu_again.model) == gpu_w;
    let (_, resumed_loss) = one_step(&on_cpu, on_cpu_again)?;
    let (_, continued_loss) = one_step(&on_gpu, gpu_end)?;
    let gpu_checkpoint_on_cpu = relative_difference(&[resumed_loss], &[continued_loss]);

    let (rerun, _) = on_gpu.step_losses(on_gpu.initial_state::<Network>()?, steps)?;
    let rerun_w = flat_weights(&rerun.model);
    let gpu_rerun_differing_weights = gpu_w
        .iter()
        .zip(&rerun_w)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    let rule = PruneRule::for_model(&on_gpu.config.recipe.model);
    let sparse = Sparse::dense(on_gpu.build_model::<Network>()?, &rule).prune_magnitude(0.8)?;
    let state = TrainState {
        model: sparse,
        optimizer: on_gpu.config.recipe.optimizer.init(),
        step: 0,
        metrics: vec![],
    };
    let (state, _) = on_gpu.step_losses_with(state, steps, &mut MaskHook)?;
    let values: HashMap<String, Vec<f32>> = tensor_values(&state.model.model)
        .into_iter()
        .map(|(info, v)| (info.path, v))
        .collect();
    let (mut masked, mut masked_nonzero) = (0, 0);
    for (path, mask) in state.model.mask.to_host() {
        let weights = values.get(&path).ok_or_else(|| {
            Error::Invalid(format!("masked tensor {path} not found in the model"))
        })?;
        for (m, w) in mask.iter().zip(weights) {
            if *m == 0.0 {
                masked += 1;
                masked_nonzero += usize::from(*w != 0.0);
            }
        }
    }

    let free_running_difference = relative_difference(&cpu_losses, &gpu_losses);
    let passed = same_initial_weights
        && step_loss_difference <= LOSS_TOLERANCE
        && step_update_difference <= UPDATE_TOLERANCE
        && checkpoints_exact
        && gpu_checkpoint_on_cpu <= LOSS_TOLERANCE
        && masked > 0
        && masked_nonzero == 0;
    Ok(Agreement {
        preset: name.to_string(),
        steps,
        same_initial_weights,
        step_loss_difference,
        step_update_difference,
        checkpoints_exact,
        gpu_checkpoint_on_cpu,
        cpu_losses,
        gpu_losses,
        free_running_difference,
        gpu_rerun_differing_weights,
        weights: gpu_w.len(),
        masked_nonzero,
        masked,
        passed,
    })
}

/// Two Lenets (init seeds 1 and 2) on `device` and `images` MNIST-shaped noise test images:
/// the interpolation of [`lenet_curve`] (the paper's sweep, timed by `rewind bench`).
pub fn lenet_pair(device: &Device, images: usize) -> Result<(TrainData, Network, Network)> {
    let recipe = paper::recipe("lenet")?;
    let (data, _) = synthetic_data(&recipe, images)?;
    let t = &data.transform;
    let init = |seed| -> Result<Network> {
        let model = Network::build(
            &recipe.model,
            t.channels(),
            t.size,
            data.num_classes,
            device,
        )
        .map_err(train::Error::from)?;
        Ok(nets::initialize(model, seed, recipe.bn_init))
    };
    let (a, b) = (init(1)?, init(2)?);
    Ok((data, a, b))
}

/// The test error curve between the two networks of [`lenet_pair`] at `alphas` alphas, through
/// `lmc::error_curve` (the code path of every instability measurement).
pub fn lenet_curve(
    (data, a, b): &(TrainData, Network, Network),
    alphas: usize,
    device: &Device,
) -> Result<results::ErrorCurve> {
    let curve_data = lmc::CurveData {
        test: &data.test,
        train: &data.train,
        transform: &data.transform,
        train_subset: Some(0),
        test_subset: None,
        batch_size: 1000,
        bn_batches: None,
    };
    Ok(lmc::error_curve(
        a,
        b,
        alphas,
        lmc::BnPolicy::Interpolate,
        &curve_data,
        device,
        |m| m,
    )?)
}

fn curve_on(device: &Device, alphas: usize, images: usize) -> Result<Vec<f32>> {
    let curve = lenet_curve(&lenet_pair(device, images)?, alphas, device)?;
    Ok(curve.points.iter().map(|p| p.test_error).collect())
}

/// The interpolation curve between two Lenets (seeds 1 and 2) at `alphas` alphas over `images`
/// noise images on `cpu` and on `gpu` (see [`CurveAgreement`]).
pub fn curve_agreement(
    cpu: &Device,
    gpu: &Device,
    alphas: usize,
    images: usize,
) -> Result<CurveAgreement> {
    let cpu_errors = curve_on(cpu, alphas, images)?;
    let gpu_errors = curve_on(gpu, alphas, images)?;
    // Errors are percentages of `images`: one example is 100 / images points.
    let max_example_difference = cpu_errors
        .iter()
        .zip(&gpu_errors)
        .map(|(a, b)| f64::from((a - b).abs()) * images as f64 / 100.0)
        .fold(0.0, f64::max);
    Ok(CurveAgreement {
        alphas,
        images,
        passed: cpu_errors.len() == gpu_errors.len() && max_example_difference <= 1.0 + 1e-6,
        cpu_errors,
        gpu_errors,
        max_example_difference,
    })
}
