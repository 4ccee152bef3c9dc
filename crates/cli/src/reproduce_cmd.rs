use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use data::DatasetName;
use experiments::reproduce::{Figure, ReproduceConfig, Scale, collect, default_models, plan};

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
        return Ok(());
    }
    execute(&runner, &plan, args.store.jobs, args.quiet)?;
    let results = collect(&config, &models, &plan, &runner.store, started)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("reports").join(args.scale.as_str()));
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
