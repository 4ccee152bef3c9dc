//! End-to-end runs on real MNIST.

use integration::data_dir;
use train::{NoHooks, Recipe, Steps, TrainConfig, TrainData, Trainer};

/// Lenet 300-100 with the paper's recipe for one epoch (1000 steps of 60) on real MNIST.
#[test]
fn lenet_reaches_95_percent_on_mnist_in_one_epoch() {
    let recipe = Recipe::preset("lenet").expect("preset");
    let data = TrainData::load(&recipe, &data_dir(), false).expect("MNIST");
    let recipe = recipe.with_length(Steps::epochs(1), 1000);
    let mut config = TrainConfig::new(recipe, 1, 1);
    config.eval.train_subset = Some(0);
    let trainer = Trainer::new(config, data, &train::default_device())
        .expect("trainer")
        .with_progress(false);
    assert_eq!(
        (trainer.iterations_per_epoch(), trainer.total_steps()),
        (1000, 1000)
    );
    let dir = tempfile::tempdir().expect("tmp");
    let outcome = trainer.run(dir.path(), &mut NoHooks).expect("training");
    let last = outcome.final_record().expect("metrics");
    assert_eq!(last.step, 1000);
    assert!(
        last.test_accuracy >= 0.95,
        "test accuracy {:.4} after one epoch",
        last.test_accuracy
    );
    assert!(dir.path().join("config.toml").is_file() && dir.path().join("metrics.json").is_file());
}

fn lenet_one_epoch() -> (TrainConfig, TrainData) {
    let recipe = Recipe::preset("lenet").expect("preset");
    let data = TrainData::load(&recipe, &data_dir(), false).expect("MNIST");
    let mut config = TrainConfig::new(recipe.with_length(Steps::epochs(1), 1000), 1, 1);
    config.eval.every = None;
    config.eval.train_subset = Some(0);
    (config, data)
}

/// IMP on real MNIST with a one-epoch schedule: after 3 rounds (density 51.2%) the pruned
/// Lenet is within one point of the dense one, and each level's mask is nested in the last.
#[test]
fn imp_lenet_matches_dense_at_51_percent_with_nested_masks() {
    use sparsity::PruneRule;
    use sparsity::imp::{Imp, ImpConfig, OptimizerAtRewind};
    let (config, data) = lenet_one_epoch();
    let imp = ImpConfig {
        rewind: Steps::iterations(0),
        levels: 3,
        fraction: 0.2,
        rule: PruneRule {
            unpruned_layers: config.recipe.model.default_unpruned_layers(),
        },
        optimizer_at_rewind: OptimizerAtRewind::Fresh,
        baselines: vec![],
        baseline_levels: vec![],
        baseline_seed: 0,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let experiment = Imp::new(config, data, &train::default_device(), imp, dir.path())
        .expect("imp")
        .with_progress(false);
    let results = experiment.run().expect("IMP");
    let (dense, sparse) = (&results[0], &results[3]);
    assert!((sparse.density - 0.512).abs() < 1e-3, "{}", sparse.density);
    assert!(
        sparse.test_accuracy >= dense.test_accuracy - 0.01,
        "IMP at 51.2%: {:.4}, dense: {:.4}",
        sparse.test_accuracy,
        dense.test_accuracy
    );
    let masks: Vec<_> = (1..=3)
        .map(|l| experiment.final_model(l, None).expect("level").mask)
        .collect();
    assert!(masks[1].is_subset_of(&masks[0]) && masks[2].is_subset_of(&masks[1]));
}

/// Lenet is stable at k = 0 (the paper's finding): two children of one initialisation trained
/// for one epoch with different data orders are linearly connected on real MNIST.
#[test]
fn lenet_is_stable_at_k0_on_mnist() {
    use lmc::BnPolicy;
    use lmc::analysis::{Analysis, AnalysisConfig};
    let (mut config, data) = lenet_one_epoch();
    config.eval.train_subset = Some(5_000);
    let analysis = AnalysisConfig {
        ks: vec![Steps::iterations(0)],
        init_seeds: vec![1],
        data_seeds: vec![1, 2],
        parent_data_seed: 0,
        points: 30,
        bn_policy: BnPolicy::Interpolate,
        curve_every: None,
        start: None,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let summary = Analysis::new(config, data, &train::default_device(), analysis, dir.path())
        .expect("analysis")
        .with_progress(false)
        .run()
        .expect("instability analysis");
    let pair = &summary.pairs[0];
    assert_eq!(pair.curve.points.len(), 30);
    assert!(
        pair.l2.all_parameters > 0.0,
        "different data orders give different networks"
    );
    assert!(
        pair.instability.test < 2.0,
        "test instability {:.2} points",
        pair.instability.test
    );
    assert!(pair.instability.train.expect("train") < 2.0);
}
