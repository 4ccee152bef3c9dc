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
#[cfg(feature = "flex")]
pub mod matmul;
pub mod optim;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

/// Whether `device` is burn's flex CPU backend (directly or under autodiff), where this crate's
/// kernels run.
pub fn is_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
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

/// 2-D convolution, `x`: `[N, C, H, W]`, `weight`: `[O, C, kh, kw]`, `bias`: `[O]`. Computes what
/// `burn::tensor::module::conv2d` computes, with this crate's kernels where they apply.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
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
        conv2d(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()), options)
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests;
