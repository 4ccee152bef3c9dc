use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use lmc::BnPolicy;
use lmc::analysis::{Analysis, AnalysisConfig, SparseStart};
use sparsity::PruneRule;
use train::Steps;

use crate::train_cmd::RunArgs;

#[derive(Args, Debug)]
pub struct InstabilityArgs {
    #[command(flatten)]
    run: RunArgs,

    /// Iterations k at which pairs of children are spawned (comma separated, e.g.
    /// `0,100,500,2000`).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    k: Vec<Steps>,

    /// Number of initialisations (init seeds 1..=N). Ignored with --sparse-start.
    #[arg(long, default_value_t = 3)]
    inits: u64,

    /// Number of data orders of the children (data seeds 1..=N); every distinct pair is
    /// interpolated (3 orders: 3 pairs, the paper's 3 inits x 3 data orders).
    #[arg(long, default_value_t = 3)]
    orders: u64,

    /// Points on the interpolation path.
    #[arg(long, default_value_t = 30)]
    points: usize,

    /// Re-estimate BN statistics on this many training batches after interpolating (REPAIR
    /// style) instead of interpolating them (the paper).
    #[arg(long, value_name = "BATCHES")]
    reestimate_bn: Option<usize>,

    /// Also measure instability every this many steps of the children (Figure 4).
    #[arg(long)]
    curve_every: Option<Steps>,

    /// Start from a sparse network: the run directory of an IMP level or baseline (e.g.
    /// `runs/imp/level-05`); k is then that run's rewind step and its mask stays fixed.
    #[arg(long, value_name = "DIR")]
    sparse_start: Option<PathBuf>,

    /// Layers the sparse start left unpruned (its IMP `--unpruned`; default: the network's).
    #[arg(long, value_delimiter = ',')]
    unpruned: Option<Vec<String>>,

    /// Output directory of the analysis.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: InstabilityArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let trainer = args.run.trainer(data_dir, allow_download, &[])?;
    let rule = PruneRule {
        unpruned_layers: crate::imp_cmd::unpruned_layers(
            args.unpruned,
            &trainer.config.recipe.model,
        ),
    };
    let analysis = AnalysisConfig {
        ks: args.k,
        // A sparse start is one network: its own init.
        init_seeds: if args.sparse_start.is_some() {
            vec![1]
        } else {
            (1..=args.inits).collect()
        },
        data_seeds: (1..=args.orders).collect(),
        parent_data_seed: 0,
        points: args.points,
        bn_policy: match args.reestimate_bn {
            Some(batches) => BnPolicy::Reestimate { batches },
            None => BnPolicy::Interpolate,
        },
        curve_every: args.curve_every,
        start: args
            .sparse_start
            .map(|level_dir| SparseStart { level_dir, rule }),
    };
    let device = train::default_device();
    let summary = Analysis::new(
        trainer.config.clone(),
        trainer.data.clone(),
        &device,
        analysis,
        &args.out,
    )?
    .with_progress(!args.run.quiet)
    .run()?;
    println!(
        "{:>8} {:>22} {:>22} {:>16}",
        "k", "test instability (pp)", "train instability (pp)", "L2 (prunable)"
    );
    for k in &summary.per_k {
        let train = k
            .train_instability
            .map_or("-".to_string(), |t| format!("{:.2} ± {:.2}", t.mean, t.std));
        println!(
            "{:>8} {:>22} {:>22} {:>16}",
            k.k,
            format!(
                "{:.2} ± {:.2}",
                k.test_instability.mean, k.test_instability.std
            ),
            train,
            format!("{:.3} ± {:.3}", k.l2_prunable.mean, k.l2_prunable.std)
        );
    }
    println!("Results in {}", args.out.join("summary.json").display());
    Ok(())
}
