use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use nets::params::{map_tensors, tensor_values};
use nets::{Classifier, ModelConfig};
use paper_networks::Network;
use sparsity::{PruneRule, Sparse};

use crate::*;

/// A network of `config` whose BN running statistics are random too (so that a permutation
/// that forgot the buffers changes the logits), on the default (inference) device.
fn network(config: &ModelConfig, channels: usize, size: usize, seed: u64) -> Network {
    let device = Device::default();
    burn::tensor::Device::seed(&device, seed);
    let net = Network::build(config, channels, size, 10, &device).expect("build");
    map_tensors(net, |info, t| {
        let n = info.numel();
        if info.path.ends_with("running_mean") {
            Tensor::random([n], Distribution::Normal(0.0, 0.2), &t.device())
        } else if info.path.ends_with("running_var") || info.path.ends_with("gamma") {
            Tensor::random([n], Distribution::Uniform(0.5, 1.5), &t.device())
        } else if info.path.ends_with("beta") {
            Tensor::random([n], Distribution::Normal(0.0, 0.1), &t.device())
        } else {
            t
        }
    })
}

/// The paper's networks' activation taps.
fn taps(network: &Network, images: Tensor<4>) -> nets::Result<Vec<nets::activations::Tap>> {
    network.activations(images)
}

fn images(channels: usize, size: usize) -> Tensor<4> {
    Tensor::random(
        [4, channels, size, size],
        Distribution::Normal(0.0, 1.0),
        &Device::default(),
    )
}

fn max_relative_difference(a: Tensor<2>, b: Tensor<2>) -> f32 {
    let scale = nets::readback::scalar(a.clone().abs().max()).max(1e-6);
    nets::readback::scalar((a - b).abs().max()) / scale
}

/// Every architecture with a spec: small instances, at the image sizes they accept.
fn cases() -> Vec<(&'static str, ModelConfig, usize, usize)> {
    vec![
        (
            "lenet",
            ModelConfig::Lenet {
                hidden: vec![30, 20],
            },
            1,
            28,
        ),
        ("vgg16", ModelConfig::Vgg16 { width_divisor: 16 }, 3, 32),
        (
            "resnet20",
            ModelConfig::Resnet {
                depth: 20,
                width: 4,
            },
            3,
            32,
        ),
        (
            "resnet50",
            ModelConfig::ImagenetResnet {
                depth: 50,
                width: 4,
            },
            3,
            64,
        ),
    ]
}

#[test]
fn a_randomly_permuted_network_computes_the_same_logits() {
    for (name, config, channels, size) in cases() {
        let net = network(&config, channels, size, 1);
        let spec = PermutationSpec::of(&net, &config.architecture().symmetry).expect(name);
        let permutation = Permutation::random(&spec, 7);
        assert!(!permutation.is_identity(), "{name}");
        let x = images(channels, size);
        let before = net.forward(x.clone());
        let permuted = permute(net.clone(), &spec, &permutation).expect(name);
        let diff = max_relative_difference(before.clone(), permuted.forward(x.clone()));
        assert!(diff < 1e-5, "{name}: logits moved by {diff}");
        // It really moved the weights, and the inverse puts them back exactly.
        assert_ne!(tensor_values(&permuted), tensor_values(&net), "{name}");
        let back = permute(permuted, &spec, &permutation.inverse()).expect(name);
        assert_eq!(tensor_values(&back), tensor_values(&net), "{name}");
    }
}

#[test]
fn a_permutation_that_misses_a_tensor_changes_the_logits() {
    // The test above can fail: drop the running means from Resnet-20's spec and the
    // permuted network computes something else.
    let (_, config, channels, size) = cases().remove(2);
    let net = network(&config, channels, size, 1);
    let mut spec = PermutationSpec::of(&net, &config.architecture().symmetry).expect("spec");
    for g in &mut spec.groups {
        g.axes.retain(|a| !a.path.ends_with("running_mean"));
    }
    let permutation = Permutation::random(&spec, 7);
    let x = images(channels, size);
    let before = net.forward(x.clone());
    let permuted = permute(net, &spec, &permutation).expect("permute");
    assert!(max_relative_difference(before, permuted.forward(x)) > 1e-3);
}

