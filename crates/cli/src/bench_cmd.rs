//! `rewind bench`: milliseconds per training step, evaluation throughput, the time of an
//! interpolation sweep and peak memory on this machine, on synthetic data with the exact
//! shapes and pipelines of the paper's datasets (so it needs no dataset and measures the data
//! pipeline too). `cargo xtask bench` runs it beside the PyTorch reference
//! (`bench/reference.py`), which does the same work.

use std::path::PathBuf;
use std::sync::Barrier;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use clap::Args;
use train::{TrainConfig, TrainState, Trainer};

/// Shortest timed sample, ms: short steps are timed in groups.
const SAMPLE_MS: f64 = 100.0;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Timed training steps per network (after the warm-up).
    #[arg(long, default_value_t = 20)]
    pub(crate) steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3)]
    pub(crate) warmup: usize,
    /// Images evaluated for the throughput figure.
    #[arg(long, default_value_t = 2000)]
    pub(crate) eval_images: usize,
    /// Presets to measure (comma separated). A narrower network as the CPU scales run it:
    /// `resnet20@w4` (base width 4 instead of 16; the medium scale's), `resnet20@w8` (the quick
    /// scale's), `vgg16@d8` (every layer's channels divided by 8; the quick scale's).
    #[arg(long, value_delimiter = ',', default_value = "lenet,resnet20,vgg16")]
    pub(crate) presets: Vec<String>,
    /// Alphas of the interpolation sweep (two Lenets, error at each alpha over
    /// --sweep-images MNIST-shaped test images); 0 skips it.
    #[arg(long, default_value_t = 30)]
    pub(crate) sweep_points: usize,
    /// Test images of the interpolation sweep (the MNIST test set has 10,000).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) sweep_images: usize,
    /// Batch size instead of the presets' (e.g. 32 for resnet50 and inception-v3, whose 1024
    /// takes minutes per step on a CPU).
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Also write the results as a Markdown table to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<PathBuf>,
    /// Also write the results as JSON to this file (what `cargo xtask bench` reads).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Training runs at a time on the device, each in its own thread (as `--jobs` does): the
    /// training steps per second of all of them together are measured for each count
    /// (e.g. `1,4`), on `--concurrent-presets`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) concurrent: Vec<usize>,
    /// The presets of the `--concurrent` measurement.
    #[arg(long, value_delimiter = ',', default_value = "resnet20")]
    pub(crate) concurrent_presets: Vec<String>,
}

/// Training throughput of several runs at once on one device.
#[derive(serde::Serialize, Clone)]
pub(crate) struct Concurrency {
    pub(crate) preset: String,
    pub(crate) runs: usize,
    pub(crate) steps_per_run: usize,
    /// Training steps per second, all runs together.
    pub(crate) steps_per_s: f64,
}

#[derive(serde::Serialize)]
struct Report {
    backend: String,
    threads: String,
    rows: Vec<Row>,
    /// Milliseconds of the whole sweep.
    interpolation_ms: Option<f64>,
    concurrency: Vec<Concurrency>,
    /// Peak resident memory of the process (VmHWM), MiB.
    peak_rss_mib: Option<f64>,
    /// The measured floating-point peak of the cores the steps ran on.
    peak: PeakRate,
}

/// [`kernels::flops::Peak`], as written to the JSON report.
#[derive(serde::Serialize)]
struct PeakRate {
    isa: &'static str,
    threads: usize,
    gflops: f64,
}

