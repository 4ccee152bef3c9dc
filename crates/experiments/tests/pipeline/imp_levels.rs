//! IMP beyond the paper's global pruning: layers at their own rates, and the interpolation
//! between consecutive levels.

use data::{Augmentation, DatasetName};
use nets::ModelConfig;
use results::BnPolicy;
use sparsity::PruneRule;
use train::{DataConfig, OptimizerConfig, Recipe, Steps};

use super::{eval, resnet_recipe, run_plan, runner};
use experiments::imp::ImpConfig;
use experiments::runs::{OptimizerAtRewind, PairResult, PairSpec, Plan};

fn lenet_recipe() -> Recipe {
    Recipe {
        model: ModelConfig::Lenet { hidden: vec![32] },
        data: DataConfig::new(DatasetName::Mnist, 8, Augmentation::None),
        optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
        training_steps: Steps::iterations(10),
        ..resnet_recipe()
    }
}

fn imp(layer_rates: Vec<sparsity::LayerRate>) -> ImpConfig {
    ImpConfig {
        recipe: lenet_recipe(),
        eval: eval(),
        init_seed: 1,
        data_seed: 1,
        rewind: 0,
        levels: 2,
        fraction: 0.2,
        rule: PruneRule {
            unpruned_layers: vec![],
            layer_rates,
            layerwise: false,
        },
        optimizer_at_rewind: OptimizerAtRewind::Fresh,
        baselines: vec![],
        baseline_levels: vec![],
        baseline_seed: 9,
    }
}

#[test]
fn imp_with_a_layer_rate_prunes_that_layer_at_its_own_rate_and_the_rest_globally() {
    let rated = imp(vec!["Lenet.output=0.5".parse().expect("rate")]);
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(dir.path());
    let mut plan = Plan::new();
    let runs = rated.plan(&mut plan).expect("plan");
    run_plan(&runner, &plan);
    let density = |level: usize| {
        let model = runner
            .state_at(&runs.levels[level], 10)
            .expect("final")
            .model;
        model
            .density()
            .layers
            .iter()
            .map(|l| (l.path.clone(), l.kept))
            .collect::<Vec<_>>()
    };
    // Stripes are 8x8x1 and MNIST has 10 classes: hidden.0 has 64 x 32 = 2,048 weights,
    // output 32 x 10 = 320. The output layer loses half of its survivors per round, hidden.0
    // a fifth of its own (the only other layer, so "globally" is within it).
    assert_eq!(
        density(1),
        vec![
            ("Lenet.hidden.0.weight".to_string(), 2048 - 410),
            ("Lenet.output.weight".to_string(), 160)
        ]
    );
    assert_eq!(
        density(2),
        vec![
            ("Lenet.hidden.0.weight".to_string(), 1638 - 328),
            ("Lenet.output.weight".to_string(), 80)
        ]
    );
    // Another rule is another experiment; no rates is the paper's rule, serialised as before.
    let mut other = Plan::new();
    let global = imp(vec![]).plan(&mut other).expect("plan");
    assert_ne!(global.levels[1], runs.levels[1]);
    assert_eq!(
        serde_json::to_string(&PruneRule::default()).expect("json"),
        r#"{"unpruned_layers":[]}"#
    );
    let layerwise = PruneRule {
        layerwise: true,
        ..PruneRule::default()
    };
    assert_eq!(
        serde_json::to_string(&layerwise).expect("json"),
        r#"{"unpruned_layers":[],"layerwise":true}"#
    );
    // A rate for a layer the network does not prune is refused when the level starts.
    let wrong = imp(vec!["Lenet.hidden.9=0.5".parse().expect("rate")]);
    let mut plan = Plan::new();
    wrong.plan(&mut plan).expect("plan");
    let err = {
        use experiments::executor::{Executor, Local};
        Local::new(&runner, 1)
            .execute(&plan, &runner.store)
            .expect_err("no such layer")
    };
    assert!(err.to_string().contains("Lenet.hidden.9=0.5"), "{err}");
}

#[test]
fn two_imp_levels_interpolate_linearly_though_their_masks_differ() {
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(dir.path());
    let mut plan = Plan::new();
    // Two steps: far from the stripes' saturated (zero) loss, so the path's loss says
    // something about the weights on it.
    let short = ImpConfig {
        recipe: Recipe {
            training_steps: Steps::iterations(2),
            ..lenet_recipe()
        },
        ..imp(vec![])
    };
    let runs = short.plan(&mut plan).expect("plan");
    let pair = plan
        .pair(PairSpec {
            a: runs.levels[1].clone(),
            b: runs.levels[2].clone(),
            step: 2,
            points: 3,
            bn_policy: BnPolicy::Interpolate,
            eval: eval(),
            with_train_error: false,
            align: results::Alignment::None,
        })
        .expect("pair");
    run_plan(&runner, &plan);
    let recorded: PairResult = runner.store.finished(&pair).expect("pair result");
    // The midpoint evaluated by hand: 0.5 (w1 + w2), nothing re-masked. Re-applying the
    // blended mask (0.5 where only level 1 keeps a weight) would halve those weights again.
    let (a, b) = (
        runner.state_at(&runs.levels[1], 2).expect("level 1").model,
        runner.state_at(&runs.levels[2], 2).expect("level 2").model,
    );
    assert_ne!(a.mask.to_host(), b.mask.to_host());
    // The interpolated masks are fractional where only level 1 keeps a weight.
    let mid = lmc::interpolate(&a, &b, 0.5).expect("mid");
    assert!(
        mid.mask
            .to_host()
            .iter()
            .flat_map(|(_, m)| m.clone())
            .any(|v| v == 0.5)
    );
    let data = runner.data.for_recipe(&lenet_recipe()).expect("data");
    let curve = lmc::error_curve(
        &a,
        &b,
        3,
        BnPolicy::Interpolate,
        &lmc::CurveData {
            test: &data.test,
            train: &data.train,
            transform: &data.transform,
            train_subset: Some(0),
            test_subset: eval().test_subset,
            batch_size: eval().batch_size,
            bn_batches: None,
        },
        &train::default_device(),
        |m| m,
    )
    .expect("curve");
    assert_eq!(
        recorded.curve.points[1].test_loss,
        curve.points[1].test_loss
    );
}
