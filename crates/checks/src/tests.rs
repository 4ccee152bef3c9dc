//! The training loop reads from the device only where its schedule says (flex here; the wgpu
//! suite runs the same audit on lavapipe).

use burn::tensor::Device;
use paper_networks::Network;
use sparsity::Sparse;
use train::{NoHooks, TrainHooks};

use crate::host_reads::audit;
use paper::recipe;

fn narrow_resnet() -> train::Recipe {
    let mut r = recipe("resnet20").expect("preset");
    r.model = nets::ModelConfig::Resnet { depth: 8, width: 4 };
    r.data.batch_size = 16;
    r
}

#[test]
fn a_masked_training_step_reads_nothing_between_scheduled_reads() {
    for (name, r) in [
        ("lenet", recipe("lenet").expect("preset")),
        ("resnet", narrow_resnet()),
    ] {
        let a = audit(&r, &Device::flex(), 120, 50, &mut NoHooks).expect("audit");
        assert!(a.passed(), "{name}: {a:?}");
        // Losses read after steps 50, 100 and the last.
        assert_eq!(a.reads_by_step.iter().sum::<u64>(), 3, "{name}: {a:?}");
        assert_eq!(a.eval_batches, 4);
    }
}

/// Reads one weight's values after every step: what a per-step check would do.
struct ReadsEveryStep;
impl TrainHooks<Sparse<Network>> for ReadsEveryStep {
    fn after_step(&mut self, model: Sparse<Network>, _step: u64) -> train::Result<Sparse<Network>> {
        let mut first = None;
        nets::params::visit_tensors(&model.model, |_, t| {
            first.get_or_insert(t);
        });
        if let Some(t) = first {
            nets::readback::values(t);
        }
        Ok(model)
    }
}

#[test]
fn a_read_in_every_step_is_reported() {
    let a = audit(
        &recipe("lenet").expect("preset"),
        &Device::flex(),
        30,
        10,
        &mut ReadsEveryStep,
    )
    .expect("audit");
    assert!(!a.passed());
    assert_eq!(a.unscheduled, (1..=30).collect::<Vec<u64>>(), "{a:?}");
}
