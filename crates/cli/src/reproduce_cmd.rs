use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use data::DatasetName;
use experiments::reproduce::{Figure, ReproduceConfig, Scale, collect, default_models, plan};
use experiments::slurm::{JobCommands, SlurmConfig, job_arrays, submit};

use crate::store_args::{StoreArgs, execute};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// smoke: the whole pipeline in minutes; quick: a few hours on a 2-core CPU (Lenet at
    /// full length, the conv nets shortened and narrowed, one init, two data orders); paper:
    /// Table 1 exactly (3 inits x 3 data orders, every k). Every cut is listed in the report.
    #[arg(long, default_value = "quick")]
    scale: Scale,

    /// Only these figures (comma separated): fig2 .. fig8, appb, appc, appd, appe.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Figure>,

    /// Only these networks (comma separated Table 1 presets: lenet, resnet20, resnet20-low,
    /// resnet20-warmup, vgg16, vgg16-low, vgg16-warmup). Default: lenet, resnet20, vgg16 at
    /// smoke and quick scale, all seven at paper scale.
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

    /// Print the plan (networks, cuts, runs to train and already finished) and stop.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Where the runs are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Executor {
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
    executor: Executor,

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

fn parse_substitute(s: &str) -> Result<(DatasetName, DatasetName)> {
    let (from, to) = s.split_once('=').with_context(|| {
        format!("--substitute takes PAPER=USED, e.g. cifar10=fashion-mnist; got `{s}`")
    })?;
    Ok((from.parse()?, to.parse()?))
}

