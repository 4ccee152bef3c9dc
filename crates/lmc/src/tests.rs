use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use data::synthetic::Stripes;
use data::{Augmentation, DatasetName, ImageSource};
use nets::ModelConfig;
use nets::params::{from_vec, map_tensors, tensor_values};
use paper_networks::Network;
use sparsity::{PruneRule, Sparse};
use train::{DataConfig, LrSchedule, OptimizerConfig, Recipe, Steps, TrainData};

use crate::*;

/// A Resnet-8 of width 2 with every tensor set to a constant (BN buffers included).
fn constant_resnet(value: f32) -> Network {
    let model = Network::build(
        &ModelConfig::Resnet { depth: 8, width: 2 },
        1,
        8,
        3,
        &Device::default(),
    )
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
    let other = Network::build(
        &ModelConfig::Resnet {
            depth: 14,
            width: 2,
        },
        1,
        8,
        3,
        &Device::default(),
    )
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
            Network::build(
                &ModelConfig::Lenet { hidden: vec![16] },
                1,
                4,
                3,
                &Device::default(),
            )
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

/// A Resnet-8 (width 4, seeded) and batches of 8 from `examples` stripe images.
fn resnet_and_batches(
    augmentation: Augmentation,
    examples: usize,
) -> (paper_networks::Network, data::SeededBatches) {
    let recipe = Recipe {
        name: "lmc-test".into(),
        model: ModelConfig::Resnet { depth: 8, width: 4 },
        data: DataConfig::new(DatasetName::Mnist, 8, augmentation),
        training_steps: Steps::iterations(24),
        optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
        schedule: LrSchedule::constant(0.05),
        bn_init: nets::BnInit::Uniform,
    };
    let train: ImageSource = Arc::new(Stripes(examples));
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
        Network::build(&recipe.model, 1, 32, 10, &Device::default()).expect("resnet"),
        1,
        nets::BnInit::Uniform,
    );
    (model, batches)
}

#[test]
fn bn_reestimation_changes_the_statistics_but_not_the_weights() {
    let (model, batches) = resnet_and_batches(Augmentation::CropFlip { padding: 1 }, 48);
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

/// The re-estimate is the average of the batches' statistics, not a running average that
/// still remembers where it started: over batches of the same 8 images (no augmentation,
/// only their order changes) it is the same after 2 batches as after 6.
#[test]
fn bn_reestimation_averages_the_batch_statistics() {
    let (model, batches) = resnet_and_batches(Augmentation::None, 8);
    let buffers = |n: usize| -> Vec<(String, Vec<f32>)> {
        tensor_values(&reestimate_bn(&model, &batches, n, &Device::default()).expect("re"))
            .into_iter()
            .filter(|(i, _)| i.role.is_buffer())
            .map(|(i, v)| (i.path, v))
            .collect()
    };
    let (two, six) = (buffers(2), buffers(6));
    for ((path, a), (_, b)) in two.iter().zip(&six) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1e-2),
                "{path}: {x} after 2 batches, {y} after 6"
            );
        }
    }
    assert!(reestimate_bn(&model, &batches, 0, &Device::default()).is_err());
}
