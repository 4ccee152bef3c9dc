//! Dropout in runs that train at once in one process: each run's weights are those it trains
//! alone. In a test binary of its own, so that no other test's threads use burn's
//! process-wide random-number generator meanwhile (only this test's own runs do).

use std::sync::Arc;

use data::synthetic::Stripes;
use data::{Augmentation, DatasetName, ImageSource};
use nets::ModelConfig;
use nets::params::tensor_values;
use train::{
    DataConfig, EvalConfig, LrSchedule, OptimizerConfig, Recipe, Steps, TrainConfig, TrainData,
    TrainState, Trainer, default_device,
};

/// The synthetic task of the trainer's unit tests, with Lenet and Adam.
fn trainer() -> Trainer {
    let recipe = Recipe {
        name: "test".into(),
        model: ModelConfig::Lenet { hidden: vec![16] },
        data: DataConfig::new(DatasetName::Mnist, 8, Augmentation::CropFlip { padding: 1 }),
        training_steps: Steps::iterations(20),
        optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
        schedule: LrSchedule {
            milestones: vec![Steps::iterations(10)],
            ..LrSchedule::constant(1e-2)
        },
        bn_init: nets::BnInit::Uniform,
    };
    let train: ImageSource = Arc::new(Stripes(40));
    let test: ImageSource = Arc::new(Stripes(12));
    let data = TrainData::from_sources(&recipe, DatasetName::Mnist, train, test).expect("data");
    let mut config = TrainConfig::new(recipe, 3, 1);
    config.eval = EvalConfig {
        every: Some(Steps::iterations(5)),
        train_subset: Some(16),
        test_subset: None,
        batch_size: 16,
    };
    Trainer::new(config, data, &default_device())
        .expect("trainer")
        .with_progress(false)
}

/// A linear classifier behind dropout: its training forward draws from burn's RNG, and it
/// keeps the trait's default `draws_random_numbers` (true).
#[derive(burn::module::Module, Debug)]
struct Dropped {
    dropout: burn::nn::Dropout,
    fc: burn::nn::Linear,
}

impl nets::Classifier for Dropped {
    fn forward(&self, images: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2> {
        self.fc
            .forward(self.dropout.forward(images.flatten::<2>(1, 3)))
    }
}

/// Steps each run of the dropout test takes: enough that concurrent runs overlap for many
/// steps (without the trainer's lock, 5 of 5 runs of this test failed; with 40 steps and no
/// common start, none did).
const DROPOUT_STEPS: u64 = 300;

/// `steps` optimiser steps of `model` on the trainer's batches, started when every run waiting
/// at `start` is ready.
fn train_dropped(
    model: &Dropped,
    steps: u64,
    start: &std::sync::Barrier,
) -> Vec<(nets::params::TensorInfo, Vec<f32>)> {
    let t = trainer();
    let loss_fn = t.loss_fn();
    let mut state = TrainState {
        model: model.clone(),
        optimizer: t.config.recipe.optimizer.init(),
        step: 0,
        metrics: vec![],
    };
    start.wait();
    for _ in 0..steps {
        state = t.step(state, &loss_fn, 0.05, false).expect("step").0;
    }
    tensor_values(&state.model)
}

#[test]
fn dropout_in_concurrent_runs_is_what_each_run_draws_alone() {
    // burn's RNG is one per process: without the trainer's lock, runs in other threads reseed
    // it between a run's seed and its draws. One initial model for all (its init draws too).
    let model = Dropped {
        dropout: burn::nn::DropoutConfig::new(0.5).init(),
        fc: burn::nn::LinearConfig::new(64, 10).init(&trainer().device),
    };
    let alone = train_dropped(&model, DROPOUT_STEPS, &std::sync::Barrier::new(1));
    let runs = 4;
    let start = std::sync::Barrier::new(runs);
    let together: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..runs)
            .map(|_| {
                let copy = model.clone();
                let start = &start;
                scope.spawn(move || train_dropped(&copy, DROPOUT_STEPS, start))
            })
            .collect();
        handles
            .into_iter()
            .map(|r| r.join().expect("run"))
            .collect()
    });
    for run in &together {
        assert_eq!(run, &alone);
    }
    // The dropout really drew: without it the same start trains to other weights.
    let no_dropout = Dropped {
        dropout: burn::nn::DropoutConfig::new(0.0).init(),
        ..model
    };
    assert_ne!(
        train_dropped(&no_dropout, DROPOUT_STEPS, &std::sync::Barrier::new(1)),
        alone
    );
}
