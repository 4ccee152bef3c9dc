use std::sync::Arc;

use burn::tensor::Device;
use data::synthetic::Stripes;
use data::{Augmentation, DatasetName, ImageSource};
use nets::ModelConfig;
use nets::params::{from_vec, map_tensors, tensor_values};
use paper_networks::Network;
use train::{
    DataConfig, LrSchedule, OptimizerConfig, Recipe, Steps, TrainConfig, TrainData, Trainer,
};

use crate::*;

/// A Lenet for `channels x 1 x 1` inputs (so `channels` input features) and 2 classes.
fn lenet(hidden: Vec<usize>, inputs: usize) -> Network {
    Network::build(
        &ModelConfig::Lenet { hidden },
        inputs,
        1,
        2,
        &Device::default(),
    )
    .expect("lenet")
}

fn weights(model: &Network, path: &str) -> Vec<f32> {
    tensor_values(model)
        .into_iter()
        .find(|(i, _)| i.path == path)
        .map(|(_, v)| v)
        .expect(path)
}

fn masks(s: &Sparse<Network>) -> Vec<Vec<f32>> {
    s.mask.to_host().into_iter().map(|(_, m)| m).collect()
}

#[test]
fn global_magnitude_pruning_matches_a_hand_worked_example() {
    // Two 2x2 linear layers (2-pixel images, 2 hidden units, 2 classes): 8 prunable weights.
    let model = map_tensors(lenet(vec![2], 2), |info, t| match info.path.as_str() {
        "Lenet.hidden.0.weight" => from_vec(vec![0.5, -0.1, 0.3, 0.0], &t.device()),
        "Lenet.output.weight" => from_vec(vec![0.2, -0.3, 0.9, 0.4], &t.device()),
        _ => t,
    });
    let bias_before = weights(&model, "Lenet.hidden.0.bias");
    let sparse = Sparse::dense(model, &PruneRule::default());
    assert_eq!(sparse.density().total, 8);
    // Prune 50% of 8 = 4 weights: |0.0|, |-0.1|, |0.2|, then the tie at 0.3 goes to the
    // earlier layer.
    let pruned = sparse.prune_magnitude(0.5).expect("prune");
    assert_eq!(
        masks(&pruned),
        vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 1.0, 1.0, 1.0]]
    );
    assert_eq!(
        weights(&pruned.model, "Lenet.hidden.0.weight"),
        vec![0.5, 0.0, 0.0, 0.0]
    );
    assert_eq!(
        weights(&pruned.model, "Lenet.output.weight"),
        vec![0.0, -0.3, 0.9, 0.4]
    );
    assert_eq!(
        weights(&pruned.model, "Lenet.hidden.0.bias"),
        bias_before,
        "biases are never pruned"
    );
    // 20% of the 4 survivors = round(0.8) = 1 more weight: the smallest survivor, -0.3.
    let again = pruned.prune_magnitude(0.2).expect("prune");
    assert_eq!(
        masks(&again),
        vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 1.0, 1.0]]
    );
}

#[test]
fn iterative_pruning_reaches_0_8_to_the_n_with_nested_masks() {
    let model = lenet(vec![300, 100], 784);
    let rule = PruneRule {
        unpruned_layers: ModelConfig::lenet_300_100().architecture().unpruned_layers,
        layer_rates: vec![],
        layerwise: false,
    };
    let mut sparse = Sparse::dense(nets::initialize(model, 1, nets::BnInit::Uniform), &rule);
    assert_eq!(
        sparse.density().total,
        235_200 + 30_000,
        "the output layer is not prunable"
    );
    let mut previous = masks(&sparse);
    for _ in 0..3 {
        sparse = sparse.prune_magnitude(0.2).expect("prune");
        let current = masks(&sparse);
        assert!(
            current
                .iter()
                .flatten()
                .zip(previous.iter().flatten())
                .all(|(c, p)| c <= p)
        );
        previous = current;
    }
    // 265,200 -> 212,160 -> 169,728 -> 135,782 (round(33,945.6) = 33,946 pruned).
    let d = sparse.density();
    assert_eq!(d.kept, 135_782);
    assert!(
        (d.fraction() - 0.8f64.powi(3)).abs() < 1e-5,
        "{}",
        d.fraction()
    );
    let zeros = tensor_values(&sparse.model)
        .iter()
        .filter(|(i, _)| rule.is_prunable(i))
        .map(|(_, v)| v.iter().filter(|&&x| x == 0.0).count())
        .sum::<usize>();
    assert_eq!(zeros, d.total - d.kept);
    let one_shot = Sparse::dense(lenet(vec![300, 100], 784), &rule)
        .prune_to_density(0.3)
        .expect("one-shot");
    assert_eq!(
        one_shot.density().kept,
        (0.3f64 * 265_200.0).round() as usize
    );
}

