//! # Fast CPU kernels for burn's flex backend
//!
//! burn 0.22.1's CPU backend computes a convolution's gradients through generic fallbacks (the
//! input gradient as a transposed convolution, the weight gradient as a forward convolution
//! with the output gradient as its kernel) and runs its optimisers as a dozen single-threaded
//! tensor passes per parameter. This crate replaces both on the flex backend, through burn's
//! public backend-extension API and nothing else:
//!
//! * [`conv2d`] / [`Conv2dForward::forward_fast`]: convolution whose forward and backward are
//!   this crate's im2col + gemm kernels ([`conv`]) on flex (with and without autodiff), and
//!   burn's own `conv2d` on every other backend (wgpu, cuda, ndarray), dtype or configuration
//!   (dilation, groups) it does not cover. One model code path; the kernel is picked by device.
//! * [`optim`]: Adam and SGD (momentum, weight decay, Nesterov) as burn `Optimizer`s whose step is
//!   one parallel in-place pass over parameter, gradient and moments on flex, and burn's tensor
//!   arithmetic elsewhere. Their state records are those of burn's own Adam and SGD.
//!
//! Results do not depend on the number of threads: work is split at boundaries that depend on
//! the shapes alone, and every sum is taken in a fixed order.

#[cfg(feature = "flex")]
pub mod conv;
#[cfg(feature = "flex")]
mod extension;
pub mod flops;
#[cfg(feature = "flex")]
pub mod matmul;
#[cfg(feature = "flex")]
pub mod norm;
pub mod optim;
#[cfg(feature = "flex")]
mod out;

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

/// The version of this crate's floating-point summation orders: bumped by every change that
/// moves any bit of a kernel's result for the same inputs. Runs whose training was split
/// between two versions are not the network an uninterrupted run computes, so checkpoints
/// record it and a run is resumed only by kernels of the version that started it.
///
/// 1: im2col + gemm convolutions, f64 partial sums in batch norm (#29). 2: the direct 3x3
/// convolution of narrow layers ([`conv::sliding`]). 3: the fused optimisers store subnormal
/// moments and velocities as zero ([`optim`]).
pub const NUMERICS: u32 = 3;

/// Whether `device` is burn's flex CPU backend (directly or under autodiff), where this crate's
/// kernels run, and they are not switched off (`REWIND_KERNELS=burn` runs burn's own ops
/// everywhere: for comparisons and for hunting numerical differences).
pub fn is_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        if !enabled() {
            return false;
        }
        use burn::backend::DispatchDevice;
        match device.as_dispatch() {
            DispatchDevice::Flex(_) => true,
            DispatchDevice::Autodiff(inner) => matches!(&**inner, DispatchDevice::Flex(_)),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

/// False when the environment says `REWIND_KERNELS=burn` (read once per process).
pub fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("REWIND_KERNELS").map_or(true, |v| v != "burn"))
}

/// 2-D convolution, `x`: `[N, C, H, W]`, `weight`: `[O, C, kh, kw]`, `bias`: `[O]`. Computes what
/// `burn::tensor::module::conv2d` computes, with this crate's kernels where they apply.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let (x_dims, w_dims) = (x.dims(), weight.dims());
    let out = |i: usize| {
        let padded = x_dims[i + 2] + options.padding[i].0 + options.padding[i].1;
        let reach = options.dilation[i] * (w_dims[i + 2].max(1) - 1) + 1;
        padded.saturating_sub(reach) / options.stride[i].max(1) + 1
    };
    flops::record_conv(x_dims, w_dims, [out(0), out(1)]);
    #[cfg(feature = "flex")]
    if extension::applies(&x, &weight, &options) {
        return extension::conv2d(x, weight, bias, options);
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// The forward pass of burn's [`Conv2d`] module through [`conv2d`]: same parameters, same
/// padding rules, same result.
pub trait Conv2dForward {
    fn forward_fast(&self, x: Tensor<4>) -> Tensor<4>;
}

impl Conv2dForward for Conv2d {
    fn forward_fast(&self, x: Tensor<4>) -> Tensor<4> {
        let (rows, cols) = match self.padding {
            PaddingConfig2d::Valid => ((0, 0), (0, 0)),
            PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
            // Sizes that depend on the input: burn's module computes them.
            PaddingConfig2d::Same => return self.forward(x),
        };
        let options =
            ConvOptions::new_with_padding(self.stride, [rows, cols], self.dilation, self.groups);
        conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
        )
    }
}

