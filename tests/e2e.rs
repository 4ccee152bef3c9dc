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