#[test]
fn matching_finds_a_permuted_copy_identical() {
    for (name, config, channels, size) in cases() {
        let a = network(&config, channels, size, 2);
        let spec = PermutationSpec::of(&a, &config.architecture().symmetry).expect(name);
        let b = permute(a.clone(), &spec, &Permutation::random(&spec, 11)).expect(name);
        let found = weight_matching(
            &spec,
            &tensor_values(&a),
            &tensor_values(&b),
            MatchingConfig::default(),
        )
        .expect(name);
        let aligned = permute(b, &spec, &found.permutation).expect(name);
        // Bit-identical: every point of the interpolation path is A, the barrier exactly 0.
        assert_eq!(tensor_values(&aligned), tensor_values(&a), "{name}");
    }
}

#[test]
fn matching_is_deterministic_and_raises_the_similarity() {
    let config = ModelConfig::Resnet { depth: 8, width: 4 };
    let a = tensor_values(&network(&config, 3, 32, 3));
    let b = tensor_values(&network(&config, 3, 32, 4));
    let spec = PermutationSpec::of(&network(&config, 3, 32, 3), &config.architecture().symmetry)
        .expect("spec");
    let run = |seed| {
        weight_matching(
            &spec,
            &a,
            &b,
            MatchingConfig {
                seed,
                max_rounds: 100,
            },
        )
        .expect("match")
    };
    let (first, again) = (run(5), run(5));
    assert_eq!(first, again);
    let identity = weight_matching(
        &spec,
        &a,
        &b,
        MatchingConfig {
            seed: 5,
            max_rounds: 0,
        },
    )
    .expect("no rounds");
    assert!(identity.permutation.is_identity());
    assert!(first.similarity > identity.similarity);
    assert!(first.rounds < 100);
}

#[test]
fn a_permuted_ticket_is_the_same_subnetwork() {
    let config = ModelConfig::Lenet {
        hidden: vec![30, 20],
    };
    let net = network(&config, 1, 28, 5);
    let sparse = Sparse::dense(net, &PruneRule::for_model(&config))
        .prune_magnitude(0.7)
        .expect("prune");
    let spec = PermutationSpec::of(&sparse.model, &config.architecture().symmetry).expect("spec");
    let permutation = Permutation::random(&spec, 3);
    let x = images(1, 28);
    let before = sparse.forward(x.clone());
    let density = sparse.density();
    let permuted = permute_sparse(sparse, &spec, &permutation).expect("permute");
    assert_eq!(permuted.density().kept, density.kept);
    assert!(max_relative_difference(before, permuted.forward(x)) < 1e-5);
    // Every pruned weight is still exactly zero, and applying the masks changes nothing.
    let masks = permuted.mask.to_host();
    let weights = tensor_values(&permuted.model);
    for (path, mask) in &masks {
        let (_, w) = weights
            .iter()
            .find(|(i, _)| &i.path == path)
            .expect("weight");
        assert!(
            mask.iter().zip(w).all(|(m, w)| *m != 0.0 || *w == 0.0),
            "{path}"
        );
    }
    let applied = permuted.apply();
    assert_eq!(tensor_values(&applied.model), weights);
}

