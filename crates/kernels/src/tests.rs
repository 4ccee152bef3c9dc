//! The kernels against burn's own operations: values, gradients, optimiser updates.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};

use crate::optim::{Adam, Sgd};

fn device() -> Device {
    Device::flex().autodiff()
}

fn random<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(dims, Distribution::Normal(0.0, 1.0), device)
}

#[allow(clippy::disallowed_methods)] // this crate sits below `nets::readback`
fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().try_into_vec::<f32>().expect("f32 tensor")
}

/// `max |a - b| / max |b|`: the error relative to the tensor's scale.
fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

struct ConvRun {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Option<Vec<f32>>,
}

/// Forward, then the gradients of `sum(y * r)` with respect to input, weight and bias.
fn run_conv(
    conv: impl Fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
    inputs: &(Tensor<4>, Tensor<4>, Option<Tensor<1>>, Tensor<4>),
    options: &ConvOptions<2>,
) -> ConvRun {
    let (x, w, b, r) = inputs;
    let x = x.clone().require_grad();
    let w = w.clone().require_grad();
    let b = b.clone().map(Tensor::require_grad);
    let y = conv(x.clone(), w.clone(), b.clone(), options.clone());
    let grads = (y.clone() * r.clone()).sum().backward();
    let grad = |t: &Tensor<4>| values(&t.grad(&grads).expect("gradient"));
    ConvRun {
        y: values(&y),
        dx: grad(&x),
        dw: grad(&w),
        db: b.map(|b| values(&b.grad(&grads).expect("bias gradient"))),
    }
}

#[test]
fn convolution_values_and_gradients_match_burns_on_many_shapes() {
    let device = device();
    device.seed(7);
    // (batch, in, out, size, kernel, stride, padding (top, left, bottom, right), bias)
    let cases = [
        (1, 3, 5, 9, 3, 1, [1, 1, 1, 1], true),
        (2, 5, 7, 8, 3, 2, [1, 1, 1, 1], false),
        (3, 7, 4, 6, 1, 1, [0, 0, 0, 0], true),
        (2, 6, 9, 7, 1, 2, [0, 0, 0, 0], false),
        (4, 3, 3, 5, 3, 1, [0, 0, 0, 0], true),
        (1, 4, 6, 10, 5, 2, [2, 1, 0, 2], true),
        (128, 3, 5, 8, 3, 1, [1, 1, 1, 1], false),
        (128, 4, 3, 6, 3, 2, [1, 1, 1, 1], true),
        // Small images are lowered in groups (43 images of 2x3 to a product, the last group 21).
        (64, 6, 5, 2, 3, 1, [1, 1, 1, 1], true),
        (20, 5, 4, 3, 1, 1, [0, 0, 0, 0], false),
        // The direct 3x3 path (`conv::sliding`): odd widths, channel counts off its blocks,
        // one-pixel images, and its widest layer.
        (3, 13, 7, 5, 3, 1, [1, 1, 1, 1], true),
        (2, 1, 1, 1, 3, 1, [1, 1, 1, 1], true),
        (5, 16, 16, 12, 3, 1, [1, 1, 1, 1], false),
        (17, 4, 9, 4, 3, 1, [1, 1, 1, 1], false),
    ];
    for (batch, cin, cout, size, k, stride, [top, left, bottom, right], bias) in cases {
        let options =
            ConvOptions::new_with_padding([stride; 2], [(top, bottom), (left, right)], [1, 1], 1);
        let x = random([batch, cin, size, size + 1], &device);
        let w = random([cout, cin, k, k], &device);
        let b = bias.then(|| random([cout], &device));
        let oh = (size + top + bottom - k) / stride + 1;
        let ow = (size + 1 + left + right - k) / stride + 1;
        let r = random([batch, cout, oh, ow], &device);
        let inputs = (x, w, b, r);
        let ours = run_conv(crate::conv2d, &inputs, &options);
        let burns = run_conv(burn::tensor::module::conv2d, &inputs, &options);
        let case = format!(
            "batch {batch}, {cin}->{cout}, {size}x{}, k {k}, s {stride}",
            size + 1
        );
        for (name, a, b) in [
            ("y", &ours.y, &burns.y),
            ("dx", &ours.dx, &burns.dx),
            ("dw", &ours.dw, &burns.dw),
        ] {
            let err = relative_error(a, b);
            assert!(err < 1e-5, "{case}: {name} differs by {err:e} of its scale");
        }
        if let (Some(a), Some(b)) = (&ours.db, &burns.db) {
            let err = relative_error(a, b);
            assert!(err < 1e-5, "{case}: db differs by {err:e} of its scale");
        }
    }
}

