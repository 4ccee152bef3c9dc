//! End-to-end runs on real MNIST (and Fashion-MNIST in place of CIFAR-10).

use experiments::executor::{Executor, Local};
use experiments::runs::{DataCache, Plan, Runner};
use integration::data_dir;
use paper::PaperNetworks;
use paper_networks::Network;
use store::Store;
use train::{NoHooks, Recipe, Steps, TrainConfig, TrainData, Trainer};

/// Lenet 300-100 with the paper's recipe for one epoch (1000 steps of 60) on real MNIST.
#[test]
fn lenet_reaches_95_percent_on_mnist_in_one_epoch() {
    let recipe = paper::recipe("lenet").expect("preset");
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
    let outcome = trainer
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect("training");
    let last = outcome.final_record().expect("metrics");
    assert_eq!(last.step, 1000);
    assert!(
        last.test_accuracy >= 0.95,
        "test accuracy {:.4} after one epoch",
        last.test_accuracy
    );
    assert!(dir.path().join("config.toml").is_file() && dir.path().join("metrics.json").is_file());
}

/// The divergence rule's default trips on no Table 1 recipe of MNIST or CIFAR-10 (Fashion-MNIST
/// in its place, the networks taking one channel): each preset's first 20 steps at its own
/// learning rate, read as 4 means of 5 steps (the rule's stretch), stay below half the
/// threshold.
#[test]
fn no_mnist_or_cifar_preset_trips_the_divergence_rule_in_its_first_steps() {
    for name in paper::names() {
        let mut recipe = paper::recipe(name).expect("preset");
        match recipe.data.dataset {
            data::DatasetName::Mnist => {}
            data::DatasetName::Cifar10 => recipe.data.dataset = data::DatasetName::FashionMnist,
            _ => continue,
        }
        let data = TrainData::load(&recipe, &data_dir(), false).expect("data");
        let mut config = TrainConfig::new(recipe, 1, 1);
        config.eval.train_subset = Some(0);
        let trainer = Trainer::new(config, data, &train::default_device())
            .expect("trainer")
            .with_progress(false);
        let losses = trainer
            .step_losses(trainer.initial_state::<Network>().expect("state"), 20)
            .expect(name)
            .1;
        let threshold = trainer.config.divergence.threshold(10);
        let reads: Vec<f32> = losses
            .chunks(5)
            .map(|c| c.iter().sum::<f32>() / c.len() as f32)
            .collect();
        assert!(
            reads.iter().all(|r| f64::from(*r) < threshold / 2.0),
            "{name}: loss reads {reads:?} against the threshold {threshold:.2}"
        );
    }
}

fn runner(dir: &std::path::Path) -> Runner<PaperNetworks> {
    let mut runner = paper::runner(
        Store::open(dir).expect("store"),
        DataCache::new(&data_dir(), false),
        &train::default_device(),
    );
    runner.show_run_progress = false;
    runner
}

fn lenet_one_epoch() -> (Recipe, train::EvalConfig) {
    let recipe = paper::recipe("lenet")
        .expect("preset")
        .with_length(Steps::epochs(1), 1000);
    let eval = train::EvalConfig {
        every: None,
        train_subset: Some(5_000),
        ..Default::default()
    };
    (recipe, eval)
}