#[test]
fn the_specs_tie_residual_streams_and_refuse_unknown_networks() {
    let config = ModelConfig::Resnet {
        depth: 20,
        width: 4,
    };
    let resnet = network(&config, 3, 32, 1);
    let spec = PermutationSpec::of(&resnet, &config.architecture().symmetry).expect("spec");
    // The symmetry is the architecture's: read as a plain conv chain, the tensors do not fit.
    assert!(matches!(
        PermutationSpec::of(&resnet, &nets::Symmetry::ConvChain),
        Err(Error::Spec(_))
    ));
    let names: Vec<&str> = spec.groups.iter().map(|g| g.name.as_str()).collect();
    // Three stages (4, 8, 16 channels), one inner group per block (9 blocks).
    assert_eq!(&names[..3], &["stream.0", "stream.1", "stream.2"]);
    assert_eq!(names.len(), 3 + 9);
    assert_eq!(
        spec.groups
            .iter()
            .map(|g| g.size)
            .take(3)
            .collect::<Vec<_>>(),
        vec![4, 8, 16]
    );
    // Stream 0: the stem, three blocks' outputs and inputs, and the next stage's inputs.
    let stream0 = &spec.groups[0];
    assert!(
        stream0
            .axes
            .iter()
            .any(|a| a.path.ends_with("stem.conv.weight") && a.axis == 0)
    );
    assert!(
        stream0
            .axes
            .iter()
            .any(|a| a.path.ends_with("blocks.3.shortcut.conv.weight") && a.axis == 1)
    );
    assert!(
        spec.groups[2]
            .axes
            .iter()
            .any(|a| a.path.ends_with("fc.weight") && a.axis == 0)
    );
    let config = ModelConfig::InceptionV3 { aux_logits: false };
    let inception = Network::build(&config, 3, 75, 10, &Device::default()).expect("inception");
    assert!(matches!(
        PermutationSpec::of(&inception, &config.architecture().symmetry),
        Err(Error::Unsupported(_))
    ));
}

/// The architectures activation matching has activation sites for.
fn activation_cases() -> Vec<(&'static str, ModelConfig, usize, usize)> {
    cases()
        .into_iter()
        .filter(|c| !matches!(c.1, ModelConfig::ImagenetResnet { .. }))
        .collect()
}

/// A freshly initialised network whose BN normalises with batch statistics (train mode), so
/// that no unit is dead on random images: a unit that never varies correlates with nothing
/// and cannot be matched by its activations.
fn live_network(config: &ModelConfig, channels: usize, size: usize, seed: u64) -> Network {
    let device = Device::default();
    let net = Network::build(config, channels, size, 10, &device).expect("build");
    nets::initialize(net, seed, nets::BnInit::Ones).train()
}

fn batches(channels: usize, size: usize) -> Vec<Tensor<4>> {
    (0..2)
        .map(|_| {
            Tensor::random(
                [16, channels, size, size],
                Distribution::Normal(0.0, 1.0),
                &Device::default(),
            )
        })
        .collect()
}

/// Activation matching recovers a random permutation of a network exactly: every unit's
/// activations correlate 1 with its own copy's.
#[test]
fn activation_matching_finds_a_permuted_copy_identical() {
    for (name, config, channels, size) in activation_cases() {
        let a = live_network(&config, channels, size, 2);
        let spec = PermutationSpec::of(&a, &config.architecture().symmetry).expect(name);
        let b = permute(a.clone(), &spec, &Permutation::random(&spec, 11)).expect(name);
        let found = activation_matching(&spec, &a, &b, batches(channels, size), taps).expect(name);
        let aligned = permute(b, &spec, &found.permutation).expect(name);
        assert_eq!(tensor_values(&aligned), tensor_values(&a), "{name}");
    }
}

/// Two networks that differ by a little noise (siblings of one init) correlate best unit by
/// unit: activation matching leaves them as they are. A permuted sibling is matched back.
#[test]
fn activation_matching_leaves_siblings_alone_and_undoes_a_permutation() {
    for (name, config, channels, size) in activation_cases() {
        let a = live_network(&config, channels, size, 5);
        let spec = PermutationSpec::of(&a, &config.architecture().symmetry).expect(name);
        let sibling = map_tensors(a.clone(), |info, t| {
            if info.path.contains("running") {
                return t;
            }
            let noise = Tensor::random(t.dims(), Distribution::Normal(0.0, 1e-3), &t.device());
            t.clone() + noise
        });
        let found =
            activation_matching(&spec, &a, &sibling, batches(channels, size), taps).expect(name);
        assert!(
            found.permutation.is_identity(),
            "{name}: {:?}",
            found.permutation
        );
        let shuffled = Permutation::random(&spec, 3);
        let moved = permute(sibling, &spec, &shuffled).expect(name);
        let back =
            activation_matching(&spec, &a, &moved, batches(channels, size), taps).expect(name);
        assert_eq!(back.permutation, shuffled.inverse(), "{name}");
    }
}

