use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use data::DatasetName;
use experiments::executor::{Local, Submission};
use experiments::reproduce::{Figure, Outcome, PublishedSizes, ReproduceConfig, Scale};
use experiments::slurm::{ARRAY_TASK_ID, JobCommands, JobInvocation, Slurm, SlurmConfig};
use paper::plan;
use store::Store;

use crate::store_args::{StoreArgs, progress_bar};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// A reproduction config (TOML: scale, models, figures, substitutes, bn_policy), as
    /// written to `<out>/reproduce.toml` by an earlier run, instead of --scale, --only,
    /// --models and --substitute.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scale", "only", "models", "substitute"])]
    config: Option<PathBuf>,

    /// smoke: the whole pipeline in minutes; quick: about 2.5 hours of compute, 1h18m wall with --jobs 2, on a 2-core CPU (Lenet at
    /// full length, the conv nets shortened and narrowed, one init, two data orders); medium:
    /// about 3 hours on 2 cores, Lenet as in quick and Resnet-20 narrowed but trained long enough
    /// for IMP's "matching" to mean something (no "Beyond the paper" unless named with --only);
    /// paper: Table 1 exactly (3 inits x 3 data orders, every k). Every cut is listed in the
    /// report.
    #[arg(long, default_value = "quick")]
    scale: Scale,

    /// Only these figures (comma separated): fig2 .. fig8, appb, appc, appd, appe, beyond,
    /// levels (IMP-level connectivity), layerwise (layer-wise IMP beside global IMP); the last
    /// two are drawn only when asked for.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Figure>,

    /// Only these networks (comma separated names from `rewind presets`). Default: the three
    /// networks of the main text (Lenet, Resnet-20, VGG-16) at smoke and quick scale, Lenet and
    /// Resnet-20 at medium scale, every network at paper scale.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,

    /// Run the experiments of one dataset on another, e.g. `cifar10=fashion-mnist` where
    /// CIFAR-10 cannot be downloaded. Every figure and table then says so.
    #[arg(long, value_name = "PAPER=USED")]
    substitute: Vec<String>,

    /// Where the figures (PNG), `results.json` and `REPORT.md` go. Default:
    /// `reports/<scale>`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,

    /// Print the plan (networks, cuts, runs to train and already finished) and stop. Needs
    /// no data: epoch lengths come from the datasets' published sizes.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Where the runs are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// Here, `--jobs` runs at a time.
    Local,
    /// On a Slurm cluster: submit job arrays with `sbatch` and return.
    Slurm,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Cluster (--executor slurm)")]
struct ClusterArgs {
    /// local: run here, --jobs at a time. slurm: write every unfinished run as Slurm job
    /// arrays (one array per stage of the run graph, `afterok` dependencies between stages,
    /// one run per array task, a last job that renders the report), submit them with sbatch
    /// and return. The store (--store) and the data must be on a filesystem every node sees.
    /// Follow progress with `rewind runs list --store DIR`; submit again after a failure to
    /// resume (finished runs are reused, interrupted ones resume from their checkpoints).
    #[arg(long, value_enum, default_value = "local")]
    executor: ExecutorKind,

    /// Slurm partition of the jobs.
    #[arg(long)]
    partition: Option<String>,

    /// GPUs per job (`--gres=gpu:N`); more than one trains each run data-parallel.
    #[arg(long, default_value_t = 0)]
    gpus_per_job: u32,

    /// CPU cores per job (`--cpus-per-task`).
    #[arg(long)]
    cpus_per_job: Option<u32>,

    /// Wall-clock limit of each job, HH:MM:SS or D-HH:MM:SS.
    #[arg(long, value_name = "HH:MM:SS")]
    time: Option<String>,

    /// Most runs in one job array (keep it under the cluster's MaxArraySize).
    #[arg(long, default_value_t = 1000)]
    max_array_size: usize,

    /// A further sbatch option for every job, e.g. `--sbatch-arg=--account=proj` (repeatable).
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
}

/// What to reproduce: the config file, or the options.
fn reproduce_config(args: &ReproduceArgs) -> Result<ReproduceConfig> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut config: ReproduceConfig = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a reproduction config (see a reproduce.toml written beside a report)",
                path.display()
            )
        })?;
        if config.models.is_empty() {
            config.models = paper::default_networks(config.scale);
        }
        return Ok(config);
    }
    let mut config = paper::config(args.scale);
    if !args.only.is_empty() {
        config.figures = args.only.clone();
    }
    if !args.models.is_empty() {
        config.models = args.models.clone();
    }
    config.substitutes = args
        .substitute
        .iter()
        .map(|s| results::parse_substitute(s).context("--substitute"))
        .collect::<Result<_>>()?;
    Ok(config)
}