/// The forward pass of burn's [`BatchNorm`] module on 4-D input, with PyTorch's (and so the
/// paper's) running statistics: in training (autodiff device, training flag on) the batch's
/// mean and variance normalise it, and the running variance is updated with the *unbiased*
/// batch variance (`n / (n - 1)` times the biased one, `n` values per channel), where burn's
/// module uses the biased one. On flex the training statistics come from this crate's kernel
/// and inference is one fused pass; elsewhere burn's `batch_norm_train` and module forward.
pub trait BatchNormForward {
    fn forward_fast(&self, x: Tensor<4>) -> Tensor<4>;

    /// `relu(self.forward_fast(x))`, bit for bit, forward and backward: on flex in training
    /// one pass each way (the ReLU and its gradient inside the batch norm's kernels), elsewhere
    /// the two ops.
    fn forward_relu_fast(&self, x: Tensor<4>) -> Tensor<4>;
}

impl BatchNormForward for BatchNorm {
    fn forward_fast(&self, x: Tensor<4>) -> Tensor<4> {
        forward(self, x, false)
    }

    fn forward_relu_fast(&self, x: Tensor<4>) -> Tensor<4> {
        forward(self, x, true)
    }
}

fn forward(bn: &BatchNorm, x: Tensor<4>, then_relu: bool) -> Tensor<4> {
    let device = x.device();
    let relu = |y: Tensor<4>| {
        if then_relu {
            burn::tensor::activation::relu(y)
        } else {
            y
        }
    };
    if !(device.is_autodiff() && bn.training.is_enabled()) {
        #[cfg(feature = "flex")]
        if extension::batch_norm_applies(&x) {
            let mean = bn.running_mean.value().to_device(&device);
            let var = bn.running_var.value().to_device(&device);
            let scale = bn.gamma.val().div(var.add_scalar(bn.epsilon).sqrt());
            let shift = bn.beta.val().sub(mean.mul(scale.clone()));
            return relu(extension::channel_affine(x, scale, shift));
        }
        return relu(bn.forward(x));
    }
    let [batch, _, height, width] = x.dims();
    let (y, mean, var) = batch_norm_train(bn, x, then_relu);
    let n = (batch * height * width) as f64;
    let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    let keep = 1.0 - bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    let running_mean = running_mean
        .mul_scalar(keep)
        .add(mean.detach().mul_scalar(bn.momentum));
    let running_var = running_var
        .mul_scalar(keep)
        .add(var.detach().mul_scalar(bn.momentum * unbiased));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
    y
}

/// Training-mode batch normalisation of `x` with `bn`'s scale and shift, then ReLU if asked:
/// the output and the batch's mean and biased variance (this crate's kernel on flex, burn's
/// ops elsewhere).
fn batch_norm_train(
    bn: &BatchNorm,
    x: Tensor<4>,
    then_relu: bool,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    #[cfg(feature = "flex")]
    if extension::batch_norm_applies(&x) {
        let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
        return if then_relu {
            extension::batch_norm_relu_train(x, gamma, beta, bn.epsilon)
        } else {
            extension::batch_norm_train(x, gamma, beta, bn.epsilon)
        };
    }
    let r = burn::tensor::module::batch_norm_train(x, bn.gamma.val(), bn.beta.val(), bn.epsilon);
    let output = if then_relu {
        burn::tensor::activation::relu(r.output)
    } else {
        r.output
    };
    (output, r.mean, r.variance)
}

#[cfg(all(test, feature = "flex"))]
mod tests;