#[test]
fn convolution_results_do_not_depend_on_the_thread_count() {
    let device = device();
    device.seed(3);
    let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let inputs = (
        random([37, 6, 9, 9], &device),
        random([10, 6, 3, 3], &device),
        Some(random([10], &device)),
        random([37, 10, 5, 5], &device),
    );
    // The lowered path (stride 2) and the direct one (3x3, stride 1, padding 1, few channels).
    let direct = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let direct_inputs = (
        random([37, 6, 9, 9], &device),
        random([10, 6, 3, 3], &device),
        Some(random([10], &device)),
        random([37, 10, 9, 9], &device),
    );
    let run_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            [
                run_conv(crate::conv2d, &inputs, &options),
                run_conv(crate::conv2d, &direct_inputs, &direct),
            ]
        })
    };
    let one = run_on(1);
    for threads in [2, 3] {
        for (one, many) in one.iter().zip(run_on(threads)) {
            assert_eq!(one.y, many.y, "{threads} threads: output");
            assert_eq!(one.dx, many.dx, "{threads} threads: input gradient");
            assert_eq!(one.dw, many.dw, "{threads} threads: weight gradient");
            assert_eq!(one.db, many.db, "{threads} threads: bias gradient");
        }
    }
}

#[test]
fn other_configurations_fall_back_to_burns_convolution() {
    // Dilation and groups are not covered by the kernel: the result is burn's, exactly.
    let device = device();
    device.seed(5);
    let x = random([2, 4, 9, 9], &device);
    for (options, w) in [
        (
            ConvOptions::new([1, 1], [2, 2], [2, 2], 1),
            random([3, 4, 3, 3], &device),
        ),
        (
            ConvOptions::new([1, 1], [1, 1], [1, 1], 2),
            random([6, 2, 3, 3], &device),
        ),
    ] {
        let ours = crate::conv2d(x.clone(), w.clone(), None, options.clone());
        let burns = burn::tensor::module::conv2d(x.clone(), w, None, options);
        assert_eq!(values(&ours), values(&burns));
    }
}

/// A two-layer model, its gradients on a fixed batch scaled per step.
#[derive(Module, Debug)]
struct TwoLayers {
    a: Linear,
    b: Linear,
}

fn two_layers() -> (TwoLayers, Tensor<2>) {
    let device = device();
    device.seed(11);
    let model = TwoLayers {
        a: LinearConfig::new(40, 300).init(&device),
        b: LinearConfig::new(300, 7).init(&device),
    };
    (model, random([16, 40], &device))
}

/// Optimiser step number `step` on a loss that changes with the step.
fn take_step(
    model: TwoLayers,
    x: &Tensor<2>,
    optim: &mut ModuleOptimizer,
    step: usize,
) -> TwoLayers {
    let y = model
        .b
        .forward(burn::tensor::activation::relu(model.a.forward(x.clone())));
    let loss = (y.clone() * y).mean().mul_scalar(1.0 + step as f32);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(0.01 * (1.0 + step as f64), model, grads)
}

/// `steps` optimiser steps from `start`. The two sides of a comparison start from one model:
/// `two_layers` seeds burn's process-wide RNG, which tests on other threads reseed and draw from
/// at any time, so two calls may not give the same weights.
fn train_steps(
    (mut model, x): (TwoLayers, Tensor<2>),
    mut optim: ModuleOptimizer,
    steps: usize,
) -> TwoLayers {
    for step in 0..steps {
        model = take_step(model, &x, &mut optim, step);
    }
    model
}

fn weights(model: &TwoLayers) -> Vec<Vec<f32>> {
    let w = |p: &Param<Tensor<2>>| values(&p.val());
    vec![
        w(&model.a.weight),
        w(&model.b.weight),
        values(&model.a.bias.as_ref().expect("bias").val()),
    ]
}

#[test]
fn fused_adam_is_burns_adam_bit_for_bit() {
    for weight_decay in [0.0, 5e-4] {
        let ours = Adam::new(weight_decay);
        let reference = ModuleOptimizer::from(ours.burn_reference());
        let start = two_layers();
        let a = train_steps(start.clone(), ours.init(), 6);
        let b = train_steps(start, reference, 6);
        assert_eq!(weights(&a), weights(&b), "weight decay {weight_decay}");
    }
}

