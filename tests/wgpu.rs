//! The wgpu backend executed, against the CPU backend (flex) from the same state. CI runs it on
//! Mesa's lavapipe, a software Vulkan device (`REWIND_DEVICE=cpu`); `REWIND_DEVICE=gpu` runs it
//! on a real GPU. Build and run: `cargo test --release -p integration --features wgpu --test
//! wgpu`.
//!
//! Every step is taken on both backends from the same state (the CPU's, moved to the GPU as a
//! checkpoint), and the losses and updates compared with a relative tolerance
//! (`backend_check::LOSS_TOLERANCE` 1e-4, `UPDATE_TOLERANCE` 1e-3), not equality: both compute in
//! f32 but sum reductions in different orders (measured: ~1e-7 on the loss), and free-running
//! trainings drift apart from that rounding however right both are (see
//! `backend_check::Agreement`). A wrong kernel is off by 1e-2 or more. The initial weights,
//! seeded on the host, and checkpoints moved between backends must be bit-identical, and masked
//! weights exactly zero.

use burn::tensor::Device;
use checks::backend_check::{LOSS_TOLERANCE, UPDATE_TOLERANCE, agreement, curve_agreement};
use checks::host_reads::audit;
use experiments::reproduce::Scale;
use experiments::runs::{DataCache, Runner};
use integration::data_dir;
use paper::recipe;
use paper::{config, run_here};
use store::Store;
use train::NoHooks;

fn gpu() -> Device {
    match train::check_device() {
        Ok(device) => device,
        Err(e) => panic!("{e}"),
    }
}

fn assert_agrees(name: &str, r: &train::Recipe, steps: u64) {
    let a = agreement(name, r, &Device::flex(), &gpu(), steps).expect("the comparison runs");
    println!(
        "{name}: step losses {:.1e}, updates {:.1e}, checkpoints exact {}, resumed {:.1e}, \
         free-running {:?} vs {:?}, rerun differing weights {}",
        a.step_loss_difference,
        a.step_update_difference,
        a.checkpoints_exact,
        a.gpu_checkpoint_on_cpu,
        a.cpu_losses,
        a.gpu_losses,
        a.gpu_rerun_differing_weights
    );
    assert!(a.same_initial_weights, "{name}: different initial weights");
    assert!(
        a.step_loss_difference <= LOSS_TOLERANCE,
        "{name}: a step's loss differs by {:.2e}",
        a.step_loss_difference
    );
    assert!(
        a.step_update_difference <= UPDATE_TOLERANCE,
        "{name}: a step's update differs by {:.2e}",
        a.step_update_difference
    );
    assert!(
        a.checkpoints_exact,
        "{name}: a checkpoint changed moving between backends"
    );
    assert!(
        a.gpu_checkpoint_on_cpu <= LOSS_TOLERANCE,
        "{name}: a wgpu checkpoint resumed on flex continues differently"
    );
    assert!(
        a.masked > 0 && a.masked_nonzero == 0,
        "{name}: masked weights moved"
    );
    assert!(a.passed);
}

/// With `--features vulkan` a Vulkan device that supports cubecl's SPIR-V compiler must use it;
/// plain wgpu compiles to WGSL. Lavapipe crashes on SPIR-V kernels: a `vulkan` build must
/// refuse it with one message, before any kernel runs.
#[test]
fn the_runtime_is_the_one_the_features_ask_for() {
    let device = match train::check_device() {
        Ok(device) => device,
        Err(e) => {
            assert!(
                cfg!(feature = "vulkan") && e.to_string().contains("lavapipe"),
                "{e}"
            );
            println!("refused as it should be: {e}");
            return;
        }
    };
    let runtime = train::runtime_name(&device);
    println!("runtime: {runtime}");
    let expected = if cfg!(feature = "vulkan") {
        "wgpu<spirv>"
    } else {
        "wgpu<wgsl>"
    };
    assert_eq!(
        runtime,
        expected,
        "built with vulkan = {}: a Vulkan device that lacks what cubecl's SPIR-V compiler \
         needs falls back to WGSL (its features: RUST_LOG=cubecl_wgpu=debug)",
        cfg!(feature = "vulkan")
    );
}

#[test]
fn lenet_with_adam_trains_on_wgpu_as_on_flex() {
    assert_agrees("lenet", &recipe("lenet").expect("preset"), 8);
}

#[test]
fn narrow_resnet_with_bn_trains_on_wgpu_as_on_flex() {
    let mut r = recipe("resnet20").expect("preset");
    r.model = nets::ModelConfig::Resnet { depth: 8, width: 4 };
    r.data.batch_size = 32;
    assert_agrees("resnet-8-w4", &r, 6);
}

#[test]
fn a_masked_training_step_on_wgpu_reads_nothing_between_scheduled_reads() {
    let mut narrow = recipe("resnet20").expect("preset");
    narrow.model = nets::ModelConfig::Resnet { depth: 8, width: 4 };
    narrow.data.batch_size = 16;
    for (name, r) in [
        ("lenet", recipe("lenet").expect("preset")),
        ("resnet-8-w4", narrow),
    ] {
        let a = audit(&r, &gpu(), 25, 10, &mut NoHooks).expect("the audit runs");
        println!("{name}: reads by step {:?}", a.reads_by_step);
        assert!(a.passed(), "{name}: {a:?}");
    }
}

#[test]
fn interpolation_curve_on_wgpu_equals_flex_within_one_example() {
    let c = curve_agreement(&Device::flex(), &gpu(), 5, 1000).expect("curves");
    println!("errors {:?} vs {:?}", c.cpu_errors, c.gpu_errors);
    assert!(c.passed, "differ by {} examples", c.max_example_difference);
}

#[test]
fn smoke_reproduction_of_lenet_runs_on_wgpu() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut runner = paper::runner(
        Store::open(dir.path()).expect("store"),
        DataCache::new(&data_dir(), false),
        &gpu(),
    );
    runner.show_run_progress = false;
    let mut config = config(Scale::Smoke);
    config.models = vec!["lenet".into()];
    let results = run_here(&config, &runner, 1).expect("smoke reproduction on wgpu");
    assert_eq!(results.models.len(), 1);
    let lenet = &results.models[0];
    let accuracy = lenet
        .dense_accuracy
        .as_ref()
        .expect("a dense accuracy")
        .mean;
    assert!(
        accuracy.is_finite() && accuracy > 20.0,
        "dense accuracy {accuracy}%"
    );
    assert!(lenet.dense.is_some(), "no instability analysis");
}
