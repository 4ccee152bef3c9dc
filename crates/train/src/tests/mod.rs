//! Loop-level tests on a small synthetic dataset (real-data tests live in the workspace's
//! `tests/`).

use std::sync::Arc;

use data::synthetic::Stripes;
use data::{Augmentation, DatasetName, ImageSource};
use nets::ModelConfig;
use nets::params::tensor_values;
use paper_networks::Network;

use crate::*;

fn recipe(model: ModelConfig, optimizer: OptimizerConfig, lr: f64, steps: u64) -> Recipe {
    Recipe {
        name: "test".into(),
        model,
        data: DataConfig::new(DatasetName::Mnist, 8, Augmentation::CropFlip { padding: 1 }),
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
        &t.load_state::<Network>(dir, t.total_steps())
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
        a.run::<Network>(dirs[0].path(), &mut NoHooks).expect("a");
        b.run::<Network>(dirs[1].path(), &mut NoHooks).expect("b");
        c.run::<Network>(dirs[2].path(), &mut NoHooks).expect("c");
        let (wa, wb, wc) = (
            final_weights(&a, dirs[0].path()),
            final_weights(&b, dirs[1].path()),
            final_weights(&c, dirs[2].path()),
        );
        assert_eq!(wa, wb, "{}", recipe.model);
        assert_ne!(wa, wc, "{}", recipe.model);
        // The initial checkpoint holds the seeded initialisation, identical across data seeds.
        let init_a = tensor_values(
            &a.load_state::<Network>(dirs[0].path(), 0)
                .expect("step 0")
                .model,
        );
        let init_c = tensor_values(
            &c.load_state::<Network>(dirs[2].path(), 0)
                .expect("step 0")
                .model,
        );
        assert_eq!(init_a, init_c);
        assert_eq!(
            init_a,
            tensor_values(&a.build_model::<Network>().expect("model"))
        );
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
        t.run::<Network>(whole.path(), &mut NoHooks)
            .expect("uninterrupted");
        let err = t
            .run::<Network>(broken.path(), &mut CrashAt(12))
            .expect_err("crash");
        assert!(err.to_string().contains("simulated crash"));
        let store = CheckpointStore::new(broken.path());
        assert_eq!(store.steps(), vec![0, 4, 10], "{}", recipe.model);
        let resumed = trainer(recipe.clone(), 1)
            .run::<Network>(broken.path(), &mut NoHooks)
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
                .run::<Network>(broken.path(), &mut NoHooks)
                .expect("again")
                .reused
        );
    }
}

/// A run killed between two evaluations writes, once resumed, the metrics of an uninterrupted
/// run: every field but the wall time, the training loss averaged since the last evaluation
/// included (it is kept with each checkpoint). Without it (a checkpoint of an older version,
/// the perturbation) the next training loss differs.
#[test]
fn a_run_resumed_between_evaluations_writes_the_uninterrupted_metrics() {
    let run = |dir: &std::path::Path, hooks: &mut dyn FnMut(&Trainer, &std::path::Path)| {
        let mut t = trainer(lenet(), 1);
        t.config.checkpoint_every = Some(Steps::iterations(3));
        t.config.keep_checkpoints = vec![];
        hooks(&t, dir);
        t
    };
    let strip = |m: &Metrics| -> Vec<MetricRecord> {
        m.records
            .iter()
            .map(|r| MetricRecord {
                elapsed_seconds: 0.0,
                ..r.clone()
            })
            .collect()
    };
    let whole = tempfile::tempdir().expect("tmp");
    run(whole.path(), &mut |t, dir| {
        t.run::<Network>(dir, &mut NoHooks).expect("uninterrupted");
    });
    let expected = strip(&Metrics::load(&whole.path().join("metrics.json")).expect("metrics"));
    for drop_totals in [false, true] {
        let broken = tempfile::tempdir().expect("tmp");
        run(broken.path(), &mut |t, dir| {
            // Killed at step 8: the latest checkpoint is step 6, one step past the evaluation
            // of step 5.
            t.run::<Network>(dir, &mut CrashAt(7)).expect_err("crash");
            assert_eq!(CheckpointStore::new(dir).latest(), Some(6));
            if drop_totals {
                let ck = CheckpointStore::new(dir).dir_of(6);
                std::fs::remove_file(ck.join("running.json")).expect("running.json");
                let state = std::fs::read_to_string(ck.join("state.json")).expect("state");
                let mut state: serde_json::Value = serde_json::from_str(&state).expect("json");
                state["sha256"]
                    .as_object_mut()
                    .expect("checksums")
                    .remove("running.json");
                std::fs::write(ck.join("state.json"), state.to_string()).expect("write");
            }
            t.run::<Network>(dir, &mut NoHooks).expect("resumed");
        });
        let resumed = strip(&Metrics::load(&broken.path().join("metrics.json")).expect("metrics"));
        if drop_totals {
            assert_ne!(
                resumed, expected,
                "the train loss at step 10 averages steps 6-10 only"
            );
        } else {
            assert_eq!(resumed, expected);
        }
    }
}

