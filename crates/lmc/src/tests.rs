use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use data::synthetic::Stripes;
use data::{Augmentation, DatasetName, ImageSource};
use nets::params::{from_vec, map_tensors, tensor_values};
use nets::{ModelConfig, Network};
use sparsity::{PruneRule, Sparse};
use train::{DataConfig, LrSchedule, OptimizerConfig, Recipe, Steps, TrainConfig, TrainData};

use crate::analysis::{Analysis, AnalysisConfig};
use crate::*;

/// A Resnet-8 of width 2 with every tensor set to a constant (BN buffers included).
fn constant_resnet(value: f32) -> Network {
    let model = ModelConfig::Resnet { depth: 8, width: 2 }
        .build(1, 8, 3, &Device::default())
        .expect("resnet");
    map_tensors(model, |_, t| {
        from_vec(vec![value; t.dims()[0]], &t.device())
    })
}

#[test]
fn interpolation_matches_hand_computed_values_buffers_included() {
    let (a, b) = (constant_resnet(2.0), constant_resnet(-1.0));
    let mid = interpolate(&a, &b, 0.25).expect("same architecture");
    // 0.25 * 2 + 0.75 * -1 = -0.25 everywhere, running mean and variance too.
    let values = tensor_values(&mid);
    assert!(
        values
            .iter()
            .any(|(i, _)| i.role == nets::params::TensorRole::BnRunningVar)
    );
    for (info, v) in values {
        assert!(v.iter().all(|&x| x == -0.25), "{}: {v:?}", info.path);
    }
    // The inputs are untouched (the interpolated model shares no BN buffers with them).
    assert!(
        tensor_values(&a)
            .iter()
            .all(|(_, v)| v.iter().all(|&x| x == 2.0))
    );
    // Endpoints are exact copies.
    assert_eq!(
        tensor_values(&interpolate(&a, &b, 1.0).expect("a")),
        tensor_values(&a)
    );
    assert_eq!(
        tensor_values(&interpolate(&a, &b, 0.0).expect("b")),
        tensor_values(&b)
    );
    let other = ModelConfig::Resnet {
        depth: 14,
        width: 2,
    }
    .build(1, 8, 3, &Device::default())
    .expect("resnet");
    assert!(matches!(
        interpolate(&a, &other, 0.5),
        Err(Error::Mismatch(_))
    ));
}

#[test]
fn sparse_interpolation_keeps_pruned_weights_at_zero_and_l2_is_exact() {
    let rule = PruneRule::default();
    let init = |seed| {
        nets::initialize(
            ModelConfig::Lenet { hidden: vec![16] }
                .build(1, 4, 3, &Device::default())
                .expect("lenet"),
            seed,
            nets::BnInit::Uniform,
        )
    };
    let a = Sparse::dense(init(1), &rule)
        .prune_magnitude(0.5)
        .expect("prune");
    let b = a.transplant(init(2)).expect("same mask");
    for alpha in [0.0, 0.3, 0.5, 1.0] {
        let mid = interpolate(&a, &b, alpha).expect("interpolate");
        assert_eq!(
            mid.mask.to_host(),
            a.mask.to_host(),
            "masks interpolate to themselves"
        );
        let weights: std::collections::HashMap<String, Vec<f32>> = tensor_values(&mid.model)
            .into_iter()
            .map(|(i, v)| (i.path, v))
            .collect();
        for (path, mask) in mid.mask.to_host() {
            for (w, m) in weights[&path].iter().zip(&mask) {
                if *m == 0.0 {
                    assert_eq!(*w, 0.0);
                }
            }
        }
    }
    // Hand-computed L2: two constant nets differ by 3 in every one of their parameters.
    let (x, y) = (constant_resnet(2.0), constant_resnet(-1.0));
    let d = l2_distance(&x, &y, |i| i.role.is_layer_weight()).expect("l2");
    let params = nets::params::trainable_params(&x) as f64;
    assert!((d.all_parameters - 3.0 * params.sqrt()).abs() < 1e-6 * d.all_parameters);
    assert!(d.prunable < d.all_parameters && d.prunable > 0.0);
    assert_eq!(
        l2_distance(&x, &x, |_| true).expect("l2").all_parameters,
        0.0
    );
}

fn recipe() -> Recipe {
    Recipe {
        name: "lmc-test".into(),
        model: ModelConfig::Resnet { depth: 8, width: 4 },
        data: DataConfig {
            dataset: DatasetName::Mnist,
            batch_size: 8,
            augmentation: Augmentation::CropFlip { padding: 1 },
        },
        training_steps: Steps::iterations(24),
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        schedule: LrSchedule::constant(0.05),
        bn_init: nets::BnInit::Uniform,
    }
}

fn analysis(
    data_seeds: Vec<u64>,
    bn_policy: BnPolicy,
) -> (tempfile::TempDir, crate::analysis::Summary) {
    let dir = tempfile::tempdir().expect("tmp");
    let summary = analysis_at(dir.path(), data_seeds, bn_policy);
    (dir, summary)
}

