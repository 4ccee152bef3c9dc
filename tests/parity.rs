//! Parity with PyTorch, step for step from our state (`tests/fixtures/parity/<case>.json`,
//! written by `cargo xtask parity` with Table 1's recipe on PyTorch's side; see
//! `checks::parity`), and the proof that the comparison can fail: each convention broken
//! alone is rejected, at the step where it first acts and not before.

use checks::parity::{self, Check, Comparison, Perturbation, Phase};
use experiments::runs::DataCache;
use integration::data_dir;

fn compare(name: &str, perturbation: Perturbation) -> Comparison {
    let case = parity::case(name).expect("case");
    let fixture = parity::Fixture::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("fixtures/parity/{name}.json")),
    )
    .expect("the parity fixture");
    let data = case
        .data(&DataCache::new(&data_dir(), false))
        .expect("data");
    let measured = parity::measure_perturbed(case, &data, None, perturbation).expect("replay");
    parity::compare(case, &fixture, &measured).expect("comparison")
}

/// The loss and every tensor's update of every step (dense and IMP child), the IMP mask bit
/// for bit, the rewound state, and the test errors along an interpolation.
fn matches_pytorch(name: &str) {
    let comparison = compare(name, Perturbation::None);
    println!("{name}: {comparison:?}");
    assert!(
        comparison.passed(),
        "{name} departs from PyTorch: {}",
        comparison.summary()
    );
}

/// Lenet with Adam, 100 steps on MNIST, an IMP round rewound to step 50.
#[test]
fn lenet_with_adam_matches_pytorch_step_for_step() {
    matches_pytorch("lenet");
}

/// Resnet-20 (width 4) with BN, SGD momentum, weight decay, both LR drops and augmentation,
/// 60 steps on Fashion-MNIST, an IMP round rewound to step 36 (after the first drop).
#[test]
fn resnet20_with_sgd_and_bn_matches_pytorch_step_for_step() {
    matches_pytorch("resnet20");
}

/// VGG-16 (channels / 16) with BN and max pooling, 40 steps on Fashion-MNIST, an IMP round
/// (output layer unpruned) rewound to step 24.
#[test]
fn vgg16_matches_pytorch_step_for_step() {
    matches_pytorch("vgg16");
}

/// Runs Resnet-20's case with each convention of `expected` broken alone and checks that the
/// comparison's first failure is the expected check, in the expected phase, at the first step
/// the change acts on.
fn rejects_each(expected: &[(Perturbation, Phase, Check, u64)]) {
    let mut wrong = vec![];
    for &(perturbation, phase, check, step) in expected {
        let comparison = compare("resnet20", perturbation);
        let first = comparison.first().map(|f| (f.phase, f.check, f.step));
        println!(
            "{perturbation:?}: first failure {first:?}: {}",
            comparison.first().map_or("", |f| f.message.as_str())
        );
        if first != Some((phase, check, step)) {
            wrong.push(format!(
                "{perturbation:?}: expected {:?}, got {first:?} ({})",
                (phase, check, step),
                comparison.summary()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The recipe broken one convention at a time (the 60-step case drops the rate at 30 and 46;
/// SGD's first step has no momentum yet).
#[test]
fn resnet20_parity_rejects_each_broken_training_convention() {
    rejects_each(&[
        (Perturbation::LrDropLate, Phase::Dense, Check::Update, 30),
        (
            Perturbation::WeightDecay(0.0),
            Phase::Dense,
            Check::Update,
            0,
        ),
        (
            Perturbation::WeightDecay(2.0),
            Phase::Dense,
            Check::Update,
            0,
        ),
        (Perturbation::Momentum(0.8), Phase::Dense, Check::Update, 1),
        (
            Perturbation::BnMomentum(0.2),
            Phase::Dense,
            Check::Buffer,
            0,
        ),
    ]);
}

/// The IMP round broken one convention at a time (the child starts at 36).
#[test]
fn resnet20_parity_rejects_each_broken_rewinding_convention() {
    rejects_each(&[
        (
            Perturbation::MaskNotReapplied,
            Phase::Imp,
            Check::Update,
            36,
        ),
        (Perturbation::RewindOneLate, Phase::Imp, Check::Rewind, 36),
        (
            Perturbation::OptimizerNotReset,
            Phase::Imp,
            Check::Update,
            36,
        ),
    ]);
}

/// VGG-16's conv biases sit before BN, so their gradient is zero and weight decay is their whole
/// update: a missing or doubled decay is rejected at the first step, by a wide margin.
#[test]
fn vgg16_parity_rejects_a_wrong_weight_decay() {
    for perturbation in [
        Perturbation::WeightDecay(0.0),
        Perturbation::WeightDecay(2.0),
    ] {
        let comparison = compare("vgg16", perturbation);
        let first = comparison.first().map(|f| (f.phase, f.check, f.step));
        assert_eq!(
            first,
            Some((Phase::Dense, Check::Update, 0)),
            "{perturbation:?}: {}",
            comparison.summary()
        );
    }
}
