//! The convolution as a burn backend extension: the flex implementation runs [`crate::conv`],
//! the autodiff implementation records a node whose backward calls the flex gradients.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor, TensorData};

use crate::conv::{self, ConvShape};
use crate::norm::{self, NormShape};
use crate::out;

#[backend_extension(Flex, Autodiff)]
pub trait ConvKernels: Backend {
    /// `conv2d(x, weight)`, dilation 1, one group.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// `conv2d(x, weight) + bias`, dilation 1, one group.
    fn fast_conv2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// The gradients of input, weight and bias that are asked for.
    #[allow(clippy::type_complexity)]
    fn fast_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        wanted: [bool; 3],
    ) -> (
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
    ) {
        let _ = (x, weight, grad, options, wanted);
        unreachable!("the convolution's gradients are computed by the inner backend")
    }
}

/// Whether the fast kernel covers this call (else burn's own `conv2d` runs).
pub(crate) fn applies(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    let (x_dims, weight_dims) = (x.dims(), weight.dims());
    crate::is_flex(&x.device())
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && options.dilation == [1, 1]
        && options.groups == 1
        && x_dims[1] == weight_dims[1]
        && ConvShape::new(x_dims, weight_dims, options.stride, options.padding).is_valid()
}

pub(crate) fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(bias) => Dispatch::fast_conv2d_biased(x, weight, bias.into_dispatch(), options),
        None => Dispatch::fast_conv2d(x, weight, options),
    })
}

fn shape_of(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> ConvShape {
    ConvShape::new(
        x.shape().dims(),
        weight.shape().dims(),
        options.stride,
        options.padding,
    )
}

/// The values of a float tensor in row-major order (borrowed when already laid out so).
fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(values) => Cow::Borrowed(values),
        None => Cow::Owned(
            t.to_contiguous()
                .into_data()
                .try_into_vec::<f32>()
                .unwrap_or_default(),
        ),
    }
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn flex_forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    let shape = shape_of(&x, &weight, &options);
    let bias = bias.as_ref().map(values);
    let mut y = out::uninit(shape.batch * shape.out_channels * shape.pixels());
    conv::forward_into(
        &shape,
        &values(&x),
        &values(&weight),
        bias.as_deref(),
        &mut y,
    );
    // SAFETY: `forward_into` writes every element of its output.
    #[allow(unsafe_code)]
    let y = unsafe { out::assume_written(y) };
    let dims = vec![
        shape.batch,
        shape.out_channels,
        shape.out_height(),
        shape.out_width(),
    ];
    tensor(y, dims)
}

impl ConvKernels for Flex {
    fn fast_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        flex_forward(x, weight, None, options)
    }

    fn fast_conv2d_biased(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        flex_forward(x, weight, Some(bias), options)
    }

    fn fast_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        options: ConvOptions<2>,
        [want_x, want_weight, want_bias]: [bool; 3],
    ) -> (Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>) {
        let shape = shape_of(&x, &weight, &options);
        let dy = values(&grad);
        let dx = want_x.then(|| {
            let mut dx = out::uninit(x.shape().num_elements());
            conv::backward_input_into(&shape, &values(&weight), &dy, &mut dx);
            // SAFETY: `backward_input_into` writes every element of its output.
            #[allow(unsafe_code)]
            let dx = unsafe { out::assume_written(dx) };
            tensor(dx, x.shape().dims::<4>().to_vec())
        });
        let dw = want_weight.then(|| {
            let mut dw = vec![0.0; weight.shape().num_elements()];
            conv::backward_weight(&shape, &values(&x), &dy, &mut dw);
            tensor(dw, weight.shape().dims::<4>().to_vec())
        });
        let db = want_bias.then(|| {
            let mut db = vec![0.0; shape.out_channels];
            conv::backward_bias(&shape, &dy, &mut db);
            tensor(db, vec![shape.out_channels])
        });
        (dx, dw, db)
    }
}

#[derive(Debug)]
struct ConvWithBias;
#[derive(Debug)]
struct ConvNoBias;

type ConvState = (NodeId, NodeId, ConvOptions<2>);