/// A Resnet-8 on the stripes task, k in {0, 8}, one init, children trained to step 24.
fn analysis_at(
    dir: &std::path::Path,
    data_seeds: Vec<u64>,
    bn_policy: BnPolicy,
) -> crate::analysis::Summary {
    let recipe = recipe();
    let train: ImageSource = Arc::new(Stripes(48));
    let test: ImageSource = Arc::new(Stripes(16));
    let data = TrainData::from_sources(&recipe, DatasetName::Mnist, train, test).expect("data");
    let mut config = TrainConfig::new(recipe, 1, 1);
    config.eval.every = None;
    config.eval.train_subset = Some(16);
    config.checkpoint_every = Some(Steps::iterations(8));
    let analysis = AnalysisConfig {
        ks: vec![Steps::iterations(0), Steps::iterations(8)],
        init_seeds: vec![1],
        data_seeds,
        parent_data_seed: 0,
        points: 5,
        bn_policy,
        curve_every: Some(Steps::iterations(8)),
        start: None,
    };
    Analysis::new(config, data, &train::default_device(), analysis, dir)
        .expect("analysis")
        .with_progress(false)
        .run()
        .expect("run")
}

#[test]
fn children_with_the_same_data_order_are_identical_and_endpoints_are_exact() {
    let (dir, summary) = analysis(vec![3, 3], BnPolicy::Interpolate);
    assert_eq!(summary.pairs.len(), 2);
    for pair in &summary.pairs {
        assert_eq!(pair.instability.test, 0.0);
        assert_eq!(pair.instability.train, Some(0.0));
        assert_eq!(pair.l2.all_parameters, 0.0);
        assert!(
            pair.curve
                .points
                .iter()
                .all(|p| p.test_error == pair.curve.points[0].test_error)
        );
        assert_eq!(pair.curve.points.len(), 5);
        assert_eq!(
            pair.throughout.iter().map(|t| t.0).collect::<Vec<_>>(),
            if pair.k == 0 {
                vec![8, 16, 24]
            } else {
                vec![16, 24]
            }
        );
    }
    // The children of k = 8 started from the parent's checkpoint at 8.
    assert!(
        dir.path()
            .join("init-1/parent/checkpoints/step-0000000008")
            .is_dir()
    );
    assert!(dir.path().join("init-1/k-8/order-3/config.toml").is_file());
    assert!(dir.path().join("summary.json").is_file());
}

#[test]
fn different_data_orders_give_different_children_and_the_curve_ends_at_their_errors() {
    let (dir, summary) = analysis(vec![1, 2, 3], BnPolicy::Interpolate);
    assert_eq!(summary.pairs.len(), 6, "3 pairs at each of 2 values of k");
    assert_eq!(summary.per_k.len(), 2);
    assert_eq!(summary.per_k[0].test_instability.n, 3);
    assert_eq!(
        summary.per_k[0].child_test_accuracy.n, 3,
        "three children, each counted once"
    );
    for pair in &summary.pairs {
        assert!(pair.l2.all_parameters > 0.0);
        // Alpha 1 is the first child, alpha 0 the second: their own errors, exactly.
        let child_error = |order: u64| {
            let metrics = train::Metrics::load(
                &dir.path()
                    .join(format!("init-1/k-{}/order-{order}/metrics.json", pair.k)),
            )
            .expect("metrics");
            100.0 * (1.0 - metrics.last().expect("final").test_accuracy)
        };
        let (first, last) = (
            pair.curve.points[0],
            *pair.curve.points.last().expect("points"),
        );
        assert!((last.test_error - child_error(pair.data_seeds[0])).abs() < 1e-4);
        assert!((first.test_error - child_error(pair.data_seeds[1])).abs() < 1e-4);
        assert!(pair.instability.test >= 0.0);
    }
    // Re-running reuses the children and pairs.
    assert_eq!(
        analysis_at(dir.path(), vec![1, 2, 3], BnPolicy::Interpolate),
        summary
    );
}

#[test]
fn bn_reestimation_changes_the_statistics_but_not_the_weights() {
    let recipe = recipe();
    let train: ImageSource = Arc::new(Stripes(48));
    let batches = data::SeededBatches::new(
        train.clone(),
        TrainData::from_sources(&recipe, DatasetName::Mnist, train.clone(), train)
            .expect("data")
            .transform,
        8,
        0,
    )
    .expect("batches");
    let model = nets::initialize(
        ModelConfig::Resnet { depth: 8, width: 4 }
            .build(1, 32, 10, &Device::default())
            .expect("resnet"),
        1,
        nets::BnInit::Uniform,
    );
    let re = reestimate_bn(&model, &batches, 4, &Device::default()).expect("reestimate");
    for ((info, before), (_, after)) in tensor_values(&model.valid())
        .into_iter()
        .zip(tensor_values(&re))
    {
        if info.role.is_buffer() {
            assert_ne!(before, after, "{}", info.path);
        } else {
            assert_eq!(before, after, "{}", info.path);
        }
    }
}