#[test]
fn learns_the_synthetic_task() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut r = lenet();
    r.training_steps = Steps::iterations(60);
    let outcome = trainer(r, 1)
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect("run");
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
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect_err("diverges");
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("last good checkpoint"), "{err}");
    assert!(CheckpointStore::new(dir.path()).has(0));
}

#[test]
fn a_directory_with_another_config_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    trainer(lenet(), 1)
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect("first");
    let err = trainer(lenet(), 2)
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect_err("mismatch");
    assert!(matches!(err, Error::ConfigMismatch { .. }), "{err}");
}

/// The state after `n` steps at a fixed learning rate, every tensor on the host.
fn after_steps(t: &Trainer, n: u64) -> Vec<(nets::params::TensorInfo, Vec<f32>)> {
    let mut state = t.initial_state::<Network>().expect("init");
    let loss_fn = t.loss_fn();
    for _ in 0..n {
        let (next, loss) = t.step(state, &loss_fn, 0.05, true).expect("step");
        assert!(loss.is_some_and(f32::is_finite));
        state = next;
    }
    tensor_values(&state.model)
}

/// Largest difference between the trained parameters (BN running statistics excluded) of two
/// states, relative to the largest magnitude.
fn param_gap(
    a: &[(nets::params::TensorInfo, Vec<f32>)],
    b: &[(nets::params::TensorInfo, Vec<f32>)],
) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut gap = 0.0f32;
    for ((ia, va), (ib, vb)) in a.iter().zip(b) {
        assert_eq!(ia.path, ib.path);
        if ia.role.is_buffer() {
            continue;
        }
        let scale = va.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (x, y) in va.iter().zip(vb) {
            gap = gap.max((x - y).abs() / scale);
        }
    }
    gap
}

#[test]
fn micro_batches_give_the_update_of_the_whole_batch() {
    // No BN in Lenet: splitting a batch of 8 into 3 + 3 + 2 changes nothing but rounding.
    let whole = after_steps(&trainer(lenet(), 1), 4);
    let mut split = lenet();
    split.data.micro_batches = 3;
    let parts = after_steps(&trainer(split, 1), 4);
    let gap = param_gap(&whole, &parts);
    assert!(gap < 1e-5, "relative gap {gap}");
    // Different summation order, so not bit-identical: the split path really ran.
    assert!(gap > 0.0);
}

#[test]
fn two_devices_give_the_update_of_one_device_accumulating() {
    // Resnet-8 has BN: compare like with like, the same 4 micro-batches of 2 examples on one
    // device (accumulated) and on two (2 each, gradients moved to the first and summed).
    let mut r = resnet();
    r.data.micro_batches = 4;
    let one = after_steps(&trainer(r.clone(), 1), 3);
    let device = default_device();
    let two_devices = trainer(r, 1)
        .with_devices(&[device.clone(), device])
        .expect("devices");
    assert_eq!(two_devices.device_count(), 2);
    let two = after_steps(&two_devices, 3);
    let gap = param_gap(&one, &two);
    assert!(gap < 1e-4, "relative gap {gap}");
    // And it is really training: the weights moved from the initialisation.
    let init = tensor_values(
        &trainer(resnet(), 1)
            .initial_state::<Network>()
            .expect("init")
            .model,
    );
    assert!(param_gap(&init, &two) > 1e-3);
    assert!(matches!(
        trainer(resnet(), 1).with_devices(&[]),
        Err(Error::Config(_))
    ));
}

/// A run computing on a pool of its own (`compute_here`), of one thread or two, gives the bits
/// of the same run on rayon's global pool; a thread takes a pool once, and the pool is really
/// the one its parallel loops run on.
#[test]
fn a_run_on_threads_of_its_own_gives_the_bits_of_one_on_the_global_pool() {
    let on = |threads: Option<usize>| {
        std::thread::spawn(move || {
            if let Some(n) = threads {
                assert!(compute_here(n));
                assert!(!compute_here(n), "a thread takes a pool once");
                assert_eq!(rayon::current_num_threads(), n);
            }
            after_steps(&trainer(resnet(), 1), 3)
        })
        .join()
        .expect("training thread")
    };
    let global = on(None);
    assert_eq!(on(Some(1)), global);
    assert_eq!(on(Some(2)), global);
}