pub fn run(args: ReproduceArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let config = reproduce_config(&args)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(config.scale.as_str()));
    if args.dry_run {
        return dry_run(&args, &config, &out, data_dir, allow_download);
    }
    let outcome = match args.cluster.executor {
        ExecutorKind::Local => {
            let runner = args.store.runner(data_dir, allow_download, args.quiet)?;
            let local = Local {
                runner: &runner,
                workers: args.store.jobs,
                progress: progress_bar(args.quiet),
            };
            paper::run(&config, &runner.data, &local, &runner.store)
        }
        ExecutorKind::Slurm => {
            let store = Store::open(&args.store.store)?;
            let jobs = RewindJobs::new(&args, &out, data_dir, allow_download)?;
            let slurm = slurm_executor(&args, &config, &jobs)?;
            // Slurm planning needs no data: epoch lengths from the published sizes.
            paper::run(&config, &PublishedSizes, &slurm, &store)
        }
    }
    .map_err(|e| explain(e, &config, data_dir))?;
    match outcome {
        Outcome::Finished(results) => {
            let written = figures::write_report(&results, &out)?;
            let toml = toml::to_string(&config)?;
            train::write_atomic(&out.join("reproduce.toml"), toml.as_bytes())?;
            println!(
                "{} runs ({} s of training in total); {} figures and the report in {}",
                results.runs,
                results.compute_seconds.round(),
                written.figures.len(),
                out.display()
            );
        }
        Outcome::Submitted {
            submission,
            planned,
        } => print_submission(&submission, planned, &args.store.store, &out),
    }
    Ok(())
}

/// A missing dataset or a network without the scale's cut, with what to do about it in this
/// binary's flags.
fn explain(e: experiments::Error, config: &ReproduceConfig, data_dir: &Path) -> anyhow::Error {
    if let experiments::Error::NoCut { name, .. } = &e {
        let name = name.clone();
        // Only networks that have the scale's cut: the advice must not fail again.
        let others: Vec<&str> = config
            .models
            .iter()
            .map(String::as_str)
            .filter(|m| *m != name && paper::entry(m).is_ok_and(|e| e.cut(config.scale).is_ok()))
            .collect();
        let with_cut: Vec<&str> = paper::ENTRIES
            .iter()
            .filter(|e| e.cut(config.scale).is_ok())
            .map(|e| e.name)
            .collect();
        let with_cut = format!(
            "Networks with a {} cut: {}.",
            config.scale,
            with_cut.join(", ")
        );
        return if others.is_empty() {
            anyhow::anyhow!("{e}\n{with_cut}\nPass --scale quick or --scale paper for {name}.")
        } else {
            anyhow::anyhow!(
                "{e}\n{with_cut}\nPass --models {} to run the others.",
                others.join(",")
            )
        };
    }
    match e.missing_dataset() {
        Some(DatasetName::Cifar10) if config.substitutes.is_empty() => anyhow::anyhow!(
            "{e}\nCIFAR-10 is not available here. Put it under {}/cifar10, or pass \
             --substitute cifar10=fashion-mnist to run the CIFAR experiments on \
             Fashion-MNIST (every figure and table then says so).",
            data_dir.display()
        ),
        Some(DatasetName::Imagenet) => {
            let others: Vec<&str> = config
                .models
                .iter()
                .map(String::as_str)
                .filter(|m| paper::recipe(m).is_ok_and(|r| r.data.dataset != DatasetName::Imagenet))
                .collect();
            anyhow::anyhow!(
                "{e}\nResnet-50 and Inception-v3 need ImageNet under {}/imagenet. To run \
                 the other networks only, pass --models {}.",
                data_dir.display(),
                others.join(",")
            )
        }
        _ => e.into(),
    }
}

/// Prints the plan: networks, cuts, runs, and the job arrays Slurm would get. Reads the
/// store, needs no data.
fn dry_run(
    args: &ReproduceArgs,
    config: &ReproduceConfig,
    out: &Path,
    data_dir: &Path,
    allow_download: bool,
) -> Result<()> {
    let (plan, models) = plan(config, &PublishedSizes).map_err(|e| explain(e, config, data_dir))?;
    let store = Store::open(&args.store.store)?;
    for m in &models {
        let (s, d) = (&m.setup, &m.setup.design);
        println!(
            "{}: {} for {} steps, {} inits x {} data orders, dense k {:?}, sparse k {:?}, {} pruning rounds of {:.1}%",
            s.preset,
            s.recipe.model,
            d.total_steps,
            d.init_seeds.len(),
            d.data_seeds.len(),
            d.dense_ks,
            d.sparse_ks,
            d.levels,
            100.0 * d.fraction
        );
    }
    let trains = plan.ids().iter().filter(|id| id.is_training()).count();
    let done = plan.ids().iter().filter(|id| store.is_done(id)).count();
    println!(
        "{} runs ({} trainings, {} interpolations), {} already finished in {}",
        plan.len(),
        trains,
        plan.len() - trains,
        done,
        store.root().display()
    );
    if args.cluster.executor == ExecutorKind::Slurm {
        let jobs = RewindJobs::new(args, out, data_dir, allow_download)?;
        let arrays = slurm_executor(args, config, &jobs)?.arrays(&plan, &store);
        let sizes: Vec<String> = arrays
            .iter()
            .map(|a| format!("{} ({})", a.name, a.tasks.len()))
            .collect();
        println!(
            "Slurm: {} job arrays: {}, then the report job",
            arrays.len(),
            sizes.join(", ")
        );
    }
    Ok(())
}