pub fn run(args: ReproduceArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let started = Instant::now();
    let mut config = ReproduceConfig::new(args.scale);
    if !args.only.is_empty() {
        config.figures = args.only.clone();
    }
    config.models = if args.models.is_empty() {
        default_models(args.scale)
    } else {
        args.models.clone()
    };
    config.substitutes = args
        .substitute
        .iter()
        .map(|s| parse_substitute(s))
        .collect::<Result<_>>()?;
    let runner = args.store.runner(data_dir, allow_download, args.quiet)?;
    let (plan, models) = plan(&config, &runner.data).map_err(|e| {
        let text = e.to_string();
        if text.contains("cifar") && config.substitutes.is_empty() {
            anyhow::anyhow!(
                "{text}\nCIFAR-10 is not available here. Put it under {}/cifar10, or pass \
                 --substitute cifar10=fashion-mnist to run the CIFAR experiments on \
                 Fashion-MNIST (every figure and table then says so).",
                data_dir.display()
            )
        } else if text.contains("imagenet") {
            let others: Vec<&str> = config
                .models
                .iter()
                .map(String::as_str)
                .filter(|m| !experiments::reproduce::is_imagenet(m))
                .collect();
            anyhow::anyhow!(
                "{text}\nResnet-50 and Inception-v3 need ImageNet under {}/imagenet. To run \
                 the other networks only, pass --models {}.",
                data_dir.display(),
                others.join(",")
            )
        } else {
            anyhow::anyhow!(text)
        }
    })?;
    if plan.is_empty() {
        bail!("nothing to run: no figure needs a run for these networks");
    }
    for m in &models {
        tracing::info!(
            "{}: {} ({} steps){}",
            m.setup.preset,
            m.setup.recipe.model,
            m.setup.total_steps,
            if m.setup.cuts.is_empty() {
                String::new()
            } else {
                format!("; cuts: {}", m.setup.cuts.join("; "))
            }
        );
    }
    if args.dry_run {
        let trains = plan
            .ids()
            .iter()
            .filter(|id| id.starts_with("train-"))
            .count();
        let done = plan
            .ids()
            .iter()
            .filter(|id| runner.store.is_done(id))
            .count();
        for m in &models {
            println!(
                "{}: {} for {} steps, {} inits x {} data orders, dense k {:?}, sparse k {:?}, {} pruning rounds of {:.1}%",
                m.setup.preset,
                m.setup.recipe.model,
                m.setup.total_steps,
                m.setup.init_seeds.len(),
                m.setup.data_seeds.len(),
                m.setup.dense_ks,
                m.setup.sparse_ks,
                m.setup.levels,
                100.0 * m.setup.fraction
            );
        }
        println!(
            "{} runs ({} trainings, {} interpolations), {} already finished in {}",
            plan.len(),
            trains,
            plan.len() - trains,
            done,
            runner.store.root().display()
        );
        if args.cluster.executor == Executor::Slurm {
            let arrays = job_arrays(
                &plan,
                |id| runner.is_complete(&plan, id),
                args.cluster.max_array_size,
            );
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
        return Ok(());
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(args.scale.as_str()));
    if args.cluster.executor == Executor::Slurm {
        return submit_to_slurm(&args, &runner, &plan, &out, data_dir, allow_download);
    }
    execute(&runner, &plan, args.store.jobs, args.quiet)?;
    let results = collect(&config, &models, &plan, &runner.store, started)?;
    let written = figures::write_report(&results, &out)?;
    println!(
        "{} runs ({} s of training in total); {} figures and the report in {}",
        results.runs,
        results.compute_seconds.round(),
        written.figures.len(),
        out.display()
    );
    Ok(())
}

/// Submits the unfinished runs of `plan` as Slurm job arrays, with a last job that runs this
/// same command locally on the finished store (which only renders the report).
fn submit_to_slurm(
    args: &ReproduceArgs,
    runner: &experiments::runs::Runner,
    plan: &experiments::runs::Plan,
    out: &Path,
    data_dir: &Path,
    allow_download: bool,
) -> Result<()> {
    let c = &args.cluster;
    let config = SlurmConfig {
        partition: c.partition.clone(),
        gpus_per_job: c.gpus_per_job,
        cpus_per_job: c.cpus_per_job,
        time: c.time.clone(),
        max_array_size: c.max_array_size,
        extra: c.sbatch_arg.clone(),
        ..SlurmConfig::default()
    };
    config.validate()?;
    let absolute = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    let mut global = vec!["--data-dir".to_string(), path_arg(&absolute(data_dir)?)];
    if !allow_download {
        global.push("--no-download".into());
    }
    let devices = if c.gpus_per_job > 1 {
        c.gpus_per_job as usize
    } else {
        args.store.devices
    };
    let mut last = vec![
        "reproduce".to_string(),
        "--scale".into(),
        args.scale.as_str().into(),
        "--store".into(),
        path_arg(&absolute(&args.store.store)?),
        "--out".into(),
        path_arg(&absolute(out)?),
        "--devices".into(),
        devices.to_string(),
        "--quiet".into(),
    ];
    if !args.only.is_empty() {
        let only: Vec<&str> = args.only.iter().map(|f| f.as_str()).collect();
        last.extend(["--only".into(), only.join(",")]);
    }
    if !args.models.is_empty() {
        last.extend(["--models".into(), args.models.join(",")]);
    }
    for s in &args.substitute {
        last.extend(["--substitute".into(), s.clone()]);
    }
    runner.register(plan)?;
    let arrays = job_arrays(plan, |id| runner.is_complete(plan, id), c.max_array_size);
    let commands = JobCommands {
        rewind: std::env::current_exe().context("cannot find the rewind binary")?,
        global,
        exec: vec!["--devices".into(), devices.to_string()],
        last: Some(last),
    };
    let submission = submit(runner.store.root(), arrays, &commands, &config)?;
    for (array, job) in submission.arrays.iter().zip(&submission.array_jobs) {
        let n = array.tasks.len();
        println!(
            "job {job}: {} ({n} run{}){}",
            array.name,
            if n == 1 { "" } else { "s" },
            if array.after.is_empty() {
                String::new()
            } else {
                let after: Vec<&str> = array
                    .after
                    .iter()
                    .map(|&i| submission.array_jobs[i].as_str())
                    .collect();
                format!(", after {}", after.join(", "))
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
        plan.len(),
        plan.len() - submission.runs(),
        submission.arrays.len(),
        submission.dir.display(),
        runner.store.root().display()
    );
    Ok(())
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}