/// Writes an ImageNet-format tree: `train/<class>/*.JPEG` and `val/<class>/*.JPEG`, with
/// images of different sizes and a colour per class.
fn tiny_imagenet(dir: &std::path::Path) {
    let colours = [[200u8, 40, 40], [40, 200, 40], [40, 40, 200]];
    for (split, per_class) in [("train", 4u32), ("val", 2)] {
        for (c, colour) in colours.iter().enumerate() {
            let folder = dir.join(split).join(format!("n0000{c}"));
            std::fs::create_dir_all(&folder).expect("mkdir");
            for i in 0..per_class {
                let img = image::RgbImage::from_fn(96 + 8 * i, 80 + 4 * i, |x, y| {
                    let shade = ((x + y) % 32) as u8;
                    image::Rgb([
                        colour[0].saturating_add(shade),
                        colour[1].saturating_add(shade),
                        colour[2].saturating_add(shade),
                    ])
                });
                img.save(folder.join(format!("img_{i}.JPEG")))
                    .expect("jpeg");
            }
        }
    }
}

#[test]
fn resnet50_and_inception_v3_train_on_an_imagenet_folder() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    tiny_imagenet(&data_dir.join("imagenet"));
    let imagenet = |name: &str, model: ModelConfig| Recipe {
        name: name.into(),
        model,
        data: crate::DataConfig::new(
            data::DatasetName::Imagenet,
            4,
            data::Augmentation::RandomResizedCropFlip,
        ),
        training_steps: Steps::iterations(2),
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        schedule: LrSchedule::constant(0.01),
        bn_init: nets::BnInit::Ones,
    };
    for (preset, model, size, micro_batches) in [
        ("resnet50", ModelConfig::resnet50(), 64, 2),
        ("inception-v3", ModelConfig::inception_v3(), 75, 1),
    ] {
        let mut recipe = imagenet(preset, model);
        recipe.data.micro_batches = micro_batches;
        recipe.data.image_size = Some(size);
        recipe = recipe.with_length(Steps::iterations(2), 3);
        recipe.schedule = LrSchedule::constant(0.01);
        let data = TrainData::load(&recipe, &data_dir, false).expect("imagenet folder");
        assert_eq!((data.train.len(), data.test.len()), (12, 6));
        assert_eq!(data.transform.size, size);
        let mut config = TrainConfig::new(recipe, 1, 2);
        config.eval = trainer::EvalConfig {
            every: None,
            train_subset: Some(4),
            test_subset: None,
            batch_size: 3,
        };
        let t = Trainer::new(config, data, &default_device())
            .expect("trainer")
            .with_progress(false);
        assert_eq!(t.iterations_per_epoch(), 3);
        let dir = root.path().join(preset);
        let outcome = t.run::<Network>(&dir, &mut NoHooks).expect("two steps");
        let last = outcome.final_record().expect("a final evaluation");
        assert_eq!(last.step, 2);
        assert!(last.test_loss.is_finite() && last.train_loss.is_some_and(f32::is_finite));
        assert!(
            CheckpointStore::new(&dir).has(2),
            "{preset}: final checkpoint"
        );
    }
}

#[test]
fn an_evaluation_set_kept_as_tensors_scores_like_one_built_per_call() {
    let t = trainer(resnet(), 1);
    let model = burn::module::Module::valid(&t.build_model::<Network>().expect("model"));
    let device = default_device();
    let (source, transform) = (&t.data.train, &t.data.transform);
    let streamed = crate::EvalSet::new(source, transform, 7, Some(30), &device, 0).expect("set");
    let cached =
        crate::EvalSet::new(source, transform, 7, Some(30), &device, usize::MAX).expect("set");
    assert!(!streamed.is_cached() && cached.is_cached());
    let a = streamed.evaluate(&model).expect("eval");
    assert_eq!(a.examples, 30);
    // Twice from the cache (its tensors are reused, not consumed), and equal to streaming.
    assert_eq!(cached.evaluate(&model).expect("eval"), a);
    assert_eq!(cached.evaluate(&model).expect("eval"), a);
    assert_eq!(
        crate::evaluate(&model, source, transform, 7, Some(30), &device).expect("eval"),
        a
    );
}

mod checkpoints;