#[derive(serde::Serialize, Clone)]
pub(crate) struct Row {
    pub(crate) preset: String,
    pub(crate) batch: usize,
    pub(crate) ms_per_step: f64,
    pub(crate) min_ms: f64,
    pub(crate) eval_images_per_s: f64,
    /// Evaluation at the training batch size.
    pub(crate) eval_images_per_s_train_batch: f64,
    pub(crate) paper_steps: u64,
    /// GFLOP of one training step's convolutions: 2 per multiply-add, the forward's counted
    /// and the backward taken as twice it (input and weight gradients); none without any.
    pub(crate) conv_gflop_per_step: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The recipe a benchmark preset names: a Table 1 preset, or one with a narrower network, as
/// the CPU scales run it: `resnet20@w4` (Resnet-20 of base width 4 instead of 16),
/// `vgg16@d8` (VGG-16 with every layer's channels divided by 8).
pub(crate) fn bench_recipe(spec: &str) -> Result<train::Recipe> {
    let (name, cut) = match spec.split_once('@') {
        Some((name, cut)) => (name, Some(cut)),
        None => (spec, None),
    };
    let mut recipe = paper::recipe(name)?;
    let Some(cut) = cut else {
        return Ok(recipe);
    };
    let number = |prefix: char| {
        cut.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0)
    };
    recipe.model = match (recipe.model, number('w'), number('d')) {
        (nets::ModelConfig::Resnet { depth, .. }, Some(width), _) => {
            nets::ModelConfig::Resnet { depth, width }
        }
        (nets::ModelConfig::Vgg16 { .. }, _, Some(width_divisor)) => {
            nets::ModelConfig::Vgg16 { width_divisor }
        }
        _ => anyhow::bail!(
            "`{spec}`: a cut is `@w<base width>` for a Resnet preset or `@d<divisor>` for a VGG \
             one (e.g. resnet20@w4, vgg16@d8)"
        ),
    };
    Ok(recipe)
}

pub(crate) fn bench_preset(name: &str, args: &BenchArgs) -> Result<Row> {
    // As training runs compute (`train::compute_here`): on threads of the run's own.
    train::compute_here(train::available_threads());
    let mut recipe = bench_recipe(name)?;
    if let Some(batch) = args.batch_size {
        recipe.data.batch_size = batch;
        recipe.data.micro_batches = recipe.data.micro_batches.min(batch.max(1));
    }
    let (data, paper_steps) = checks::backend_check::synthetic_data(&recipe, args.eval_images)?;
    let dataset = data.dataset;
    let trainer = Trainer::new(
        TrainConfig::new(recipe.clone(), 1, 1),
        data,
        &train::default_device(),
    )?;
    let mut state: TrainState<paper_networks::Network> = trainer.initial_state()?;
    let mut times = Vec::with_capacity(args.steps);
    // Each timed sample is at least SAMPLE_MS long (a Lenet sample is dozens of steps), so that
    // one preempted step on a shared machine moves the median little; the reference does the same.
    // One untimed step, its convolutions counted.
    let (counted, macs) =
        kernels::flops::count_conv_macs(|| steps_read_once(&trainer, state, 1, paper_steps));
    state = counted?;
    let conv_gflop_per_step = (macs > 0).then(|| 3.0 * 2.0 * macs as f64 / 1e9);
    let mut reps = 1;
    for i in 0..args.warmup + args.steps.max(1) {
        let start = Instant::now();
        let reps_now = if i < args.warmup { 1 } else { reps };
        state = steps_read_once(&trainer, state, reps_now, paper_steps)?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if i >= args.warmup {
            times.push(ms / reps_now as f64);
        } else {
            reps = (SAMPLE_MS / ms.max(1e-3)).ceil().max(1.0) as usize;
        }
    }
    let valid = state.model.valid();
    let device = train::default_device();
    // Like the reference, evaluation is timed on images already built as tensors (where they fit
    // 1 GiB: not ImageNet's), after one untimed pass; at the evaluation batch (1000, ImageNet
    // 50) and at the training batch, which tells a batch-size effect from a slow forward pass.
    let images_per_s = |batch: usize| -> Result<f64> {
        let eval = train::EvalSet::new(
            &trainer.data.test,
            &trainer.data.transform,
            batch,
            None,
            &device,
            1 << 30,
        )?;
        eval.evaluate(&valid)?;
        let start = Instant::now();
        let result = eval.evaluate(&valid)?;
        Ok(result.examples as f64 / start.elapsed().as_secs_f64())
    };
    // Images of varying size (ImageNet's) are decoded and resized: smaller batches.
    let eval_batch = if dataset.spec().stored_side.is_none() {
        50
    } else {
        1000
    };
    let eval_images_per_s = images_per_s(eval_batch)?;
    let eval_images_per_s_train_batch = images_per_s(recipe.data.batch_size)?;
    Ok(Row {
        preset: name.to_string(),
        batch: recipe.data.batch_size,
        min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
        ms_per_step: median(times),
        eval_images_per_s,
        eval_images_per_s_train_batch,
        paper_steps,
        conv_gflop_per_step,
    })
}

