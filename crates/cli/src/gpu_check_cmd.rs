//! `rewind gpu-check`: does this binary's GPU backend compute what the CPU backend computes,
//! and how fast? Built with `--features wgpu` or `--features cuda` (the CPU backend `flex` is
//! in every build), it trains the same networks from the same initial weights on the same
//! batches on both devices and compares every step's loss, checks that a checkpoint written
//! on one device resumes on the other, that pruned weights stay exactly zero on the GPU, that
//! an interpolation curve agrees, whether the same seeds give bit-identical weights on the GPU,
//! and measures milliseconds per step. All data is seeded noise of the datasets' shapes, so it
//! needs no dataset. `cargo xtask gpu-check` builds it, runs it beside the PyTorch reference on
//! the same GPU and writes the GPU section of BENCHMARKS.md.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use burn::module::Module;
use burn::tensor::Device;
use clap::Args;
use nets::params::tensor_values;
use serde::Serialize;
use sparsity::{PruneRule, Sparse};
use train::{CheckpointStore, TrainConfig, TrainState, Trainer};

use crate::bench_cmd::{self, BenchArgs, Row};

/// Largest relative difference between the two devices' loss at any compared step that still
/// counts as the same computation. Both run f32; the GPU sums reductions (matrix products,
/// convolutions, BN statistics) in another order, which moves a loss by ~1e-7 relative per
/// step, and SGD amplifies the difference a little every step (measured on lavapipe: 3e-8 after
/// 100 Lenet steps). A wrong kernel moves it by 1e-2 or more within a few steps.
pub const LOSS_TOLERANCE: f64 = 1e-3;

#[derive(Args, Debug)]
pub struct GpuCheckArgs {
    /// Training steps compared between the GPU and the CPU backend per network.
    #[arg(long, default_value_t = 20)]
    steps: u64,
    /// Networks trained on both devices and compared (Table 1 presets).
    #[arg(long, value_delimiter = ',', default_value = "lenet,resnet20")]
    compare: Vec<String>,
    /// Networks whose milliseconds per step are measured on the GPU.
    #[arg(long, value_delimiter = ',', default_value = "lenet,resnet20,vgg16")]
    presets: Vec<String>,
    /// Timed training steps per network (after the warm-up).
    #[arg(long, default_value_t = 30)]
    bench_steps: usize,
    /// Untimed warm-up steps (the GPU autotunes its kernels in the first steps).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Write the results as JSON to this file (what `cargo xtask gpu-check` reads).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run even when this binary has no GPU backend (compares the CPU with itself; for
    /// testing the check).
    #[arg(long, hide = true)]
    allow_cpu: bool,
}