/// How Slurm's jobs invoke this binary: `rewind runs exec` for an array task, `rewind
/// reproduce --config` for the report, with the data options of this invocation.
struct RewindJobs {
    /// Options before the subcommand (`--data-dir DIR`, `--no-download`).
    global: Vec<String>,
    devices: usize,
    /// The report's output directory (absolute).
    out: String,
}

impl RewindJobs {
    fn new(
        args: &ReproduceArgs,
        out: &Path,
        data_dir: &Path,
        allow_download: bool,
    ) -> Result<RewindJobs> {
        let mut global = vec!["--data-dir".to_string(), absolute(data_dir)?];
        if !allow_download {
            global.push("--no-download".into());
        }
        let gpus = args.cluster.gpus_per_job as usize;
        Ok(RewindJobs {
            global,
            devices: if gpus > 1 { gpus } else { args.store.devices },
            out: absolute(out)?,
        })
    }

    fn with_global(&self, rest: &[&str]) -> Vec<String> {
        let mut words = self.global.clone();
        words.extend(rest.iter().map(|w| w.to_string()));
        words
    }
}

impl JobInvocation for RewindJobs {
    fn run_task(&self, store: &Path, manifest: &Path) -> Vec<String> {
        let (store, manifest) = (store.display().to_string(), manifest.display().to_string());
        let devices = self.devices.to_string();
        self.with_global(&[
            "runs",
            "--store",
            &store,
            "exec",
            "--manifest",
            &manifest,
            "--task",
            ARRAY_TASK_ID,
            "--devices",
            &devices,
        ])
    }

    fn render_report(&self, store: &Path, config: &Path) -> Vec<String> {
        let (store, config) = (store.display().to_string(), config.display().to_string());
        let devices = self.devices.to_string();
        self.with_global(&[
            "reproduce",
            "--config",
            &config,
            "--store",
            &store,
            "--out",
            &self.out,
            "--devices",
            &devices,
            "--quiet",
        ])
    }
}

fn absolute(p: &Path) -> Result<String> {
    Ok(std::path::absolute(p)
        .with_context(|| format!("cannot resolve {}", p.display()))?
        .display()
        .to_string())
}

/// The Slurm executor of these options, with `jobs` saying how its jobs run this binary.
fn slurm_executor<'a>(
    args: &ReproduceArgs,
    config: &ReproduceConfig,
    jobs: &'a RewindJobs,
) -> Result<Slurm<'a>> {
    let c = &args.cluster;
    let slurm = SlurmConfig {
        partition: c.partition.clone(),
        gpus_per_job: c.gpus_per_job,
        cpus_per_job: c.cpus_per_job,
        time: c.time.clone(),
        max_array_size: c.max_array_size,
        extra: c.sbatch_arg.clone(),
        ..SlurmConfig::default()
    };
    slurm.validate()?;
    Ok(Slurm {
        config: slurm,
        commands: JobCommands {
            binary: std::env::current_exe().context("cannot find the rewind binary")?,
            invocation: jobs,
            report: Some(config.clone()),
        },
    })
}

fn print_submission(submission: &Submission, planned: usize, store: &Path, out: &Path) {
    for job in &submission.jobs {
        let n = job.runs;
        println!(
            "job {}: {} ({n} run{}){}",
            job.id,
            job.name,
            if n == 1 { "" } else { "s" },
            if job.after.is_empty() {
                String::new()
            } else {
                format!(", after {}", job.after.join(", "))
            }
        );
    }
    if let Some(job) = &submission.final_job {
        println!("job {job}: the report, into {}", out.display());
    }
    println!(
        "submitted {} of {} runs ({} already finished) in {} job arrays; scripts and logs in \
         {}\nfollow with `rewind runs list --store {}` or `squeue --me`; if a job fails, \
         submit again to resume",
        submission.runs(),
        planned,
        planned - submission.runs(),
        submission.jobs.len(),
        submission.dir.display(),
        store.display()
    );
}