/// The gradients a convolution node's parents ask for (`wanted`: input, weight, bias), from the
/// checkpointed input and weight.
fn conv_gradients<B: ConvKernels>(
    (x, w, options): ConvState,
    grad: FloatTensor<B>,
    ck: &mut Checkpointer,
    wanted: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let x = ck.retrieve_node_output::<FloatTensor<B>>(x);
    let w = ck.retrieve_node_output::<FloatTensor<B>>(w);
    let (dx, dw, db) = B::fast_conv2d_backward(x, w, grad, options, wanted);
    [dx, dw, db]
}

impl<B: ConvKernels> Backward<B, 3> for ConvWithBias {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let gradients = conv_gradients::<B>(ops.state, grad, ck, wanted);
        for (node, g) in ops.parents.into_iter().zip(gradients) {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: ConvKernels> Backward<B, 2> for ConvNoBias {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [want_x, want_w] = ops.parents.each_ref().map(Option::is_some);
        let gradients = conv_gradients::<B>(ops.state, grad, ck, [want_x, want_w, false]);
        for (node, g) in ops.parents.into_iter().zip(gradients) {
            if let (Some(node), Some(g)) = (node, g) {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: ConvKernels, C: CheckpointStrategy> ConvKernels for Autodiff<B, C> {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match ConvNoBias
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    options.clone(),
                );
                let y = B::fast_conv2d(x.into_primitive(), weight.into_primitive(), options);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }

    fn fast_conv2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        match ConvWithBias.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    options.clone(),
                );
                let (x, w, b) = (
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish(state, B::fast_conv2d_biased(x, w, b, options))
            }
            OpsKind::UnTracked(prep) => {
                let (x, w, b) = (
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish(B::fast_conv2d_biased(x, w, b, options))
            }
        }
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait NormKernels: Backend {
    /// Training-mode batch normalisation over dim 1: the output, the batch mean and the batch's
    /// biased variance.
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// [`NormKernels::fast_batch_norm_train`] with ReLU applied to the output in the same
    /// pass.
    fn fast_batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients of input, gamma and beta of batch norm followed by ReLU, given the
    /// ReLU's output `y`.
    #[allow(clippy::too_many_arguments)]
    fn fast_batch_norm_relu_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        y: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let _ = (x, gamma, mean, var, epsilon, y, grad);
        unreachable!("the batch norm's gradients are computed by the inner backend")
    }

    /// Inference-mode batch normalisation as one pass: `y = x · scale_c + shift_c`.
    fn fast_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let _ = (x, scale, shift);
        unreachable!("only called on the flex backend without autodiff")
    }

    /// The gradients of input, gamma and beta.
    fn fast_batch_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let _ = (x, gamma, mean, var, epsilon, grad);
        unreachable!("the batch norm's gradients are computed by the inner backend")
    }
}

/// Whether the fast batch norm covers this call (else burn's own module runs).
pub(crate) fn batch_norm_applies(x: &Tensor<4>) -> bool {
    crate::is_flex(&x.device()) && x.dtype() == DType::F32
}

/// Training-mode batch normalisation: (output, batch mean, biased batch variance).
pub(crate) fn batch_norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = Dispatch::fast_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// Training-mode batch normalisation followed by ReLU in one pass: (output, batch mean, biased
/// batch variance).
pub(crate) fn batch_norm_relu_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = Dispatch::fast_batch_norm_relu_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// `x · scale_c + shift_c` over dim 1 (no autodiff).
pub(crate) fn channel_affine(x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>) -> Tensor<4> {
    Tensor::from_dispatch(Dispatch::fast_channel_affine(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
    ))
}

fn norm_shape(x: &FlexTensor) -> NormShape {
    let dims = x.shape().dims::<4>();
    NormShape {
        batch: dims[0],
        channels: dims[1],
        spatial: dims[2] * dims[3],
    }
}

/// The signature of [`norm::forward_train`] and [`norm::forward_train_relu`].
type NormKernel =
    fn(&NormShape, &[f32], &[f32], &[f32], f64, &mut [MaybeUninit<f32>]) -> (Vec<f32>, Vec<f32>);

/// A batch norm kernel's results as tensors: `full` shaped like `x` (NCHW), and two
/// per-channel vectors.
fn like_and_per_channel(
    full: Vec<f32>,
    x: &FlexTensor,
    a: Vec<f32>,
    b: Vec<f32>,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let c = vec![a.len()];
    (
        tensor(full, x.shape().dims::<4>().to_vec()),
        tensor(a, c.clone()),
        tensor(b, c),
    )
}

