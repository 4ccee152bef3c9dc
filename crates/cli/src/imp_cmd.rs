use std::path::Path;

use anyhow::Result;
use clap::{Args, ValueEnum};
use experiments::imp::{Baseline, ImpConfig, imp_results};
use experiments::runs::{OptimizerAtRewind, Plan};
use sparsity::{LayerRate, PruneRule};
use train::Steps;

use crate::store_args::{StoreArgs, execute, write_summary};
use crate::train_cmd::RunArgs;

#[derive(Args, Debug)]
pub struct ImpArgs {
    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    store: StoreArgs,

    /// Rewind step k: surviving weights (and BN buffers, step counter and schedule) go back to
    /// their values at k. `0it` is the original lottery ticket.
    #[arg(long, default_value = "0it")]
    rewind: Steps,

    /// Pruning rounds after the dense run (density 0.8^levels with the default fraction).
    /// Default: 10 (1 for the ImageNet presets, which prune one-shot).
    #[arg(long, conflicts_with = "one_shot")]
    levels: Option<usize>,

    /// Fraction of the surviving weights pruned per round (global magnitude pruning).
    /// Default: 0.2.
    #[arg(long, conflicts_with = "one_shot")]
    fraction: Option<f64>,

    /// Prune once, globally by magnitude, straight to this density (the paper's setting for
    /// Resnet-50 and Inception-v3: 0.3, which is the default for those presets).
    #[arg(long, value_name = "DENSITY")]
    one_shot: Option<f64>,

    /// Layers never pruned (comma-separated layer paths such as `Lenet.output`). Default: the
    /// paper's framework's choice for the network (Lenet and VGG-16: the output layer;
    /// ResNets: none). Pass `none` to prune every conv and linear layer.
    #[arg(long, value_delimiter = ',')]
    unpruned: Option<Vec<String>>,

    /// Layers pruned at a rate of their own, within the layer (comma-separated
    /// LAYER=FRACTION with a fraction in [0, 1), e.g. `Lenet.hidden.1=0.1`): each round removes
    /// that fraction of the layer's surviving weights, and the other layers are pruned
    /// globally by --fraction (with --one-shot, the other layers reach that density, so the
    /// whole network does not). A layer given twice, or one that is not pruned (Lenet's output
    /// layer, unless --unpruned none), is refused before anything trains. The rule is part of
    /// every run's identity, the dense run's too: it trains again. Default: none, the paper's
    /// global pruning.
    #[arg(long, value_delimiter = ',', value_name = "LAYER=FRACTION")]
    layer_rates: Vec<LayerRate>,

    /// Layer-wise pruning: every pruned layer (but those with --layer-rates) loses --fraction
    /// of its own surviving weights per round, so all keep the same density, instead of the
    /// paper's global pruning across layers. Part of every run's identity, as the rates are.
    #[arg(long)]
    layerwise: bool,

    /// Optimiser state after rewinding: a fresh optimiser (the paper's code) or the dense
    /// run's state at step k.
    #[arg(long, value_enum, default_value = "fresh")]
    optimizer_at_rewind: RewindOptimizer,

    /// Baseline branches trained at the pruned levels: random-prune, reinit (comma separated).
    #[arg(long, value_delimiter = ',')]
    baselines: Vec<Baseline>,

    /// Levels that get the baselines (default: every pruned level).
    #[arg(long, value_delimiter = ',')]
    baseline_levels: Vec<usize>,

    /// Seed of the random masks and re-initialised weights (plus the level).
    #[arg(long, default_value_t = 1000)]
    baseline_seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RewindOptimizer {
    Fresh,
    Rewound,
}

/// The `--unpruned` list: `none` for no layer, the network's default when absent.
fn prune_rule(arg: Option<Vec<String>>, model: &nets::ModelConfig) -> PruneRule {
    match arg {
        Some(list) if list.iter().any(|l| l == "none") => PruneRule::default(),
        Some(unpruned_layers) => PruneRule {
            unpruned_layers,
            layer_rates: vec![],
            layerwise: false,
        },
        None => PruneRule::for_model(model),
    }
}

pub fn run(args: ImpArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let trainer = args.run.trainer(data_dir, allow_download, &[])?;
    let config = &trainer.config;
    let one_shot = paper::entry(&args.run.preset).is_ok_and(|e| e.pruning.is_one_shot());
    let (levels, fraction) = match (args.one_shot, args.levels, args.fraction) {
        (Some(density), _, _) => {
            if !(density > 0.0 && density < 1.0) {
                anyhow::bail!("--one-shot takes a density between 0 and 1, got {density}");
            }
            (1, 1.0 - density)
        }
        (None, None, None) if one_shot => (1, 0.7),
        (None, levels, fraction) => (levels.unwrap_or(10), fraction.unwrap_or(0.2)),
    };
    let imp = ImpConfig {
        recipe: config.recipe.clone(),
        eval: config.eval.clone(),
        init_seed: config.init_seed,
        data_seed: config.data_seed,
        rewind: trainer.resolve(args.rewind),
        levels,
        fraction,
        rule: PruneRule {
            // One rule, one identity, whatever order the rates were given in.
            layer_rates: {
                let mut rates = args.layer_rates;
                rates.sort_by(|a, b| a.layer.cmp(&b.layer));
                rates
            },
            layerwise: args.layerwise,
            ..prune_rule(args.unpruned, &config.recipe.model)
        },
        optimizer_at_rewind: match args.optimizer_at_rewind {
            RewindOptimizer::Fresh => OptimizerAtRewind::Fresh,
            RewindOptimizer::Rewound => OptimizerAtRewind::Rewound,
        },
        baselines: args.baselines,
        baseline_levels: args.baseline_levels,
        baseline_seed: args.baseline_seed,
    };
    // A rate for a layer that is not pruned: said now, not after the dense run.
    imp.rule
        .check_layer_rates(&trainer.build_model::<paper_networks::Network>()?)?;
    if imp.rewind >= trainer.total_steps() {
        anyhow::bail!(
            "the rewind step {} is not before the end of training ({} steps)",
            args.rewind,
            trainer.total_steps()
        );
    }
    let runner = args
        .store
        .runner(data_dir, allow_download, args.run.quiet)?;
    let mut plan = Plan::new();
    let runs = imp.plan(&mut plan)?;
    execute(&runner, &plan, args.store.jobs, args.run.quiet)?;
    let results = imp_results(&runner.store, &runs)?;
    println!(
        "{:<6} {:<13} {:>9} {:>14}  run",
        "level", "branch", "density", "test accuracy"
    );
    for r in &results {
        println!(
            "{:<6} {:<13} {:>8.2}% {:>13.2}%  {}",
            r.level,
            r.branch,
            100.0 * r.density,
            100.0 * r.test_accuracy,
            r.run
        );
    }
    let name = store::summary_name("imp", &imp)?;
    let path = write_summary(&runner.store, &name, &(&imp, &results))?;
    println!("Summary in {}", path.display());
    Ok(())
}