#[test]
fn fused_sgd_is_burns_sgd_bit_for_bit() {
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    for (momentum, weight_decay, nesterov) in
        [(0.9, 1e-4, false), (0.9, 0.0, true), (0.0, 1e-4, false)]
    {
        let ours = Sgd {
            momentum,
            weight_decay,
            nesterov,
        };
        let reference = SgdConfig::new()
            .with_momentum((momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(momentum as f64)
                    .with_dampening(0.0)
                    .with_nesterov(nesterov)
            }))
            .with_weight_decay((weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay)))
            .init();
        let start = two_layers();
        let a = train_steps(start.clone(), ours.init(), 6);
        let b = train_steps(start, reference, 6);
        assert_eq!(
            weights(&a),
            weights(&b),
            "momentum {momentum}, wd {weight_decay}, nesterov {nesterov}"
        );
    }
}

#[test]
fn optimiser_state_written_by_burns_optimisers_loads_into_the_fused_ones() {
    use burn::optim::momentum::MomentumConfig;
    let burn_sgd = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .init();
    let sgd = Sgd {
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    }
    .init();
    let adam = Adam::new(0.0);
    for (reference, ours) in [
        (burn_sgd, sgd),
        (ModuleOptimizer::from(adam.burn_reference()), adam.init()),
    ] {
        // Two steps with burn's optimiser; the third with burn's, or with ours after a round
        // trip of burn's record: the same weights only if every moment was restored.
        let (mut model, x) = two_layers();
        let mut reference = reference;
        for step in 0..2 {
            model = take_step(model, &x, &mut reference, step);
        }
        let bytes = reference.into_bytes().expect("record");
        let mut restored = ours.from_bytes(bytes).expect("burn's record loads");
        let expected = take_step(model.clone(), &x, &mut reference, 2);
        let actual = take_step(model, &x, &mut restored, 2);
        assert_eq!(weights(&actual), weights(&expected));
    }
}

#[test]
fn the_fast_path_is_taken_on_flex_and_only_there() {
    assert!(crate::is_flex(&Device::flex()));
    assert!(crate::is_flex(&Device::flex().autodiff()));
    assert!(!crate::is_flex(&Device::default().autodiff()) || crate::is_flex(&Device::default()));
}

#[test]
fn batch_norm_matches_burns_module_in_training_and_pytorchs_running_statistics() {
    use crate::BatchNormForward;
    use burn::nn::BatchNormConfig;
    let device = device();
    device.seed(13);
    for (batch, channels, size) in [(4, 3, 5), (128, 16, 8), (1, 7, 3)] {
        let ours = BatchNormConfig::new(channels).init(&device);
        let theirs = BatchNormConfig::new(channels).init(&device);
        // The same parameters in both (fresh copies: clones share running statistics).
        let gamma = random([channels], &device);
        let beta = random([channels], &device);
        let set = |bn: burn::nn::BatchNorm| {
            let mut bn = bn;
            bn.gamma = Param::from_tensor(gamma.clone());
            bn.beta = Param::from_tensor(beta.clone());
            bn
        };
        let (ours, theirs) = (set(ours), set(theirs));
        let x = random([batch, channels, size, size], &device)
            .mul_scalar(3.0)
            .add_scalar(1.5);
        let r = random([batch, channels, size, size], &device);
        let case = format!("{batch}x{channels}x{size}x{size}");
        let mut outputs = Vec::new();
        for step in 0..2 {
            let run = |y: Tensor<4>, x: &Tensor<4>, bn: &burn::nn::BatchNorm| {
                let grads = (y.clone() * r.clone()).sum().backward();
                let g = |t: &Tensor<1>| values(&t.grad(&grads).expect("gradient"));
                (
                    values(&y),
                    values(&x.grad(&grads).expect("dx")),
                    g(&bn.gamma.val()),
                    g(&bn.beta.val()),
                )
            };
            let xa = (x.clone() + step as f32).require_grad();
            let xb = (x.clone() + step as f32).require_grad();
            let a = run(ours.forward_fast(xa.clone()), &xa, &ours);
            let b = run(theirs.forward(xb.clone()), &xb, &theirs);
            for (name, a, b) in [
                ("y", &a.0, &b.0),
                ("dx", &a.1, &b.1),
                ("dgamma", &a.2, &b.2),
                ("dbeta", &a.3, &b.3),
            ] {
                let err = relative_error(a, b);
                assert!(
                    err < 1e-5,
                    "{case} step {step}: {name} differs by {err:e} of its scale"
                );
            }
            outputs.push(a.0);
        }
        // Running statistics as PyTorch keeps them (momentum 0.1, the *unbiased* batch
        // variance), by hand: the second batch is the first plus one, so both have the same
        // variance and means one apart.
        let synced = ours.clone().valid();
        let (mean_a, var_a) = (
            values(&synced.running_mean.value()),
            values(&synced.running_var.value()),
        );
        let xs = values(&x);
        let per_channel = batch * size * size;
        let (mut mean_b, mut var_b) = (vec![], vec![]);
        for c in 0..channels {
            let v: Vec<f64> = (0..batch)
                .flat_map(|n| {
                    let start = (n * channels + c) * size * size;
                    xs[start..start + size * size].iter().map(|&v| f64::from(v))
                })
                .collect();
            let m = v.iter().sum::<f64>() / per_channel as f64;
            let unbiased = if per_channel > 1 {
                v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (per_channel - 1) as f64
            } else {
                0.0
            };
            mean_b.push((0.9 * (0.1 * m) + 0.1 * (m + 1.0)) as f32);
            var_b.push((0.9 * (0.9 + 0.1 * unbiased) + 0.1 * unbiased) as f32);
        }
        assert!(
            relative_error(&mean_a, &mean_b) < 1e-5,
            "{case}: running mean"
        );
        assert!(
            relative_error(&var_a, &var_b) < 1e-5,
            "{case}: running variance {var_a:?} vs {var_b:?}"
        );
        // Inference: the running statistics, one fused pass against the formula.
        let x = x.inner();
        let a = values(&synced.forward_fast(x.clone()));
        let (g, bt) = (values(&gamma), values(&beta));
        let b: Vec<f32> = values(&x)
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / (size * size)) % channels;
                let norm =
                    (f64::from(v) - f64::from(mean_a[c])) / (f64::from(var_a[c]) + 1e-5).sqrt();
                (norm * f64::from(g[c]) + f64::from(bt[c])) as f32
            })
            .collect();
        assert!(relative_error(&a, &b) < 1e-5, "{case}: inference");
    }
}