#[test]
fn layer_rates_prune_their_layers_alone_and_the_rest_globally_in_a_hand_worked_example() {
    // The example above: hidden [0.5, -0.1, 0.3, 0.0], output [0.2, -0.3, 0.9, 0.4].
    let model = || {
        map_tensors(lenet(vec![2], 2), |info, t| match info.path.as_str() {
            "Lenet.hidden.0.weight" => from_vec(vec![0.5, -0.1, 0.3, 0.0], &t.device()),
            "Lenet.output.weight" => from_vec(vec![0.2, -0.3, 0.9, 0.4], &t.device()),
            _ => t,
        })
    };
    let rule = |rates: &[&str]| PruneRule {
        unpruned_layers: vec![],
        layer_rates: rates.iter().map(|r| r.parse().expect("rate")).collect(),
        layerwise: false,
    };
    // Output at its own 50% (0.2 and -0.3 go); hidden.0 alone takes the global 50% (0.0 and
    // -0.1), where global pruning over both layers removed 0.3 of hidden.0 instead of -0.3.
    let own_output = rule(&["Lenet.output=0.5"]);
    let pruned = Sparse::dense(model(), &own_output)
        .prune_by_rule(0.5, &own_output)
        .expect("prune");
    assert_eq!(
        masks(&pruned),
        vec![vec![1.0, 0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0, 1.0]]
    );
    // Every layer at its own rate: the global fraction prunes nothing more.
    let all_own = rule(&["Lenet.hidden.0=0.25", "Lenet.output=0.25"]);
    let pruned = Sparse::dense(model(), &all_own)
        .prune_by_rule(0.9, &all_own)
        .expect("prune");
    assert_eq!(
        masks(&pruned),
        vec![vec![1.0, 1.0, 1.0, 0.0], vec![0.0, 1.0, 1.0, 1.0]]
    );
    // Layer-wise: each layer loses half of its own (hidden 0.0 and -0.1, output 0.2 and
    // -0.3), as with a rate of 0.5 on the output alone.
    let layerwise = PruneRule {
        layerwise: true,
        ..PruneRule::default()
    };
    let pruned = Sparse::dense(model(), &layerwise)
        .prune_by_rule(0.5, &layerwise)
        .expect("prune");
    assert_eq!(
        masks(&pruned),
        vec![vec![1.0, 0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0, 1.0]]
    );
    // Without rates it is global pruning.
    let global = Sparse::dense(model(), &PruneRule::default())
        .prune_by_rule(0.5, &PruneRule::default())
        .expect("prune");
    assert_eq!(
        masks(&global),
        vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 1.0, 1.0, 1.0]]
    );
    // A layer the network does not mask, and malformed rates, are refused.
    let unknown = rule(&["Lenet.hidden.7=0.5"]);
    let err = Sparse::dense(model(), &unknown)
        .prune_by_rule(0.5, &unknown)
        .unwrap_err();
    assert!(
        err.to_string().contains("Lenet.hidden.0, Lenet.output"),
        "{err}"
    );
    for bad in [
        "Lenet.output",
        "Lenet.output=1.5",
        "=0.5",
        "Lenet.output=half",
    ] {
        assert!(bad.parse::<LayerRate>().is_err(), "{bad}");
    }
}

#[test]
fn random_masks_keep_per_layer_counts_and_follow_the_seed() {
    let rule = PruneRule::default();
    let sparse = Sparse::dense(
        nets::initialize(lenet(vec![30], 64), 1, nets::BnInit::Uniform),
        &rule,
    )
    .prune_magnitude(0.6)
    .expect("prune");
    let a = sparse
        .random_mask_like(lenet(vec![30], 64), 7)
        .expect("random");
    let b = sparse
        .random_mask_like(lenet(vec![30], 64), 7)
        .expect("random");
    let c = sparse
        .random_mask_like(lenet(vec![30], 64), 8)
        .expect("random");
    let counts = |s: &Sparse<Network>| {
        s.density()
            .layers
            .iter()
            .map(|l| l.kept)
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&a), counts(&sparse));
    assert_eq!(masks(&a), masks(&b));
    assert_ne!(masks(&a), masks(&c));
    assert_ne!(masks(&a), masks(&sparse));
}

fn recipe(optimizer: OptimizerConfig, steps: u64) -> Recipe {
    Recipe {
        name: "sparse-test".into(),
        model: ModelConfig::Resnet { depth: 8, width: 4 },
        data: DataConfig::new(DatasetName::Mnist, 8, Augmentation::CropFlip { padding: 1 }),
        training_steps: Steps::iterations(steps),
        optimizer,
        schedule: LrSchedule::constant(0.01),
        bn_init: nets::BnInit::Uniform,
    }
}

