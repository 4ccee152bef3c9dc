use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use experiments::instability::{InstabilityConfig, ParentRun, instability_summary};
use experiments::reproduce::EpochLength;
use experiments::runs::{Job, Plan, Start};
use lmc::BnPolicy;
use results::{Alignment, RunId};
use sparsity::PruneRule;
use train::Steps;

use crate::store_args::{StoreArgs, execute, write_summary};
use crate::train_cmd::RunArgs;

#[derive(Args, Debug)]
pub struct InstabilityArgs {
    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    store: StoreArgs,

    /// Iterations k at which pairs of children are spawned (comma separated, e.g.
    /// `0,100,500,2000`).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    k: Vec<Steps>,

    /// Number of initialisations (init seeds 1..=N). Ignored with --sparse-start.
    #[arg(long, default_value_t = 3)]
    inits: u64,

    /// Number of data orders of the children (data seeds 1..=N); every distinct pair is
    /// interpolated (3 orders: 3 pairs, the paper's 3 inits x 3 data orders). The parents
    /// train with data seed 0.
    #[arg(long, default_value_t = 3)]
    orders: u64,

    /// Points on the interpolation path.
    #[arg(long, default_value_t = 30)]
    points: usize,

    /// Re-estimate BN statistics on this many training batches after interpolating (REPAIR
    /// style) instead of interpolating them (the paper).
    #[arg(long, value_name = "BATCHES")]
    reestimate_bn: Option<usize>,

    /// Align each pair before interpolating: `none` (the paper), `weights` (weight matching,
    /// Ainsworth et al. 2023: the second child's hidden units, BN statistics and masks are
    /// permuted to match the first's, so the instability measured is modulo permutation) or
    /// `activations` (activation matching: units matched by the correlation of their
    /// activations on 5,000 training images; Lenet, VGG and the CIFAR Resnets).
    /// Combines with --reestimate-bn (REPAIR-style). Aligned interpolations are their own
    /// store entries; the children are shared with the unaligned analysis.
    #[arg(long, default_value = "none", value_name = "ALIGNMENT")]
    align: Alignment,

    /// Also measure instability every this many steps of the children (Figure 4).
    #[arg(long)]
    curve_every: Option<Steps>,

    /// Start from a sparse network: the store id of an IMP level or baseline run (printed by
    /// `rewind imp`, listed by `rewind runs list`); k is then that run's rewind step and its
    /// mask stays fixed. The run's own recipe is used.
    #[arg(long, value_name = "RUN")]
    sparse_start: Option<String>,
}

pub fn run(args: InstabilityArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let runner = args
        .store
        .runner(data_dir, allow_download, args.run.quiet)?;
    let mut plan = Plan::new();
    let instability = InstabilityConfig {
        data_seeds: (1..=args.orders).collect(),
        points: args.points,
        bn_policy: match args.reestimate_bn {
            Some(batches) => BnPolicy::Reestimate { batches },
            None => BnPolicy::Interpolate,
        },
        eval: Default::default(),
        throughout_every: None,
        align: args.align,
    };
    let (parents, total, curve_every, eval) = match &args.sparse_start {
        Some(id) => {
            let id: RunId = id.parse()?;
            let job: Job = runner.store.identity(&id).with_context(|| {
                format!(
                    "{id} is not a run of the store {}",
                    runner.store.root().display()
                )
            })?;
            let Job::Train(spec) = job else {
                bail!("{id} is an interpolation, not a training run");
            };
            let Start::Branch { step, .. } = spec.start else {
                bail!("{id} trains from the initialisation: it is not a pruned network");
            };
            let ipe = runner.data.iterations_per_epoch(&spec.recipe)?;
            let total = spec.recipe.training_steps.resolve(ipe);
            let every = args.curve_every.map(|s| s.resolve(ipe));
            let eval = spec.eval.clone();
            plan.adopt(&id, Job::Train(spec))?;
            (
                vec![ParentRun {
                    init_seed: 0,
                    run: id,
                    ks: vec![step],
                }],
                total,
                every,
                eval,
            )
        }
        None => {
            let trainer = args.run.trainer(data_dir, allow_download, &[])?;
            let config = &trainer.config;
            let rule = PruneRule::for_model(&config.recipe.model);
            let parents = (1..=args.inits)
                .map(|init| {
                    Ok(ParentRun {
                        init_seed: init,
                        run: plan.train_from_init(&config.recipe, init, 0, &config.eval, &rule)?,
                        ks: args.k.iter().map(|k| trainer.resolve(*k)).collect(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let every = args.curve_every.map(|s| trainer.resolve(s));
            (parents, trainer.total_steps(), every, config.eval.clone())
        }
    };
    let instability = InstabilityConfig {
        eval: train::EvalConfig {
            every: None,
            ..eval
        },
        throughout_every: curve_every,
        ..instability
    };
    let pairs = instability.plan(&mut plan, &parents, total)?;
    execute(&runner, &plan, args.store.jobs, args.run.quiet)?;
    let summary = instability_summary(&runner.store, &pairs)?;
    println!(
        "{:>8} {:>22} {:>22} {:>18} {:>16} {:>16}",
        "k",
        "test instability (pp)",
        "train instability (pp)",
        "test loss barrier",
        "L2 (prunable)",
        "child accuracy"
    );
    for k in &summary.per_k {
        let train = k
            .train_instability
            .map_or("-".to_string(), |t| format!("{:.2} ± {:.2}", t.mean, t.std));
        let loss = k
            .test_loss_barrier
            .map_or("-".to_string(), |t| format!("{:.3} ± {:.3}", t.mean, t.std));
        println!(
            "{:>8} {:>22} {:>22} {:>18} {:>16} {:>16}",
            k.k,
            format!(
                "{:.2} ± {:.2}",
                k.test_instability.mean, k.test_instability.std
            ),
            train,
            loss,
            format!("{:.3} ± {:.3}", k.l2_prunable.mean, k.l2_prunable.std),
            format!(
                "{:.2} ± {:.2}",
                k.child_test_accuracy.mean, k.child_test_accuracy.std
            ),
        );
    }
    let name = store::summary_name("instability", &(&instability, &parents))?;
    let path = write_summary(&runner.store, &name, &(&instability, &summary))?;
    println!("Summary in {}", path.display());
    Ok(())
}