/// Networks it has no activation sites for are refused with one message.
#[test]
fn activation_matching_refuses_networks_without_activation_sites() {
    let config = ModelConfig::ImagenetResnet {
        depth: 50,
        width: 4,
    };
    let a = network(&config, 3, 64, 1);
    let spec = PermutationSpec::of(&a, &config.architecture().symmetry).expect("spec");
    let err = activation_matching(&spec, &a, &a, batches(3, 64), taps).expect_err("refused");
    assert!(
        err.to_string().contains("activation matching knows"),
        "{err}"
    );
}

/// What the pipeline does to the second network of a pair, for each paper network with an
/// activation tap and both matchings: two networks of different inits (random BN buffers, the
/// second pruned), the permutation each matching finds applied to the second, its logits
/// unchanged and its pruned weights still zero.
#[test]
fn the_permutation_either_matching_finds_preserves_the_function() {
    for (name, config, channels, size) in activation_cases() {
        let a = network(&config, channels, size, 21);
        // A fresh copy for every permutation: a clone shares BN running statistics with its
        // original (burn), so permuting a clone would move the original's buffers too. The
        // copy is rebuilt from the values, not from the seed: tests running beside this one
        // draw from the same device RNG between seeding and building.
        let b_values = tensor_values(&network(&config, channels, size, 22));
        let fresh_b = || {
            let device = Device::default();
            let built = Network::build(&config, channels, size, 10, &device).expect(name);
            let mut values = b_values.iter();
            let copy = map_tensors(built, |info, t| {
                let (stored, v) = values.next().expect("same structure");
                assert_eq!(stored.path, info.path, "{name}");
                nets::params::from_vec(v.clone(), &t.device())
            });
            Sparse::dense(copy, &PruneRule::for_model(&config))
                .prune_magnitude(0.5)
                .expect(name)
        };
        let b = fresh_b();
        let spec = PermutationSpec::of(&a, &config.architecture().symmetry).expect(name);
        let by_weights = weight_matching(
            &spec,
            &tensor_values(&a),
            &tensor_values(&b.model),
            MatchingConfig::default(),
        )
        .expect(name)
        .permutation;
        let by_activations = activation_matching(
            &spec,
            &live_network(&config, channels, size, 21),
            &live_network(&config, channels, size, 22),
            batches(channels, size),
            taps,
        )
        .expect(name)
        .permutation;
        let x = images(channels, size);
        let before = b.forward(x.clone());
        let random = Permutation::random(&spec, 7);
        for (how, permutation) in [
            ("random", random),
            ("weights", by_weights),
            ("activations", by_activations),
        ] {
            assert!(!permutation.is_identity(), "{name}, {how}: nothing moved");
            for (g, p) in spec.groups.iter().zip(&permutation.groups) {
                let mut sorted = p.clone();
                sorted.sort_unstable();
                assert_eq!(
                    sorted,
                    (0..g.size).collect::<Vec<_>>(),
                    "{name}, {how}: {}",
                    g.name
                );
            }
            let moved = permute_sparse(fresh_b(), &spec, &permutation).expect(name);
            let diff = max_relative_difference(before.clone(), moved.forward(x.clone()));
            assert!(diff < 1e-5, "{name}, {how}: logits moved by {diff}");
            assert_eq!(moved.density().kept, b.density().kept, "{name}, {how}");
            let applied = moved.clone().apply();
            assert_eq!(
                tensor_values(&applied.model),
                tensor_values(&moved.model),
                "{name}, {how}: a pruned weight is not zero"
            );
        }
    }
}