/// `n` training steps at the learning rates of a `paper_steps` run, the losses kept on the
/// device (as in training) and read once at the end.
fn steps_read_once(
    trainer: &Trainer,
    mut state: TrainState<paper_networks::Network>,
    n: usize,
    paper_steps: u64,
) -> Result<TrainState<paper_networks::Network>> {
    let loss_fn = trainer.loss_fn();
    let schedule = &trainer.config.recipe.schedule;
    let mut losses = Vec::with_capacity(n);
    for _ in 0..n {
        let lr = schedule.lr_at(state.step, paper_steps, trainer.iterations_per_epoch());
        let (next, loss) = trainer.step_on_device(state, &loss_fn, lr)?;
        state = next;
        losses.push(loss);
    }
    if !losses.is_empty() {
        let sum = nets::readback::scalar(burn::tensor::Tensor::cat(losses, 0).sum());
        anyhow::ensure!(
            sum.is_finite(),
            "{}: the loss is not finite",
            trainer.config.recipe.name
        );
    }
    Ok(state)
}

/// `runs` trainings of `name` at once, each in its own thread with its own seeds and data,
/// `steps` timed steps each after `warmup` untimed ones; losses read once at the end.
pub(crate) fn concurrent_throughput(
    name: &str,
    runs: usize,
    steps: usize,
    warmup: usize,
) -> Result<Concurrency> {
    let recipe = bench_recipe(name)?;
    let runs = runs.max(1);
    let steps = steps.max(1);
    let (ready, done) = (Barrier::new(runs + 1), Barrier::new(runs + 1));
    let threads = (train::available_threads() / runs).max(1);
    let train_one = |seed: u64| -> Result<()> {
        train::compute_here(threads);
        let (data, paper_steps) = checks::backend_check::synthetic_data(&recipe, 1)?;
        let trainer = Trainer::new(
            TrainConfig::new(recipe.clone(), seed, seed),
            data,
            &train::default_device(),
        )?
        .with_progress(false);
        let state: TrainState<paper_networks::Network> = trainer.initial_state()?;
        let run_steps = |state, n| steps_read_once(&trainer, state, n, paper_steps);
        // Every thread reaches both barriers, whatever fails, or the others would wait forever.
        let warm = run_steps(state, warmup.max(1));
        ready.wait();
        let timed = warm.and_then(|s| run_steps(s, steps));
        done.wait();
        timed.map(|_| ())
    };
    let seconds = std::thread::scope(|scope| -> Result<f64> {
        let workers: Vec<_> = (0..runs)
            .map(|i| {
                let train_one = &train_one;
                scope.spawn(move || train_one(i as u64 + 1))
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        done.wait();
        let seconds = start.elapsed().as_secs_f64();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a training thread panicked"))??;
        }
        Ok(seconds)
    })?;
    Ok(Concurrency {
        preset: name.to_string(),
        runs,
        steps_per_run: steps,
        steps_per_s: (runs * steps) as f64 / seconds,
    })
}

/// The interpolation sweep of the paper on Lenet: the error of `points` networks between two
/// initialisations over `images` MNIST-shaped test images, through `lmc::error_curve` (the code
/// path of every instability measurement). Milliseconds.
pub(crate) fn bench_interpolation(points: usize, images: usize) -> Result<f64> {
    let device = train::default_device();
    let pair = checks::backend_check::lenet_pair(&device, images)?;
    let start = Instant::now();
    let curve = checks::backend_check::lenet_curve(&pair, points, &device)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(curve.points.len() == points, "the sweep lost points");
    Ok(ms)
}

/// Peak resident memory of this process in MiB (Linux), `None` elsewhere.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn run(args: BenchArgs) -> Result<()> {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    let cores = threads.parse::<usize>().ok().unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    tracing::info!("measuring the floating-point peak of {cores} thread(s)");
    let peak = kernels::flops::measure_peak(cores, 300);
    let mut rows = Vec::new();
    // `--presets ''` measures only what else is asked (the peak, `--concurrent`).
    for name in args.presets.iter().filter(|n| !n.is_empty()) {
        tracing::info!("benchmarking {name}");
        rows.push(bench_preset(name, &args).with_context(|| format!("benchmark of {name}"))?);
    }
    let mut table = format!(
        "Backend: {}; threads: {threads}; {} timed steps after {} warm-up steps (median, min); eval over {} images.\n\n",
        train::runtime_name(&train::default_device()),
        args.steps,
        args.warmup,
        args.eval_images
    );
    table += &format!(
        "Peak: {:.0} GFLOP/s ({} fused multiply-adds on {} thread(s), measured).\n\n",
        peak.gflops, peak.isa, peak.threads
    );
    table += "| preset | batch | ms / step (median) | ms / step (min) | eval images / s | paper-length run | conv GFLOP / step | % of peak |\n|---|---|---|---|---|---|---|---|\n";
    for r in &rows {
        let full = r.ms_per_step * r.paper_steps as f64 / 1e3;
        let (gflop, share) = r.conv_gflop_per_step.map_or(("-".into(), "-".into()), |g| {
            let percent = 100.0 * g / (r.ms_per_step / 1e3) / peak.gflops;
            (format!("{g:.1}"), format!("{percent:.0}%"))
        });
        table += &format!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {} steps: {:.1} min | {gflop} | {share} |\n",
            r.preset,
            r.batch,
            r.ms_per_step,
            r.min_ms,
            r.eval_images_per_s,
            r.paper_steps,
            full / 60.0
        );
    }
    let interpolation_ms = if args.sweep_points > 0 {
        tracing::info!("benchmarking the interpolation sweep");
        let ms = bench_interpolation(args.sweep_points, args.sweep_images)
            .context("benchmark of the interpolation sweep")?;
        table += &format!(
            "\nInterpolation sweep (Lenet, {} alphas, {} test images): {:.0} ms.\n",
            args.sweep_points, args.sweep_images, ms
        );
        Some(ms)
    } else {
        None
    };
    let mut concurrency = Vec::new();
    for name in args
        .concurrent_presets
        .iter()
        .filter(|_| !args.concurrent.is_empty())
    {
        for &runs in &args.concurrent {
            tracing::info!("{runs} runs of {name} at once");
            let c = concurrent_throughput(name, runs, args.steps, args.warmup)
                .with_context(|| format!("{runs} concurrent runs of {name}"))?;
            table += &format!(
                "{name}, {runs} run(s) at once: {:.1} training steps/s in all.\n",
                c.steps_per_s
            );
            concurrency.push(c);
        }
    }
    let peak_rss_mib = peak_rss_mib();
    if let Some(mib) = peak_rss_mib {
        table += &format!("Peak resident memory: {mib:.0} MiB.\n");
    }
    print!("{table}");
    if let Some(path) = &args.markdown {
        train::write_atomic(path, table.as_bytes())?;
    }
    if let Some(path) = &args.json {
        let report = Report {
            backend: train::runtime_name(&train::default_device()).to_string(),
            threads,
            rows,
            interpolation_ms,
            concurrency,
            peak_rss_mib,
            peak: PeakRate {
                isa: peak.isa,
                threads: peak.threads,
                gflops: peak.gflops,
            },
        };
        train::write_atomic(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
