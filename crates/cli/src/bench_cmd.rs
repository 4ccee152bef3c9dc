//! `rewind bench`: milliseconds per training step and evaluation throughput on this machine,
//! on synthetic data with the exact shapes and pipelines of the paper's datasets (so it needs
//! no dataset and measures the data pipeline too).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use clap::Args;
use data::synthetic::Noise;
use data::{DatasetName, ImageSource};
use train::{Recipe, TrainConfig, TrainData, TrainState, Trainer};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Timed training steps per network (after the warm-up).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Images evaluated for the throughput figure.
    #[arg(long, default_value_t = 2000)]
    eval_images: usize,
    /// Presets to measure (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "lenet,resnet20")]
    presets: Vec<String>,
    /// Batch size instead of the presets' (e.g. 32 for resnet50 and inception-v3, whose 1024
    /// takes minutes per step on a CPU).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Also write the results as a Markdown table to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

struct Row {
    preset: String,
    batch: usize,
    ms_per_step: f64,
    min_ms: f64,
    eval_images_per_s: f64,
    paper_steps: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_preset(name: &str, args: &BenchArgs) -> Result<Row> {
    let mut recipe = Recipe::preset(name)?;
    if let Some(batch) = args.batch_size {
        recipe.data.batch_size = batch;
        recipe.data.micro_batches = recipe.data.micro_batches.min(batch.max(1));
    }
    let batch = recipe.data.batch_size;
    // ImageNet: 256x256 images (decoded JPEGs are about that size), random-resized-cropped.
    let (dataset, channels, side, train_len, epoch_len) = match recipe.data.dataset {
        DatasetName::Mnist | DatasetName::FashionMnist => {
            (recipe.data.dataset, 1, 28, 10_000, 60_000)
        }
        DatasetName::Imagenet => (DatasetName::Imagenet, 3, 256, 2 * batch, 1_281_167),
        DatasetName::Cifar10 => (DatasetName::Cifar10, 3, 32, 10_000, 50_000),
    };
    let train: ImageSource = Arc::new(Noise::new(train_len, channels, side));
    let test: ImageSource = Arc::new(Noise::new(args.eval_images.max(1), channels, side));
    let data = TrainData::from_sources(&recipe, dataset, train, test)?;
    let paper_steps = recipe
        .training_steps
        .resolve((epoch_len as u64).div_ceil(batch.max(1) as u64));
    let trainer = Trainer::new(
        TrainConfig::new(recipe.clone(), 1, 1),
        data,
        &train::default_device(),
    )?;
    let loss_fn = trainer.loss_fn();
    let mut state: TrainState<nets::Network> = trainer.initial_state()?;
    let mut times = Vec::with_capacity(args.steps);
    for i in 0..args.warmup + args.steps.max(1) {
        let lr = recipe
            .schedule
            .lr_at(state.step, paper_steps, trainer.iterations_per_epoch());
        let start = Instant::now();
        let (next, loss) = trainer.step(state, &loss_fn, lr, true)?;
        state = next;
        if i >= args.warmup {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        anyhow::ensure!(
            loss.is_some_and(f32::is_finite),
            "{name}: the loss is not finite"
        );
    }
    let valid = state.model.valid();
    let device = train::default_device();
    let start = Instant::now();
    let result = train::evaluate(
        &valid,
        &trainer.data.test,
        &trainer.data.transform,
        if dataset == DatasetName::Imagenet {
            50
        } else {
            1000
        },
        None,
        &device,
    )?;
    let eval_images_per_s = result.examples as f64 / start.elapsed().as_secs_f64();
    Ok(Row {
        preset: name.to_string(),
        batch: recipe.data.batch_size,
        min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
        ms_per_step: median(times),
        eval_images_per_s,
        paper_steps,
    })
}

pub fn run(args: BenchArgs) -> Result<()> {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    let mut rows = Vec::new();
    for name in &args.presets {
        tracing::info!("benchmarking {name}");
        rows.push(bench_preset(name, &args).with_context(|| format!("benchmark of {name}"))?);
    }
    let mut table = format!(
        "Backend: {}; threads: {threads}; {} timed steps after {} warm-up steps (median, min); eval over {} images.\n\n",
        train::backend_name(),
        args.steps,
        args.warmup,
        args.eval_images
    );
    table += "| preset | batch | ms / step (median) | ms / step (min) | eval images / s | paper-length run |\n|---|---|---|---|---|---|\n";
    for r in &rows {
        let full = r.ms_per_step * r.paper_steps as f64 / 1e3;
        table += &format!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {} steps: {:.1} min |\n",
            r.preset,
            r.batch,
            r.ms_per_step,
            r.min_ms,
            r.eval_images_per_s,
            r.paper_steps,
            full / 60.0
        );
    }
    print!("{table}");
    if let Some(path) = &args.markdown {
        train::write_atomic(path, table.as_bytes())?;
    }
    Ok(())
}