/// The loss of every step on both devices.
#[derive(Serialize)]
pub struct Agreement {
    pub preset: String,
    pub steps: u64,
    /// The two devices start from bit-identical weights (seeded on the host).
    pub same_initial_weights: bool,
    pub cpu_losses: Vec<f32>,
    pub gpu_losses: Vec<f32>,
    pub max_relative_loss_difference: f64,
    /// Largest difference of any weight after the last step, relative to the largest weight.
    pub final_weight_difference: f64,
    /// A checkpoint written on the GPU after half the steps, resumed on the CPU: the largest
    /// relative difference of the CPU's remaining losses from the GPU's.
    pub gpu_checkpoint_on_cpu: f64,
    /// The same from a CPU checkpoint resumed on the GPU.
    pub cpu_checkpoint_on_gpu: f64,
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

#[derive(Serialize)]
pub struct GpuReport {
    pub backend: String,
    pub device: String,
    pub loss_tolerance: f64,
    pub agreements: Vec<Agreement>,
    pub curve: CurveAgreement,
    pub speed: Vec<Row>,
    pub peak_rss_mib: Option<f64>,
    pub passed: bool,
}

fn trainer(preset: &str, device: &Device) -> Result<Trainer> {
    let recipe = experiments::registry::recipe(preset)?;
    let (data, _) = bench_cmd::synthetic_data(&recipe, 1000)?;
    Ok(Trainer::new(TrainConfig::new(recipe, 1, 1), data, device)?.with_progress(false))
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

/// Trains `state` on `trainer` for `steps` steps; the losses.
fn losses<M: nets::Classifier>(
    trainer: &Trainer,
    state: TrainState<M>,
    steps: u64,
) -> Result<(TrainState<M>, Vec<f32>)> {
    Ok(trainer.step_losses(state, steps)?)
}

/// Trains from `trainer`'s initial state for `at` steps, writes a checkpoint, and resumes it on
/// `other` for `steps - at` steps: the losses after the checkpoint.
fn resumed_elsewhere(trainer: &Trainer, other: &Trainer, at: u64, steps: u64) -> Result<Vec<f32>> {
    let dir = tempfile::tempdir().context("a temporary directory for the checkpoint")?;
    let (state, _) = losses(trainer, trainer.initial_state()?, at)?;
    CheckpointStore::new(dir.path()).save(at, &state.model, &state.optimizer, &state.metrics)?;
    let resumed = other.load_state(dir.path(), at)?;
    ensure!(
        resumed.step == at,
        "the checkpoint resumed at the wrong step"
    );
    Ok(losses(other, resumed, steps - at)?.1)
}

fn agreement(preset: &str, gpu: &Device, steps: u64) -> Result<Agreement> {
    let cpu = Device::flex();
    let on_cpu = trainer(preset, &cpu)?;
    let on_gpu = trainer(preset, gpu)?;
    let steps = steps.max(2);
    let (cpu_start, gpu_start) = (on_cpu.initial_state()?, on_gpu.initial_state()?);
    let same_initial_weights = flat_weights(&cpu_start.model) == flat_weights(&gpu_start.model);
    let (cpu_end, cpu_losses) = losses(&on_cpu, cpu_start, steps)?;
    let (gpu_end, gpu_losses) = losses(&on_gpu, gpu_start, steps)?;
    let (cpu_w, gpu_w) = (flat_weights(&cpu_end.model), flat_weights(&gpu_end.model));
    let largest = cpu_w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let final_weight_difference = cpu_w
        .iter()
        .zip(&gpu_w)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
        / largest;

    let half = steps / 2;
    let gpu_checkpoint_on_cpu = relative_difference(
        &resumed_elsewhere(&on_gpu, &on_cpu, half, steps)?,
        &gpu_losses[half as usize..],
    );
    let cpu_checkpoint_on_gpu = relative_difference(
        &resumed_elsewhere(&on_cpu, &on_gpu, half, steps)?,
        &cpu_losses[half as usize..],
    );

    let (rerun, _) = losses(&on_gpu, on_gpu.initial_state()?, steps)?;
    let rerun_w = flat_weights(&rerun.model);
    let gpu_rerun_differing_weights = gpu_w
        .iter()
        .zip(&rerun_w)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();

    let rule = PruneRule::for_model(&on_gpu.config.recipe.model);
    let sparse = Sparse::dense(on_gpu.build_model()?, &rule).prune_magnitude(0.8)?;
    let mut state = TrainState {
        model: sparse,
        optimizer: on_gpu.config.recipe.optimizer.init(),
        step: 0,
        metrics: vec![],
    };
    let loss_fn = on_gpu.loss_fn();
    for _ in 0..steps {
        let lr = on_gpu.lr_at(state.step);
        let (next, _) = on_gpu.step(state, &loss_fn, lr, false)?;
        state = next;
        state.model = state.model.apply();
    }
    let values: std::collections::HashMap<String, Vec<f32>> = tensor_values(&state.model.model)
        .into_iter()
        .map(|(info, v)| (info.path, v))
        .collect();
    let (mut masked, mut masked_nonzero) = (0, 0);
    for (path, mask) in state.model.mask.to_host() {
        let weights = values
            .get(&path)
            .with_context(|| format!("masked tensor {path} not found in the model"))?;
        for (m, w) in mask.iter().zip(weights) {
            if *m == 0.0 {
                masked += 1;
                masked_nonzero += usize::from(*w != 0.0);
            }
        }
    }

    let max_relative_loss_difference = relative_difference(&cpu_losses, &gpu_losses);
    let passed = same_initial_weights
        && max_relative_loss_difference <= LOSS_TOLERANCE
        && gpu_checkpoint_on_cpu <= LOSS_TOLERANCE
        && cpu_checkpoint_on_gpu <= LOSS_TOLERANCE
        && masked > 0
        && masked_nonzero == 0;
    Ok(Agreement {
        preset: preset.to_string(),
        steps,
        same_initial_weights,
        cpu_losses,
        gpu_losses,
        max_relative_loss_difference,
        final_weight_difference: f64::from(final_weight_difference),
        gpu_checkpoint_on_cpu,
        cpu_checkpoint_on_gpu,
        gpu_rerun_differing_weights,
        weights: gpu_w.len(),
        masked_nonzero,
        masked,
        passed,
    })
}

fn curve_on(device: &Device, alphas: usize, images: usize) -> Result<Vec<f32>> {
    let recipe = experiments::registry::recipe("lenet")?;
    let (data, _) = bench_cmd::synthetic_data(&recipe, images)?;
    let t = &data.transform;
    let init = |seed| -> Result<nets::Network> {
        let model = recipe
            .model
            .build(t.channels(), t.size, data.num_classes, device)?;
        Ok(nets::initialize(model, seed, recipe.bn_init))
    };
    let (a, b) = (init(1)?, init(2)?);
    let curve_data = lmc::CurveData {
        test: &data.test,
        train: &data.train,
        transform: &data.transform,
        train_subset: Some(0),
        test_subset: None,
        batch_size: 1000,
        bn_batches: None,
    };
    let curve = lmc::error_curve(
        &a,
        &b,
        alphas,
        lmc::BnPolicy::Interpolate,
        &curve_data,
        device,
        |m| m,
    )?;
    Ok(curve.points.iter().map(|p| p.test_error).collect())
}

fn curve_agreement(gpu: &Device) -> Result<CurveAgreement> {
    let (alphas, images) = (11, 2000);
    let cpu_errors = curve_on(&Device::flex(), alphas, images)?;
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

pub fn run(args: GpuCheckArgs) -> Result<()> {
    let backend = train::backend_name();
    if backend.contains("CPU") && !args.allow_cpu {
        bail!(
            "this rewind was built without a GPU backend ({backend}); build it with \
             `--features wgpu` or `--features cuda`, or run `cargo xtask gpu-check --features wgpu`"
        );
    }
    let gpu = train::default_device();
    // The first tensor on the device finds the adapter: fail here, with the reason, not later.
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        burn::tensor::Tensor::<1>::from_floats([1.0f32, 2.0], &gpu)
            .sum()
            .into_scalar::<f32>()
    }));
    let device = match probe {
        Ok(v) if v == 3.0 => format!("{gpu:?}"),
        Ok(v) => bail!("the GPU computed 1 + 2 = {v}"),
        Err(_) => bail!(
            "no usable {backend} device: see the README's backend section (a Vulkan driver for \
             wgpu, the NVIDIA driver for cuda)"
        ),
    };
    println!("backend {backend}, device {device}");
    let mut agreements = Vec::new();
    for preset in &args.compare {
        tracing::info!(
            "comparing {preset} on the GPU and the CPU for {} steps",
            args.steps
        );
        let a = agreement(preset, &gpu, args.steps)
            .with_context(|| format!("GPU/CPU comparison of {preset}"))?;
        println!(
            "{preset}: {} steps, max relative loss difference {:.2e} (tolerance {LOSS_TOLERANCE:.0e}), \
             final weights differ by {:.2e} of the largest; checkpoints GPU->CPU {:.2e}, CPU->GPU {:.2e}; \
             GPU rerun: {} of {} weights differ; masked weights non-zero: {} of {}: {}",
            a.steps,
            a.max_relative_loss_difference,
            a.final_weight_difference,
            a.gpu_checkpoint_on_cpu,
            a.cpu_checkpoint_on_gpu,
            a.gpu_rerun_differing_weights,
            a.weights,
            a.masked_nonzero,
            a.masked,
            if a.passed { "PASS" } else { "FAIL" }
        );
        agreements.push(a);
    }
    tracing::info!("comparing an interpolation curve");
    let curve = curve_agreement(&gpu).context("GPU/CPU interpolation comparison")?;
    println!(
        "interpolation (Lenet, {} alphas, {} images): errors differ by at most {} examples: {}",
        curve.alphas,
        curve.images,
        curve.max_example_difference,
        if curve.passed { "PASS" } else { "FAIL" }
    );
    let bench = BenchArgs {
        steps: args.bench_steps,
        warmup: args.warmup,
        eval_images: 10_000,
        presets: args.presets.clone(),
        sweep_points: 0,
        sweep_images: 0,
        batch_size: None,
        markdown: None,
        json: None,
    };
    let mut speed = Vec::new();
    for preset in &args.presets {
        tracing::info!("timing {preset} on the GPU");
        let row = bench_cmd::bench_preset(preset, &bench)
            .with_context(|| format!("timing of {preset}"))?;
        println!(
            "{preset}: {:.2} ms/step (min {:.2}), {:.0} eval images/s; a paper run ({} steps) {:.1} min",
            row.ms_per_step,
            row.min_ms,
            row.eval_images_per_s,
            row.paper_steps,
            row.ms_per_step * row.paper_steps as f64 / 60e3
        );
        speed.push(row);
    }
    let passed = agreements.iter().all(|a| a.passed) && curve.passed;
    let report = GpuReport {
        backend: backend.to_string(),
        device,
        loss_tolerance: LOSS_TOLERANCE,
        agreements,
        curve,
        speed,
        peak_rss_mib: bench_cmd::peak_rss_mib(),
        passed,
    };
    if let Some(path) = &args.json {
        train::write_atomic(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    ensure!(passed, "the GPU disagrees with the CPU (see above)");
    println!("GPU check passed");
    Ok(())
}
