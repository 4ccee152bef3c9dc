//! Parity with PyTorch, step for step from our state (`tests/fixtures/parity/<simd level>/
//! <case>.json`, written by `cargo xtask parity` with Table 1's recipe on PyTorch's side; see
//! `checks::parity`), and the proof that the comparison can fail: each convention broken
//! alone is rejected, at the step where it first acts and not before.
//!
//! Our replay agrees bit for bit only among CPUs of one SIMD level (`train::cpu_simd_level`),
//! so each level has its own fixtures, and each fixture records the version of the kernels'
//! summation orders it was made with (`kernels::NUMERICS`). On a level without current ones
//! these tests say so and pass, unless `REWIND_REQUIRE_PARITY=1` (CI sets it) makes that a
//! failure.

use std::path::{Path, PathBuf};

use checks::parity::{self, Check, Comparison, Fixture, Lookup, Perturbation, Phase};
use experiments::runs::DataCache;
use integration::data_dir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parity")
}

/// This machine's fixture of `name`, or `None` (after saying why) on a SIMD level without a
/// current one: none made, or one made by kernels that summed in another order.
fn fixture(name: &str) -> Option<Fixture> {
    let lookup = Fixture::load_for(&fixtures(), name).expect("the parity fixture");
    match lookup.into_fixture() {
        Ok(fixture) => Some(fixture),
        Err(message) => {
            assert!(
                std::env::var("REWIND_REQUIRE_PARITY").as_deref() != Ok("1"),
                "{message}"
            );
            eprintln!("SKIPPED: {message}");
            None
        }
    }
}

fn compare_with(fixture: &Fixture, name: &str, perturbation: Perturbation) -> Comparison {
    let case = parity::case(name).expect("case");
    let data = case
        .data(&DataCache::new(&data_dir(), false))
        .expect("data");
    let measured = parity::measure_perturbed(case, &data, None, perturbation).expect("replay");
    parity::compare(case, fixture, &measured).expect("comparison")
}

fn compare(name: &str, perturbation: Perturbation) -> Option<Comparison> {
    Some(compare_with(&fixture(name)?, name, perturbation))
}

/// The loss and every tensor's update of every step (dense and IMP child), the IMP mask bit
/// for bit, the rewound state, and the test errors along an interpolation.
fn matches_pytorch(name: &str) {
    let Some(comparison) = compare(name, Perturbation::None) else {
        return;
    };
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
        let Some(comparison) = compare("resnet20", perturbation) else {
            return;
        };
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
        let Some(comparison) = compare("vgg16", perturbation) else {
            return;
        };
        let first = comparison.first().map(|f| (f.phase, f.check, f.step));
        assert_eq!(
            first,
            Some((Phase::Dense, Check::Update, 0)),
            "{perturbation:?}: {}",
            comparison.summary()
        );
    }
}

/// The fixtures are per SIMD level for a reason: against another level's fixture our replay is
/// not the state PyTorch stepped from, and the comparison says so (a replay failure) instead
/// of passing or blaming a convention.
#[test]
fn another_simd_levels_fixture_is_not_this_machines_replay() {
    let here = train::cpu_simd_level();
    let others: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("the parity fixtures")
        .map(|entry| entry.expect("a fixture folder").path())
        .filter(|dir| dir.file_name().is_some_and(|name| name != here))
        .collect();
    if others.is_empty() {
        eprintln!("SKIPPED: no fixtures of another SIMD level than {here}");
    }
    for other in others {
        let fixture = Fixture::load(&other.join("lenet.json")).expect("the other level's fixture");
        let comparison = compare_with(&fixture, "lenet", Perturbation::None);
        assert!(
            comparison.failures.iter().any(|f| f.check == Check::Replay),
            "lenet replayed on {here} matched the {} fixture state for state: {}",
            other.display(),
            comparison.summary()
        );
    }
}

/// A fixture records the kernels' numerics version it was made with; one of another version
/// pins states this build no longer computes, and is reported stale, with how to regenerate
/// it, instead of failing as a departure from PyTorch.
#[test]
fn a_fixture_of_other_kernel_numerics_is_stale_and_says_how_to_regenerate_it() {
    let here = train::cpu_simd_level();
    let current = match Fixture::load_for(&fixtures(), "lenet").expect("the parity fixture") {
        Lookup::Found(fixture) => fixture,
        other => {
            eprintln!("SKIPPED: no current lenet fixture on {here}: {other:?}");
            return;
        }
    };
    let text = std::fs::read_to_string(Fixture::path_for(&fixtures(), "lenet")).expect("read");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["numerics"] = (current.numerics + 1).into();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(here)).expect("mkdir");
    std::fs::write(
        Fixture::path_for(dir.path(), "lenet"),
        serde_json::to_string(&json).expect("encode"),
    )
    .expect("write");
    let lookup = Fixture::load_for(dir.path(), "lenet").expect("a stale fixture still loads");
    assert!(
        matches!(lookup, Lookup::Stale { made_with, .. } if made_with == current.numerics + 1),
        "{lookup:?}"
    );
    let message = lookup
        .into_fixture()
        .expect_err("a stale fixture is not compared with");
    assert!(
        message.contains("stale") && message.contains("cargo xtask parity"),
        "{message}"
    );
}