/// Batch norm with ReLU in its kernels (`forward_relu_fast`) is `relu(forward_fast(x))` bit for
/// bit: output, every gradient and the running statistics, over two training steps, with
/// inputs of both signs (so the ReLU cuts about half) and in inference.
#[test]
fn batch_norm_with_relu_inside_is_the_two_ops_bit_for_bit() {
    use crate::BatchNormForward;
    use burn::nn::BatchNormConfig;
    use burn::tensor::activation::relu;
    let device = device();
    device.seed(17);
    for (batch, channels, size) in [(4, 3, 5), (16, 8, 8), (1, 5, 3)] {
        let gamma = random([channels], &device);
        let beta = random([channels], &device);
        let make = || {
            let mut bn = BatchNormConfig::new(channels).init(&device);
            bn.gamma = Param::from_tensor(gamma.clone());
            bn.beta = Param::from_tensor(beta.clone());
            bn
        };
        let (fused, apart) = (make(), make());
        let x = random([batch, channels, size, size], &device);
        let r = random([batch, channels, size, size], &device);
        let case = format!("{batch}x{channels}x{size}x{size}");
        for step in 0..2 {
            let run = |y: Tensor<4>, x: &Tensor<4>, bn: &burn::nn::BatchNorm| {
                let grads = (y.clone() * r.clone()).sum().backward();
                let g = |t: &Tensor<1>| values(&t.grad(&grads).expect("gradient"));
                [
                    values(&y),
                    values(&x.grad(&grads).expect("dx")),
                    g(&bn.gamma.val()),
                    g(&bn.beta.val()),
                ]
            };
            let xa = (x.clone() + step as f32 * 0.25).require_grad();
            let xb = (x.clone() + step as f32 * 0.25).require_grad();
            let a = run(fused.forward_relu_fast(xa.clone()), &xa, &fused);
            let b = run(relu(apart.forward_fast(xb.clone())), &xb, &apart);
            for (name, a, b) in ["y", "dx", "dgamma", "dbeta"]
                .iter()
                .zip(&a)
                .zip(&b)
                .map(|((n, a), b)| (n, a, b))
            {
                assert_eq!(bits(a), bits(b), "{case} step {step}: {name}");
            }
            let zeros = a[0].iter().filter(|&&v| v == 0.0).count();
            assert!(
                zeros > 0 && zeros < a[0].len(),
                "{case}: the ReLU cuts some, not all"
            );
        }
        let (fused, apart) = (fused.valid(), apart.valid());
        for (a, b) in [
            (&fused.running_mean, &apart.running_mean),
            (&fused.running_var, &apart.running_var),
        ] {
            assert_eq!(bits(&values(&a.value())), bits(&values(&b.value())));
        }
        let x = x.inner();
        assert_eq!(
            bits(&values(&fused.forward_relu_fast(x.clone()))),
            bits(&values(&relu(apart.forward_fast(x))))
        );
    }
}

/// The bits of every value: `-0.0` and `0.0` differ, NaNs compare.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