/// [`check_permutation`] on `net` (a network of `config`) and `spec`, on [`images`], seed 5.
fn check_of(
    config: &ModelConfig,
    channels: usize,
    size: usize,
    net: &Network,
    spec: &PermutationSpec,
) -> Result<PermutationCheck> {
    let build = || Network::build(config, channels, size, 10, &Device::default()).expect("net");
    check_permutation(build, &tensor_values(net), spec, images(channels, size), 5)
}

/// [`network`] with its batch-norm statistics drawn by [`vary_batch_norm`] (the CLI's path):
/// VGG-16's running variances small enough that its logits still depend on its input.
fn varied_network(config: &ModelConfig, channels: usize, size: usize, seed: u64) -> Network {
    let net = network(config, channels, size, seed);
    vary_batch_norm(net, seed, &config.architecture().symmetry)
}

/// The check of every paper network's spec passes: each group alone, and all at once; and a
/// network whose logits do not depend on its input is refused, not passed.
#[test]
fn every_specs_permutations_keep_the_function() {
    let (_, config, channels, size) = cases().remove(1);
    let flat = network(&config, channels, size, 3);
    let spec = PermutationSpec::of(&flat, &config.architecture().symmetry).expect("spec");
    let err = check_of(&config, channels, size, &flat, &spec).expect_err("insensitive");
    assert!(err.to_string().contains("hardly depend"), "{err}");
    for (name, config, channels, size) in cases() {
        let net = varied_network(&config, channels, size, 3);
        let spec = PermutationSpec::of(&net, &config.architecture().symmetry).expect(name);
        let check = check_of(&config, channels, size, &net, &spec).expect(name);
        assert!(check.passed(), "{name}: {check:?}");
        assert_eq!(check.groups.len(), spec.groups.len(), "{name}");
        assert!(
            check.groups.iter().any(|g| g.size > 1),
            "{name}: nothing was permuted"
        );
    }
}

/// The check can fail, and says where: a spec missing one axis (Resnet-20's first running
/// mean) and a spec moving one axis too many (the running variance of a later VGG-16 block as
/// wide as the first, moved with the first block's units instead of its own) are each caught
/// at the group they break, with that axis named.
#[test]
fn a_broken_spec_is_caught_and_its_axis_named() {
    let case = |name: &str| cases().into_iter().find(|c| c.0 == name).expect("case");
    let (_, config, channels, size) = case("resnet20");
    let net = varied_network(&config, channels, size, 3);
    let mut spec = PermutationSpec::of(&net, &config.architecture().symmetry).expect("spec");
    let (g, missing) = spec
        .groups
        .iter()
        .enumerate()
        .find_map(|(g, group)| {
            let a = group
                .axes
                .iter()
                .position(|a| a.path.ends_with("running_mean"))?;
            Some((g, a))
        })
        .expect("a running mean");
    let removed = spec.groups[g].axes.remove(missing);
    let check = check_of(&config, channels, size, &net, &spec).expect("check");
    assert!(!check.passed());
    let broken = check.first_broken().expect("a broken group");
    assert_eq!(broken.group, spec.groups[g].name);
    assert_eq!(broken.diagnosis, Some(Diagnosis::Missing(removed)));

    let (_, config, channels, size) = case("vgg16");
    let net = varied_network(&config, channels, size, 3);
    let mut spec = PermutationSpec::of(&net, &config.architecture().symmetry).expect("spec");
    let size0 = spec.groups[0].size;
    let owner = (1..spec.groups.len())
        .rfind(|&g| spec.groups[g].size == size0)
        .expect("another group as wide as the first");
    let extra = spec.groups[owner]
        .axes
        .iter()
        .find(|a| a.path.ends_with("running_var"))
        .cloned()
        .expect("a running variance");
    spec.groups[owner].axes.retain(|a| *a != extra);
    spec.groups[0].axes.push(extra.clone());
    let check = check_of(&config, channels, size, &net, &spec).expect("check");
    let broken = check
        .first_broken()
        .unwrap_or_else(|| panic!("{check:?} {spec:?}"));
    assert_eq!(broken.group, spec.groups[0].name);
    assert_eq!(broken.diagnosis, Some(Diagnosis::Extra(extra)));
}