/// Training-mode batch normalisation on flex with `kernel`: (output, batch mean, biased batch
/// variance).
fn flex_batch_norm_train(
    kernel: NormKernel,
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = norm_shape(&x);
    let mut y = out::uninit(x.shape().num_elements());
    let (mean, var) = kernel(
        &shape,
        &values(&x),
        &values(&gamma),
        &values(&beta),
        epsilon,
        &mut y,
    );
    // SAFETY: both kernels write every element of their output.
    #[allow(unsafe_code)]
    let y = unsafe { out::assume_written(y) };
    like_and_per_channel(y, &x, mean, var)
}

impl NormKernels for Flex {
    fn fast_channel_affine(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        let shape = norm_shape(&x);
        let affine: Vec<(f32, f32)> = values(&scale)
            .iter()
            .copied()
            .zip(values(&shift).iter().copied())
            .collect();
        let mut y = out::uninit(x.shape().num_elements());
        norm::apply(&shape, &values(&x), &affine, &mut y);
        // SAFETY: `apply` writes every element of its output.
        #[allow(unsafe_code)]
        let y = unsafe { out::assume_written(y) };
        tensor(y, x.shape().dims::<4>().to_vec())
    }

    fn fast_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        flex_batch_norm_train(norm::forward_train, x, gamma, beta, epsilon)
    }

    fn fast_batch_norm_relu_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        flex_batch_norm_train(norm::forward_train_relu, x, gamma, beta, epsilon)
    }

    fn fast_batch_norm_relu_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        epsilon: f64,
        y: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = norm_shape(&x);
        let mut dx = out::uninit(x.shape().num_elements());
        let (dgamma, dbeta) = norm::backward_relu(
            &shape,
            &values(&x),
            &values(&gamma),
            &values(&mean),
            &values(&var),
            epsilon,
            &values(&y),
            &values(&grad),
            &mut dx,
        );
        // SAFETY: `backward_relu` writes every element of its input gradient.
        #[allow(unsafe_code)]
        let dx = unsafe { out::assume_written(dx) };
        like_and_per_channel(dx, &x, dgamma, dbeta)
    }

    fn fast_batch_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        epsilon: f64,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = norm_shape(&x);
        let mut dx = out::uninit(x.shape().num_elements());
        let (dgamma, dbeta) = norm::backward(
            &shape,
            &values(&x),
            &values(&gamma),
            &values(&mean),
            &values(&var),
            epsilon,
            &values(&grad),
            &mut dx,
        );
        // SAFETY: `backward` writes every element of its input gradient.
        #[allow(unsafe_code)]
        let dx = unsafe { out::assume_written(dx) };
        like_and_per_channel(dx, &x, dgamma, dbeta)
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl<B: NormKernels> Backward<B, 3> for BatchNormBackward {
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f64,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, var, epsilon) = ops.state;
        let (dx, dgamma, dbeta) = B::fast_batch_norm_backward(x, gamma, mean, var, epsilon, grad);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct BatchNormReluBackward;

impl<B: NormKernels> Backward<B, 3> for BatchNormReluBackward {
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f64,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, var, epsilon, y) = ops.state;
        let (dx, dgamma, dbeta) =
            B::fast_batch_norm_relu_backward(x, gamma, mean, var, epsilon, y, grad);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: NormKernels, C: CheckpointStrategy> NormKernels for Autodiff<B, C> {
    fn fast_batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let prep = BatchNormReluBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (y, mean, var) = B::fast_batch_norm_relu_train(x.clone(), gamma.clone(), beta, epsilon);
        let y = match prep {
            OpsKind::Tracked(prep) => {
                prep.finish((x, gamma, mean.clone(), var.clone(), epsilon, y.clone()), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, Self::from_inner(mean), Self::from_inner(var))
    }

    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let prep = BatchNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (y, mean, var) = B::fast_batch_norm_train(x.clone(), gamma.clone(), beta, epsilon);
        let y = match prep {
            OpsKind::Tracked(prep) => {
                prep.finish((x, gamma, mean.clone(), var.clone(), epsilon), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, Self::from_inner(mean), Self::from_inner(var))
    }
}
