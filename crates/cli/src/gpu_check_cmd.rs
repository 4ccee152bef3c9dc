//! `rewind gpu-check`: does this binary's GPU backend compute what the CPU backend computes,
//! and how fast? Built with `--features wgpu` or `--features cuda` (the CPU backend `flex` is
//! in every build), it trains the same networks from the same initial weights on the same
//! batches on both devices and compares every step's loss, checks that a checkpoint written
//! on one device resumes on the other, that pruned weights stay exactly zero on the GPU, that
//! an interpolation curve agrees, whether the same seeds give bit-identical weights on the GPU,
//! that a training step makes no device-to-host read outside the loop's schedule, and measures
//! milliseconds per step. All data is seeded noise of the datasets' shapes, so it
//! needs no dataset. `cargo xtask gpu-check` builds it, runs it beside the PyTorch reference on
//! the same GPU and writes the GPU section of BENCHMARKS.md.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use checks::backend_check::{
    Agreement, CurveAgreement, LOSS_TOLERANCE, UPDATE_TOLERANCE, agreement, curve_agreement,
};
use checks::host_reads::{ReadAudit, audit};
use clap::Args;
use serde::Serialize;

use crate::bench_cmd::{self, BenchArgs, Concurrency, Row};

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
    /// Training runs at a time on the GPU, each in its own thread (as `--jobs` runs them): the
    /// steps per second of all together are measured for each count.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    concurrent: Vec<usize>,
    /// Networks of the `--concurrent` measurement.
    #[arg(long, value_delimiter = ',', default_value = "resnet20")]
    concurrent_presets: Vec<String>,
    /// Write the results as JSON to this file (what `cargo xtask gpu-check` reads).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run even when this binary has no GPU backend (compares the CPU with itself; for
    /// testing the check).
    #[arg(long, hide = true)]
    allow_cpu: bool,
}

#[derive(Serialize)]
pub struct GpuReport {
    pub backend: String,
    pub device: String,
    pub loss_tolerance: f64,
    pub update_tolerance: f64,
    pub agreements: Vec<Agreement>,
    pub curve: CurveAgreement,
    /// Device-to-host reads of a masked training run per network, against the schedule.
    pub reads: Vec<(String, ReadAudit)>,
    pub speed: Vec<Row>,
    pub concurrency: Vec<Concurrency>,
    pub peak_rss_mib: Option<f64>,
    pub passed: bool,
}

pub fn run(args: GpuCheckArgs) -> Result<()> {
    let backend = train::backend_name();
    if backend.contains("CPU") && !args.allow_cpu {
        bail!(
            "this rewind was built without a GPU backend ({backend}); build it with \
             `--features wgpu`, `--features vulkan` or `--features cuda`, or run `cargo xtask \
             gpu-check --features wgpu`"
        );
    }
    let gpu = train::check_device()?;
    // The runtime that serves this device: with several GPU backends built in,
    // $REWIND_DEVICE picks it (e.g. `cuda:0`, `wgpu`).
    let backend = train::runtime_name(&gpu);
    let device = format!("{gpu:?}");
    println!("backend {backend}, device {device}");
    let mut agreements = Vec::new();
    for preset in &args.compare {
        tracing::info!(
            "comparing {preset} on the GPU and the CPU for {} steps",
            args.steps
        );
        let recipe = paper::recipe(preset)?;
        let a = agreement(preset, &recipe, &Device::flex(), &gpu, args.steps)
            .with_context(|| format!("GPU/CPU comparison of {preset}"))?;
        println!(
            "{preset}: {} steps, each from the same state: losses differ by {:.1e} (tolerance \
             {LOSS_TOLERANCE:.0e}), updates by {:.1e} (tolerance {UPDATE_TOLERANCE:.0e}); \
             checkpoints across devices exact: {}; GPU checkpoint resumed on the CPU: next loss \
             differs by {:.1e}; free-running for {} steps the losses drift apart by {:.1e}; \
             GPU rerun: {} of {} weights differ; masked weights non-zero: {} of {}: {}",
            a.steps,
            a.step_loss_difference,
            a.step_update_difference,
            a.checkpoints_exact,
            a.gpu_checkpoint_on_cpu,
            a.steps,
            a.free_running_difference,
            a.gpu_rerun_differing_weights,
            a.weights,
            a.masked_nonzero,
            a.masked,
            if a.passed { "PASS" } else { "FAIL" }
        );
        agreements.push(a);
    }
    tracing::info!("comparing an interpolation curve");
    let curve = curve_agreement(&Device::flex(), &gpu, 11, 2000)
        .context("GPU/CPU interpolation comparison")?;
    println!(
        "interpolation (Lenet, {} alphas, {} images): errors differ by at most {} examples: {}",
        curve.alphas,
        curve.images,
        curve.max_example_difference,
        if curve.passed { "PASS" } else { "FAIL" }
    );
    let mut reads = Vec::new();
    for preset in &args.compare {
        let recipe = paper::recipe(preset)?;
        let every = train::trainer::LOSS_READ_EVERY;
        let a = audit(&recipe, &gpu, 2 * every + 5, every, &mut train::NoHooks)
            .with_context(|| format!("read audit of {preset}"))?;
        println!(
            "{preset}: {} masked training steps read {} times (the schedule: {}), unscheduled \
             reads after steps {:?}; an evaluation pass of {} batches read {} time(s): {}",
            a.steps,
            a.reads_by_step.iter().sum::<u64>(),
            a.steps / every + u64::from(!a.steps.is_multiple_of(every)),
            a.unscheduled,
            a.eval_batches,
            a.reads_per_evaluation,
            if a.passed() { "PASS" } else { "FAIL" }
        );
        reads.push((preset.clone(), a));
    }
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
        concurrent: args.concurrent.clone(),
        concurrent_presets: args.concurrent_presets.clone(),
    };
    let mut speed = Vec::new();
    for preset in &args.presets {
        tracing::info!("timing {preset} on the GPU");
        let row = bench_cmd::bench_preset(preset, &bench)
            .with_context(|| format!("timing of {preset}"))?;
        println!(
            "{preset}: {:.2} ms/step (min {:.2}), {:.0} eval images/s ({:.0} at the training \
             batch); a paper run ({} steps) {:.1} min",
            row.ms_per_step,
            row.min_ms,
            row.eval_images_per_s,
            row.eval_images_per_s_train_batch,
            row.paper_steps,
            row.ms_per_step * row.paper_steps as f64 / 60e3
        );
        speed.push(row);
    }
    let mut concurrency = Vec::new();
    for preset in &bench.concurrent_presets {
        let mut alone = None;
        for &runs in &bench.concurrent {
            tracing::info!("{runs} runs of {preset} at once on the GPU");
            let c = bench_cmd::concurrent_throughput(preset, runs, bench.steps, bench.warmup)
                .with_context(|| format!("{runs} concurrent runs of {preset}"))?;
            let one = *alone.get_or_insert(c.steps_per_s / runs as f64);
            println!(
                "{preset}, {runs} run(s) at once: {:.1} steps/s in all, {:.2}x one run's",
                c.steps_per_s,
                c.steps_per_s / one
            );
            concurrency.push(c);
        }
    }
    let passed = agreements.iter().all(|a| a.passed)
        && curve.passed
        && reads.iter().all(|(_, a)| a.passed());
    let report = GpuReport {
        backend: backend.to_string(),
        device,
        loss_tolerance: LOSS_TOLERANCE,
        update_tolerance: UPDATE_TOLERANCE,
        agreements,
        curve,
        reads,
        speed,
        concurrency,
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