fn trainer_data(recipe: &Recipe) -> TrainData {
    let train: ImageSource = Arc::new(Stripes(64));
    let test: ImageSource = Arc::new(Stripes(16));
    TrainData::from_sources(recipe, DatasetName::Mnist, train, test).expect("data")
}

fn config(recipe: Recipe) -> TrainConfig {
    let mut config = TrainConfig::new(recipe, 1, 1);
    config.eval.every = None;
    config.eval.train_subset = Some(0);
    config.checkpoint_every = Some(Steps::iterations(25));
    config
}

#[test]
fn pruned_weights_stay_exactly_zero_through_adam_and_sgd_with_momentum_and_weight_decay() {
    for optimizer in [
        OptimizerConfig::Adam { weight_decay: 1e-4 },
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-3,
            nesterov: false,
        },
    ] {
        let recipe = recipe(optimizer.clone(), 60);
        let data = trainer_data(&recipe);
        let trainer = Trainer::new(config(recipe), data, &train::default_device())
            .expect("trainer")
            .with_progress(false);
        let rule = PruneRule::default();
        let sparse = Sparse::dense(trainer.build_model().expect("model"), &rule)
            .prune_magnitude(0.7)
            .expect("prune");
        let before = masks(&sparse);
        let dir = tempfile::tempdir().expect("tmp");
        let template = || Ok(Sparse::dense(trainer.build_model()?, &rule));
        let start = || {
            Ok(train::TrainState {
                model: sparse,
                optimizer: optimizer.init(),
                step: 0,
                metrics: vec![],
            })
        };
        trainer
            .run_from(dir.path(), start, template, &mut MaskHook)
            .expect("training");
        let trained = trainer
            .load_state_into(dir.path(), 60, template().expect("template"))
            .expect("final")
            .model;
        assert_eq!(
            masks(&trained),
            before,
            "masks are saved with the model and never trained"
        );
        let values: std::collections::HashMap<String, Vec<f32>> = tensor_values(&trained.model)
            .into_iter()
            .map(|(i, v)| (i.path, v))
            .collect();
        let mut pruned = 0;
        for (path, mask) in trained.mask.to_host() {
            let w = &values[&path];
            for (x, m) in w.iter().zip(&mask) {
                if *m == 0.0 {
                    assert_eq!(*x, 0.0, "{optimizer:?}: {path}");
                    pruned += 1;
                } else {
                    assert!(x.is_finite());
                }
            }
        }
        assert!(pruned > 1000);
        // And the surviving weights did train.
        let initial = tensor_values(&trainer.build_model::<Network>().expect("model"));
        assert_ne!(
            initial.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            tensor_values(&trained.model)
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn one_shot_pruning_takes_resnet50_to_30_percent_in_one_step() {
    // The paper's ImageNet setting: one round of global magnitude pruning to 30% density over
    // every conv and linear weight (BN and biases untouched).
    let device = Device::default();
    let model = nets::initialize(
        Network::build(&ModelConfig::resnet50(), 3, 224, 1000, &device).expect("resnet-50"),
        7,
        nets::BnInit::Ones,
    );
    let rule = PruneRule {
        unpruned_layers: ModelConfig::resnet50().architecture().unpruned_layers,
        layer_rates: vec![],
        layerwise: false,
    };
    let dense = Sparse::dense(model, &rule);
    let total = dense.density().total;
    // 53 conv weights (stem, 16 x 3 in the blocks, 4 projections) and the linear layer: all
    // parameters but the 53,120 BN scale/shift values and the 1,000 biases.
    assert_eq!(dense.density().layers.len(), 54);
    assert_eq!(total, 25_557_032 - 53_120 - 1000);
    let pruned = dense.prune_to_density(0.3).expect("one-shot");
    let d = pruned.density();
    assert_eq!(d.kept, (0.3 * total as f64).round() as usize);
    // Global, not per layer: the layers end at different densities.
    let per_layer: Vec<f64> = d
        .layers
        .iter()
        .map(|l| l.kept as f64 / l.total as f64)
        .collect();
    let (lo, hi) = per_layer
        .iter()
        .fold((1.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(hi - lo > 0.05, "layer densities {lo}..{hi}");
    // Pruned weights are exactly zero in the model; the survivors are the largest.
    let zeros: usize = tensor_values(&pruned.model)
        .into_iter()
        .filter(|(i, _)| rule.is_prunable(i))
        .map(|(_, v)| v.iter().filter(|x| **x == 0.0).count())
        .sum();
    assert_eq!(zeros, total - d.kept);
}
