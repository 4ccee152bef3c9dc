//! The wgpu backend executed, against the CPU backend (flex) from the same state. CI runs it on
//! Mesa's lavapipe, a software Vulkan device (`REWIND_DEVICE=cpu`); `REWIND_DEVICE=gpu` runs it
//! on a real GPU. Build and run: `cargo test --release -p integration --features wgpu --test
//! wgpu`.
//!
//! Why a relative tolerance on the losses (`backend_check::LOSS_TOLERANCE`, 1e-3) and not
//! equality: both devices compute in f32 but sum reductions in different orders, so a loss moves
//! by ~1e-7 relative per step and training amplifies it a little every step; a wrong kernel moves
//! it by 1e-2 or more within a few steps. The initial weights, seeded on the host, must be
//! bit-identical, and masked weights exactly zero.

use burn::tensor::Device;
use experiments::backend_check::{agreement, curve_agreement};
use experiments::registry::recipe;
use experiments::reproduce::{Scale, config, run_here};
use experiments::runs::{DataCache, Runner};
use experiments::store::Store;
use integration::data_dir;

fn gpu() -> Device {
    match train::check_device() {
        Ok(device) => device,
        Err(e) => panic!("{e}"),
    }
}

fn assert_agrees(name: &str, r: &train::Recipe, steps: u64) {
    let a = agreement(name, r, &Device::flex(), &gpu(), steps).expect("the comparison runs");
    println!(
        "{name}: losses {:?} vs {:?}, max relative difference {:.2e}, checkpoints {:.2e} / {:.2e}, \
         rerun differing weights {}",
        a.cpu_losses,
        a.gpu_losses,
        a.max_relative_loss_difference,
        a.gpu_checkpoint_on_cpu,
        a.cpu_checkpoint_on_gpu,
        a.gpu_rerun_differing_weights
    );
    assert!(a.same_initial_weights, "{name}: different initial weights");
    assert!(
        a.max_relative_loss_difference <= experiments::backend_check::LOSS_TOLERANCE,
        "{name}: the losses differ by {:.2e}",
        a.max_relative_loss_difference
    );
    assert!(
        a.gpu_checkpoint_on_cpu <= experiments::backend_check::LOSS_TOLERANCE
            && a.cpu_checkpoint_on_gpu <= experiments::backend_check::LOSS_TOLERANCE,
        "{name}: a checkpoint resumed on the other backend continues differently"
    );
    assert!(
        a.masked > 0 && a.masked_nonzero == 0,
        "{name}: masked weights moved"
    );
    assert!(a.passed);
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
fn interpolation_curve_on_wgpu_equals_flex_within_one_example() {
    let c = curve_agreement(&Device::flex(), &gpu(), 5, 1000).expect("curves");
    println!("errors {:?} vs {:?}", c.cpu_errors, c.gpu_errors);
    assert!(c.passed, "differ by {} examples", c.max_example_difference);
}

#[test]
fn smoke_reproduction_of_lenet_runs_on_wgpu() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut runner = Runner::new(
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
