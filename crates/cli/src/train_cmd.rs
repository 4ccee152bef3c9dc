use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use data::{Augmentation, DatasetName};
use train::{NoHooks, Steps, TrainConfig, TrainData, Trainer};

/// Options that choose the recipe, the seeds and the evaluation of a run (shared by `train`
/// and `imp`).
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A Table 1 recipe by name (`rewind presets` lists them). Ignored with --config.
    #[arg(long, default_value = "lenet")]
    pub preset: String,

    /// A full run configuration (TOML, as written to `config.toml` by an earlier run) instead
    /// of --preset and the options below.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["steps", "dataset", "augmentation", "batch_size", "lr", "image_size", "micro_batches"])]
    config: Option<PathBuf>,

    /// Training length (`24000it`, `2ep`, `120ep50it`). A length other than the preset's
    /// scales the schedule (warmup and learning-rate drops) by the same factor.
    #[arg(long)]
    steps: Option<Steps>,

    /// Seed of the initial weights.
    #[arg(long, default_value_t = 1)]
    init_seed: u64,

    /// Seed of the data order and augmentation (the SGD noise).
    #[arg(long, default_value_t = 1)]
    data_seed: u64,

    /// Train on another dataset than the preset's: mnist, fashion-mnist, cifar10, cifar100,
    /// svhn, imagenet or a folder of your own in the data directory (README.md, "Your own
    /// dataset") (e.g. `fashion-mnist` for a CIFAR recipe where CIFAR-10 is not
    /// available). The network's outputs follow the dataset's classes; 28x28 images are
    /// zero-padded to 32x32 for the conv nets. The preset's augmentation stays unless
    /// --augmentation says otherwise (`none` for SVHN's digits, which flips would change).
    #[arg(long, value_name = "DATASET")]
    dataset: Option<String>,

    /// Override the preset's training augmentation.
    #[arg(long, value_enum)]
    augmentation: Option<AugmentationArg>,

    /// Override the preset's batch size.
    #[arg(long)]
    batch_size: Option<usize>,

    /// Override the preset's base learning rate.
    #[arg(long)]
    lr: Option<f64>,

    /// Side of the square crops fed to the network (default: the network's own input, 224
    /// for Resnet-50, 299 for Inception-v3). Smaller crops make cheap small-scale runs.
    #[arg(long)]
    image_size: Option<usize>,

    /// Compute each batch as N micro-batches with summed gradients (memory; data-parallel
    /// share). Default: the preset's (4 for resnet50, 8 for inception-v3, else 1).
    #[arg(long)]
    micro_batches: Option<usize>,

    /// Evaluate every this many steps (and at the end).
    #[arg(long, default_value = "1ep")]
    eval_every: Steps,

    /// Evaluate training accuracy on the first N training examples (0 skips it; `all` for the
    /// whole training set).
    #[arg(long, default_value = "10000")]
    train_eval_subset: String,

    /// Evaluate test accuracy on the first N test examples only (small-scale runs; default:
    /// the whole test set).
    #[arg(long)]
    test_eval_subset: Option<usize>,

    /// Write a checkpoint every this many steps (a killed run resumes from the latest).
    #[arg(long, default_value = "1ep")]
    checkpoint_every: Steps,

    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    run: RunArgs,

    /// Keep the checkpoints of these steps for good (comma separated, e.g. `500it,2000it`).
    #[arg(long, value_delimiter = ',')]
    keep: Vec<Steps>,

    /// Output directory of the run. Without it the run goes to the experiment store
    /// (`--store`), named by the hash of its configuration, where `imp`, `instability` and
    /// `reproduce` find and reuse it.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// The experiment store (used when --out is not given).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    store: PathBuf,

    /// Train data-parallel on this many devices (GPUs 0..N with --features cuda or wgpu).
    #[arg(long, default_value_t = 1)]
    devices: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AugmentationArg {
    /// No augmentation.
    None,
    /// Pad 4, random crop, random horizontal flip (CIFAR-10).
    CropFlip,
    /// Random resized crop and flip (ImageNet).
    RandomResizedCrop,
}

impl From<AugmentationArg> for Augmentation {
    fn from(a: AugmentationArg) -> Self {
        match a {
            AugmentationArg::None => Augmentation::None,
            AugmentationArg::CropFlip => Augmentation::CropFlip { padding: 4 },
            AugmentationArg::RandomResizedCrop => Augmentation::RandomResizedCropFlip,
        }
    }
}

fn read_config(path: &Path) -> Result<TrainConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or_else(String::new, |span| {
            let before = text.get(..span.start).unwrap_or(&text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" at line {line}, column {column}")
        });
        anyhow::anyhow!(
            "{} is not a valid run configuration{at}: {}",
            path.display(),
            e.message()
        )
    })
}

