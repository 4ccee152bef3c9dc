//! Loop-level tests on a small synthetic dataset (real-data tests live in the workspace's
//! `tests/`).

use std::sync::Arc;

use data::synthetic::Stripes;
use data::{Augmentation, DatasetName, ImageSource};
use nets::ModelConfig;
use nets::params::tensor_values;

use crate::*;

fn recipe(model: ModelConfig, optimizer: OptimizerConfig, lr: f64, steps: u64) -> Recipe {
    Recipe {
        name: "test".into(),
        model,
        data: DataConfig {
            dataset: DatasetName::Mnist,
            batch_size: 8,
            augmentation: Augmentation::CropFlip { padding: 1 },
        },
        training_steps: Steps::iterations(steps),
        optimizer,
        schedule: LrSchedule {
            milestones: vec![Steps::iterations(steps / 2)],
            ..LrSchedule::constant(lr)
        },
        bn_init: nets::BnInit::Uniform,
    }
}

fn trainer(recipe: Recipe, data_seed: u64) -> Trainer {
    let train: ImageSource = Arc::new(Stripes(40));
    let test: ImageSource = Arc::new(Stripes(12));
    let data = TrainData::from_sources(&recipe, DatasetName::Mnist, train, test).expect("data");
    let mut config = TrainConfig::new(recipe, 3, data_seed);
    config.eval = trainer::EvalConfig {
        every: Some(Steps::iterations(5)),
        train_subset: Some(16),
        test_subset: None,
        batch_size: 16,
    };
    config.checkpoint_every = Some(Steps::iterations(5));
    config.keep_checkpoints = vec![Steps::iterations(4)];
    Trainer::new(config, data, &default_device())
        .expect("trainer")
        .with_progress(false)
}

fn lenet() -> Recipe {
    recipe(
        ModelConfig::Lenet { hidden: vec![16] },
        OptimizerConfig::Adam { weight_decay: 0.0 },
        1e-2,
        20,
    )
}

fn resnet() -> Recipe {
    recipe(
        ModelConfig::Resnet { depth: 8, width: 4 },
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        0.05,
        20,
    )
}

fn final_weights(t: &Trainer, dir: &std::path::Path) -> Vec<(nets::params::TensorInfo, Vec<f32>)> {
    tensor_values(
        &t.load_state(dir, t.total_steps())
            .expect("final checkpoint")
            .model,
    )
}

/// Fails once at a given step, like a process killed mid-run.
struct CrashAt(u64);
impl<M> TrainHooks<M> for CrashAt {
    fn after_step(&mut self, model: M, step: u64) -> Result<M> {
        if step == self.0 {
            self.0 = u64::MAX;
            return Err(Error::Config("simulated crash".into()));
        }
        Ok(model)
    }
}

#[test]
fn same_seeds_give_bit_identical_weights_and_other_data_seeds_do_not() {
    for recipe in [lenet(), resnet()] {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
        let a = trainer(recipe.clone(), 1);
        let b = trainer(recipe.clone(), 1);
        let c = trainer(recipe.clone(), 2);
        a.run(dirs[0].path(), &mut NoHooks).expect("a");
        b.run(dirs[1].path(), &mut NoHooks).expect("b");
        c.run(dirs[2].path(), &mut NoHooks).expect("c");
        let (wa, wb, wc) = (
            final_weights(&a, dirs[0].path()),
            final_weights(&b, dirs[1].path()),
            final_weights(&c, dirs[2].path()),
        );
        assert_eq!(wa, wb, "{}", recipe.model);
        assert_ne!(wa, wc, "{}", recipe.model);
        // The initial checkpoint holds the seeded initialisation, identical across data seeds.
        let init_a = tensor_values(&a.load_state(dirs[0].path(), 0).expect("step 0").model);
        let init_c = tensor_values(&c.load_state(dirs[2].path(), 0).expect("step 0").model);
        assert_eq!(init_a, init_c);
        assert_eq!(init_a, tensor_values(&a.build_model().expect("model")));
    }
}

#[test]
fn a_run_killed_midway_resumes_bit_identically() {
    for recipe in [lenet(), resnet()] {
        let (whole, broken) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        let t = trainer(recipe.clone(), 1);
        t.run(whole.path(), &mut NoHooks).expect("uninterrupted");
        let err = t.run(broken.path(), &mut CrashAt(12)).expect_err("crash");
        assert!(err.to_string().contains("simulated crash"));
        let store = CheckpointStore::new(broken.path());
        assert_eq!(store.steps(), vec![0, 4, 10], "{}", recipe.model);
        let resumed = trainer(recipe.clone(), 1)
            .run(broken.path(), &mut NoHooks)
            .expect("resumed");
        assert!(!resumed.reused);
        assert_eq!(
            final_weights(&t, whole.path()),
            final_weights(&t, broken.path()),
            "{}",
            recipe.model
        );
        let whole_metrics = Metrics::load(&whole.path().join("metrics.json")).expect("metrics");
        let steps: Vec<u64> = resumed.metrics.records.iter().map(|r| r.step).collect();
        assert_eq!(steps, vec![5, 10, 15, 20]);
        for (x, y) in whole_metrics.records.iter().zip(&resumed.metrics.records) {
            assert_eq!(
                (x.test_loss, x.test_accuracy, x.train_eval_loss),
                (y.test_loss, y.test_accuracy, y.train_eval_loss)
            );
        }
        // Only the latest rolling checkpoint and the kept ones remain.
        assert_eq!(store.steps(), vec![0, 4, 20]);
        // A finished run is reused, not recomputed.
        assert!(
            trainer(recipe, 1)
                .run(broken.path(), &mut NoHooks)
                .expect("again")
                .reused
        );
    }
}

#[test]
fn learns_the_synthetic_task() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut r = lenet();
    r.training_steps = Steps::iterations(60);
    let outcome = trainer(r, 1).run(dir.path(), &mut NoHooks).expect("run");
    let last = outcome.final_record().expect("record");
    assert!(last.test_accuracy > 0.9, "{last:?}");
}

#[test]
fn nan_loss_stops_with_a_clear_error_and_keeps_checkpoints() {
    let dir = tempfile::tempdir().expect("tmp");
    let r = recipe(
        ModelConfig::Lenet { hidden: vec![16] },
        OptimizerConfig::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        },
        1e30,
        20,
    );
    let err = trainer(r, 1)
        .run(dir.path(), &mut NoHooks)
        .expect_err("diverges");
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("last good checkpoint"), "{err}");
    assert!(CheckpointStore::new(dir.path()).has(0));
}

#[test]
fn a_directory_with_another_config_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    trainer(lenet(), 1)
        .run(dir.path(), &mut NoHooks)
        .expect("first");
    let err = trainer(lenet(), 2)
        .run(dir.path(), &mut NoHooks)
        .expect_err("mismatch");
    assert!(matches!(err, Error::ConfigMismatch { .. }), "{err}");
}