/// IMP on real MNIST with a one-epoch schedule: after 3 rounds (density 51.2%) the pruned
/// Lenet is within one point of the dense one, and each level's mask is nested in the last.
#[test]
fn imp_lenet_matches_dense_at_51_percent_with_nested_masks() {
    use experiments::imp::{ImpConfig, imp_results};
    use experiments::runs::OptimizerAtRewind;
    use sparsity::PruneRule;
    let (recipe, eval) = lenet_one_epoch();
    let imp = ImpConfig {
        rule: PruneRule::for_model(&recipe.model),
        recipe,
        eval,
        init_seed: 1,
        data_seed: 1,
        rewind: 0,
        levels: 3,
        fraction: 0.2,
        optimizer_at_rewind: OptimizerAtRewind::Fresh,
        baselines: vec![],
        baseline_levels: vec![],
        baseline_seed: 0,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(dir.path());
    let mut plan = Plan::new();
    let runs = imp.plan(&mut plan).expect("plan");
    Local::new(&runner, 1)
        .execute(&plan, &runner.store)
        .expect("IMP");
    let results = imp_results(&runner.store, &runs).expect("results");
    let (dense, sparse) = (&results[0], &results[3]);
    assert!((sparse.density - 0.512).abs() < 1e-3, "{}", sparse.density);
    assert!(
        sparse.test_accuracy >= dense.test_accuracy - 0.01,
        "IMP at 51.2%: {:.4}, dense: {:.4}",
        sparse.test_accuracy,
        dense.test_accuracy
    );
    let masks: Vec<_> = (1..=3)
        .map(|l| {
            runner
                .state_at(&runs.levels[l], 1000)
                .expect("level")
                .model
                .mask
        })
        .collect();
    assert!(masks[1].is_subset_of(&masks[0]) && masks[2].is_subset_of(&masks[1]));
}

/// Lenet is stable at k = 0 (the paper's finding): two children of one initialisation trained
/// for one epoch with different data orders are linearly connected on real MNIST.
#[test]
fn lenet_is_stable_at_k0_on_mnist() {
    use experiments::instability::{InstabilityConfig, ParentRun, instability_summary};
    use lmc::BnPolicy;
    use sparsity::PruneRule;
    let (recipe, eval) = lenet_one_epoch();
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(dir.path());
    let mut plan = Plan::new();
    let parent = plan
        .train_from_init(&recipe, 1, 0, &eval, &PruneRule::default())
        .expect("parent");
    let pairs = InstabilityConfig {
        data_seeds: vec![1, 2],
        points: 30,
        bn_policy: BnPolicy::Interpolate,
        eval,
        throughout_every: None,
        align: lmc::Alignment::None,
    }
    .plan(
        &mut plan,
        &[ParentRun {
            init_seed: 1,
            run: parent,
            ks: vec![0],
        }],
        1000,
    )
    .expect("plan");
    Local::new(&runner, 2)
        .execute(&plan, &runner.store)
        .expect("instability analysis");
    let summary = instability_summary(&runner.store, &pairs).expect("summary");
    let pair = &summary.pairs[0].result;
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

/// `reproduce --scale smoke` end to end: every run of every figure on real MNIST and
/// Fashion-MNIST (for CIFAR-10), every figure file, the report, and the series each figure
/// must hold. Running it again trains nothing.
#[test]
fn smoke_reproduction_renders_every_figure_and_the_report() {
    use experiments::reproduce::{Figure, Scale};
    use paper::{config, run_here};
    use results::Branch;
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(&dir.path().join("runs"));
    let mut config = config(Scale::Smoke);
    config.substitutes = vec![(data::DatasetName::Cifar10, data::DatasetName::FashionMnist)];
    // Every figure, the opt-in ones (asked for by name) included.
    assert!(!config.figures.iter().any(|f| f.is_opt_in()));
    config.figures = Figure::ALL.to_vec();
    let results = run_here(&config, &runner, 2).expect("smoke");
    assert_eq!(results.models.len(), 3);
    let out = dir.path().join("report");
    let written = figures::write_report(&results, &out).expect("render");
    assert_eq!(written.figures.len(), Figure::ALL.len());
    for f in Figure::ALL {
        let path = out.join(format!("{}.png", f.as_str()));
        let image = image::open(&path).expect("a PNG").to_rgb8();
        assert!(image.width() >= 520 && image.height() >= 400, "{f:?}");
        let series = figures::series_names(&results, f);
        let panels_expected = if matches!(f, Figure::Fig7 | Figure::Beyond) {
            6
        } else {
            3
        };
        assert_eq!(series.len(), panels_expected, "{f:?}: {series:?}");
        for (panel, names) in &series {
            let want: &[&str] = match f {
                Figure::Fig2 | Figure::Fig6 => &["test", "train"],
                Figure::Fig3 => &["test", "train"],
                Figure::Fig4 | Figure::AppB => &["k = 0"],
                Figure::Fig5 | Figure::Fig7 | Figure::AppE => {
                    &["IMP", "random pruning", "random reinit"]
                }
                Figure::Fig8 => &["IMP, best rewind k (highest mean)", "IMP, k = 0"],
                Figure::AppC => &["IMP, k = 0"],
                Figure::AppD => &["conv and linear weights", "all parameters"],
                Figure::Beyond => &["no alignment (the paper)", "weight matching"],
                Figure::Levels => &["rewind k = 0"],
                Figure::Layerwise => &["IMP, global (the paper), k = 0", "IMP, layer-wise, k = 0"],
            };
            for w in want {
                assert!(names.iter().any(|n| n == w), "{f:?} {panel}: {names:?}");
            }
        }
    }
    let report = std::fs::read_to_string(&written.report).expect("report");
    for f in Figure::ALL {
        assert!(report.contains(&format!("({}.png)", f.as_str())));
    }
    assert!(report.contains("Fashion-MNIST (substituted)"));
    assert!(report.contains("Scale: smoke"));
    // IMP-level connectivity: one link per pair of consecutive levels, per rewind k and init.
    for m in &results.models {
        let inits = m.setup.design.init_seeds.len();
        let expected: usize = m
            .imp
            .iter()
            .map(|s| s.levels.iter().filter(|l| l.branch == Branch::Imp).count() - 1)
            .sum::<usize>()
            * inits;
        assert!(expected > 0);
        assert_eq!(m.level_links.len(), expected, "{}", m.setup.preset);
    }
    assert!(report.contains("are consecutive IMP levels linearly connected?"));
    assert!(report.contains("(Paul et al. 2023)"));
    // Layer-wise IMP: every level of every init, and each level's layers equally dense.
    for m in &results.models {
        let lw = &m.layerwise[0];
        assert_eq!(
            lw.runs.len(),
            lw.levels.len() * m.setup.design.init_seeds.len()
        );
        for run in lw.runs.iter().filter(|r| r.level > 0) {
            let densities: Vec<f64> = run
                .layers
                .iter()
                .filter(|l| l.total > 1000)
                .map(|l| l.kept as f64 / l.total as f64)
                .collect();
            assert!(
                densities.iter().all(|d| (d - densities[0]).abs() < 2e-3),
                "{}: {densities:?}",
                m.setup.preset
            );
        }
    }
    assert!(report.contains("## Beyond the paper: layer-wise IMP"));
    // Everything is in the store now: a second invocation trains nothing.
    let before: Vec<_> = runner.store.list().expect("list");
    let again = run_here(&config, &runner, 1).expect("again");
    assert_eq!(again.models, results.models);
    assert_eq!(runner.store.list().expect("list").len(), before.len());
}