impl RunArgs {
    /// The configuration and data these options describe, and the trainer for them.
    pub fn trainer(
        &self,
        data_dir: &Path,
        allow_download: bool,
        keep: &[Steps],
    ) -> Result<Trainer> {
        let mut config = match &self.config {
            Some(path) => read_config(path)?,
            None => {
                let mut recipe = paper::recipe(&self.preset)?;
                if let Some(d) = &self.dataset {
                    let d: DatasetName = d.parse().context("--dataset")?;
                    recipe.data.dataset = d;
                    recipe.name = format!("{}@{d}", recipe.name);
                }
                if let Some(a) = self.augmentation {
                    recipe.data.augmentation = a.into();
                }
                if let Some(b) = self.batch_size {
                    recipe.data.batch_size = b;
                }
                if let Some(lr) = self.lr {
                    recipe.schedule.base = lr;
                }
                if let Some(size) = self.image_size {
                    recipe.data.image_size = Some(size);
                }
                if let Some(m) = self.micro_batches {
                    recipe.data.micro_batches = m;
                }
                let mut config = TrainConfig::new(recipe, self.init_seed, self.data_seed);
                config.eval.every = Some(self.eval_every);
                config.eval.train_subset = match self.train_eval_subset.as_str() {
                    "all" => None,
                    n => Some(n.parse().with_context(|| {
                        format!("--train-eval-subset must be a number or `all`, got `{n}`")
                    })?),
                };
                config.eval.test_subset = self.test_eval_subset;
                config.checkpoint_every = Some(self.checkpoint_every);
                config
            }
        };
        config.keep_checkpoints.extend_from_slice(keep);
        let data = TrainData::load(&config.recipe, data_dir, allow_download)?;
        let device = train::default_device();
        if let (None, Some(steps)) = (&self.config, self.steps) {
            // Resolve the epoch length first, then scale the schedule to the new length.
            let probe = Trainer::new(config.clone(), data.clone(), &device)?;
            config.recipe = config
                .recipe
                .with_length(steps, probe.iterations_per_epoch());
        }
        let trainer = Trainer::new(config, data, &device)?.with_progress(!self.quiet);
        if trainer.total_steps() == 0 {
            bail!("the run has zero training steps");
        }
        log_run(&trainer);
        Ok(trainer)
    }
}

fn log_run(trainer: &Trainer) {
    tracing::info!(
        "{} on {} ({}), {} steps of batch {} ({} per epoch), backend {}",
        trainer.config.recipe.model,
        trainer.data.dataset,
        trainer.config.recipe.name,
        trainer.total_steps(),
        trainer.config.recipe.data.batch_size,
        trainer.iterations_per_epoch(),
        train::runtime_name(&trainer.device)
    );
}

pub fn run(args: TrainArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let trainer = args.run.trainer(data_dir, allow_download, &args.keep)?;
    let Some(out) = &args.out else {
        return run_in_store(&args, &trainer, data_dir, allow_download);
    };
    let trainer = if args.devices > 1 {
        trainer.with_devices(&train::devices(args.devices))?
    } else {
        trainer
    };
    train::compute_here(train::available_threads());
    let outcome = trainer.run::<paper_networks::Network>(out, &mut NoHooks)?;
    let last = outcome
        .final_record()
        .context("the run produced no metrics")?;
    println!(
        "{} {}: test accuracy {:.2}% (loss {:.4}) after {} steps, {:.1} s of training. Results in {}",
        if outcome.reused { "reused" } else { "trained" },
        trainer.config.recipe.name,
        100.0 * last.test_accuracy,
        last.test_loss,
        last.step,
        last.elapsed_seconds,
        outcome.dir.display()
    );
    Ok(())
}

/// Trains the run as a job of the experiment store (or reuses it).
fn run_in_store(
    args: &TrainArgs,
    trainer: &Trainer,
    data_dir: &Path,
    allow_download: bool,
) -> Result<()> {
    let config = &trainer.config;
    let store = crate::store_args::StoreArgs {
        store: args.store.clone(),
        jobs: 1,
        devices: args.devices,
    };
    let runner = store.runner(data_dir, allow_download, args.run.quiet)?;
    let mut plan = experiments::runs::Plan::new();
    let rule = sparsity::PruneRule::for_model(&config.recipe.model);
    let id = plan.train_from_init(
        &config.recipe,
        config.init_seed,
        config.data_seed,
        &config.eval,
        &rule,
    )?;
    for k in &args.keep {
        plan.keep(&id, trainer.resolve(*k));
    }
    let reused = runner.store.is_done(&id);
    crate::store_args::execute(&runner, &plan, 1, true)?;
    let result: experiments::runs::TrainResult = runner
        .store
        .result(&id)?
        .context("the run finished without a result")?;
    println!(
        "{} {}: test accuracy {:.2}% (loss {:.4}) after {} steps, {:.1} s of training. Results in {}",
        if reused { "reused" } else { "trained" },
        config.recipe.name,
        100.0 * result.last.test_accuracy,
        result.last.test_loss,
        result.last.step,
        result.wall_seconds,
        runner.store.dir(&id).display()
    );
    Ok(())
}

pub fn list_presets() -> Result<()> {
    println!(
        "{:<16} {:<14} {:<9} {:>6} {:>9}  {:<24} schedule",
        "preset", "network", "data", "batch", "steps", "optimiser"
    );
    for entry in paper::ENTRIES {
        let (name, r) = (entry.name, (entry.recipe)());
        let optimiser = match &r.optimizer {
            train::OptimizerConfig::Adam { .. } => "adam".to_string(),
            train::OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                ..
            } => format!("sgd m={momentum} wd={weight_decay}"),
        };
        let s = &r.schedule;
        let mut schedule = format!("lr {}", s.base);
        if let Some(w) = s.warmup {
            schedule += &format!(", warmup {w}");
        }
        if !s.milestones.is_empty() {
            let m: Vec<String> = s.milestones.iter().map(ToString::to_string).collect();
            schedule += &format!(", x{} at {}", s.drop_factor, m.join(", "));
        }
        println!(
            "{:<16} {:<14} {:<9} {:>6} {:>9}  {:<24} {}",
            name,
            r.model.to_string(),
            r.data.dataset.to_string(),
            r.data.batch_size,
            r.training_steps.to_string(),
            optimiser,
            schedule
        );
    }
    Ok(())
}
