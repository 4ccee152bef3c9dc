//! Adam and SGD whose update is one fused pass on the flex backend.
//!
//! burn's `Adam` and `Sgd` build each update from a dozen whole-tensor operations, each a
//! single-threaded pass that allocates. These optimisers compute the same update, operation for
//! operation in the same `f32` order (so the numbers are bit-identical to burn's), in one
//! parallel pass that updates parameter and moments in place, with one difference: a moment or
//! velocity that comes out subnormal (below `f32::MIN_POSITIVE`, about 1.2e-38) is stored as
//! zero. The state of a weight whose gradient stays zero (a dead unit, a pruned weight) decays
//! by beta or momentum every step and would otherwise pass through the subnormal range for
//! about 150 steps, where many CPUs take a slow microcode path for every operation: on an
//! Intel Xeon, 4x the time of a Lenet step (BENCHMARKS.md). The update such a state makes is
//! below 1e-30 either way. On other backends they compute it with burn's tensor operations.
//! Adam's state record is burn's `AdamState`; SGD's record uses the names of burn's `SgdState`
//! (`momentum.velocity`), so checkpoints written with burn's optimisers load into these and
//! back.

use burn::optim::{
    AdamConfig, AdamState, LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink,
    StateSource, join_path,
};
use burn::tensor::{Device, Tensor};

/// Adam (Kingma & Ba) with PyTorch's conventions: L2 weight decay added to the gradient,
/// bias-corrected moments, epsilon added to the corrected second moment's root.
#[derive(Clone, Debug)]
pub struct Adam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

impl Adam {
    /// PyTorch's defaults: betas (0.9, 0.999), epsilon 1e-8.
    pub fn new(weight_decay: f32) -> Self {
        Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay,
        }
    }

    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// burn's own Adam with the same settings (the reference the fused step is checked against).
    pub fn burn_reference(&self) -> burn::optim::Adam {
        AdamConfig::new()
            .with_beta_1(self.beta_1)
            .with_beta_2(self.beta_2)
            .with_epsilon(self.epsilon)
            .with_weight_decay(
                (self.weight_decay > 0.0)
                    .then(|| burn::optim::decay::WeightDecayConfig::new(self.weight_decay)),
            )
            .build()
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        #[cfg(feature = "flex")]
        if fused::applies(&tensor, &grad) {
            let time = state.as_ref().map_or(0, |s| s.momentum.time) + 1;
            let (m, v) = state
                .map(|s| (s.momentum.moment_1, s.momentum.moment_2))
                .unzip();
            let (tensor, m, v) = fused::adam(self, lr, time, tensor, grad, m, v);
            let momentum = burn::optim::AdaptiveMomentumState::new(time, m, v);
            let state = AdamState::new(momentum);
            return (tensor, Some(state));
        }
        // Elsewhere burn's own Adam, whose state this optimiser shares.
        Optimizer::step(&self.burn_reference(), lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(mut state: AdamState<D>, device: &Device) -> AdamState<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

/// Stochastic gradient descent with PyTorch's conventions: L2 weight decay added to the
/// gradient, momentum without dampening (`v = μ·v + g`, the first step `v = g`), optional
/// Nesterov.
#[derive(Clone, Debug)]
pub struct Sgd {
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Sgd {
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

/// SGD's state: the momentum buffer, when there is momentum.
#[derive(Clone)]
pub struct SgdState<const D: usize> {
    pub velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for SgdState<D> {
    // Read only to write a checkpoint (this crate sits below `nets::readback`).
    #[allow(clippy::disallowed_methods)]
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(
                &join_path(prefix, "momentum"),
                "velocity",
                velocity.to_data(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let velocity = src
            .take_tensor(&join_path(prefix, "momentum"), "velocity")
            .map(|data| Tensor::from_data(data, device));
        Some(SgdState { velocity })
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let velocity = state.and_then(|s| s.velocity);
        #[cfg(feature = "flex")]
        if fused::applies(&tensor, &grad) {
            let (tensor, velocity) = fused::sgd(self, lr, tensor, grad, velocity);
            return (tensor, Some(SgdState { velocity }));
        }
        let grad = if self.weight_decay > 0.0 {
            tensor.clone().mul_scalar(self.weight_decay).add(grad)
        } else {
            grad
        };
        let (update, velocity) = if self.momentum > 0.0 {
            let velocity = match velocity {
                Some(v) => grad.clone().add(v.mul_scalar(self.momentum)),
                None => grad.clone(),
            };
            let update = if self.nesterov {
                velocity.clone().mul_scalar(self.momentum).add(grad)
            } else {
                velocity.clone()
            };
            (update, Some(velocity))
        } else {
            (grad, None)
        };
        (tensor - update.mul_scalar(lr), Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState {
            velocity: state.velocity.map(|v| v.to_device(device)),
        }
    }
}

#[cfg(feature = "flex")]
mod fused {
    //! The flex path: parameter, moments and gradient as slices, one parallel pass.

    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::tensor::{DType, Tensor, TensorData};
    use rayon::prelude::*;

    use super::{Adam, Sgd};

    /// Elements per parallel task; small tensors run on the calling thread.
    const CHUNK: usize = 1 << 14;

    /// The bias corrections folded into one factor on the first moment and one epsilon, as burn
    /// and PyTorch compute them: `m·(√bc2 / bc1) / (√v + ε·√bc2)`.
    fn adam_factors(adam: &Adam, time: usize) -> (f32, f32) {
        let time = time as i32;
        let bc2_sqrt = (1.0 - adam.beta_2.powi(time)).sqrt();
        (
            bc2_sqrt / (1.0 - adam.beta_1.powi(time)),
            adam.epsilon * bc2_sqrt,
        )
    }

    pub(super) fn applies<const D: usize>(tensor: &Tensor<D>, grad: &Tensor<D>) -> bool {
        crate::is_flex(&tensor.device())
            && crate::is_flex(&grad.device())
            && tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
    }

    fn primitive<const D: usize>(t: Tensor<D>) -> FlexTensor {
        match t.try_into_primitive::<Flex>() {
            Ok(p) => p,
            Err(e) => unreachable!("checked to be a flex tensor: {e:?}"),
        }
    }

    /// A uniquely owned, contiguous f32 buffer with the tensor's values.
    fn owned<const D: usize>(t: Tensor<D>) -> (Vec<f32>, Vec<usize>) {
        let dims = t.dims().to_vec();
        let values = primitive(t)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        (values, dims)
    }

    fn wrap<const D: usize>(values: Vec<f32>, dims: &[usize]) -> Tensor<D> {
        Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(
            values,
            dims.to_vec(),
        )))
    }

    pub(super) fn adam<const D: usize>(
        adam: &Adam,
        lr: f64,
        time: usize,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        m: Option<Tensor<D>>,
        v: Option<Tensor<D>>,
    ) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
        let (mut p, dims) = owned(tensor);
        let (g, _) = owned(grad);
        let mut m = m.map_or_else(|| vec![0.0; p.len()], |m| owned(m).0);
        let mut v = v.map_or_else(|| vec![0.0; p.len()], |v| owned(v).0);
        let (factor, epsilon) = adam_factors(adam, time);
        let (b1, b2) = (adam.beta_1, adam.beta_2);
        let k = AdamScalars {
            b1,
            b2,
            c1: 1.0 - b1,
            c2: 1.0 - b2,
            wd: adam.weight_decay,
            factor,
            epsilon,
            lr: lr as f32,
        };
        let step = match (time == 1, k.wd > 0.0) {
            (true, true) => adam_kernel::<true, true>,
            (true, false) => adam_kernel::<true, false>,
            (false, true) => adam_kernel::<false, true>,
            (false, false) => adam_kernel::<false, false>,
        };
        let step = |p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| step(&k, p, m, v, g);
        par_zip4(&mut p, &mut m, &mut v, &g, step);
        (wrap(p, &dims), wrap(m, &dims), wrap(v, &dims))
    }

    pub(super) fn sgd<const D: usize>(
        sgd: &Sgd,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Option<Tensor<D>>) {
        let (mut p, dims) = owned(tensor);
        let (g, _) = owned(grad);
        let k = SgdScalars {
            mu: sgd.momentum,
            wd: sgd.weight_decay,
            lr: lr as f32,
        };
        if k.mu > 0.0 {
            let first = velocity.is_none();
            let mut vel = velocity.map_or_else(|| vec![0.0; p.len()], |v| owned(v).0);
            let step = match (first, k.wd > 0.0, sgd.nesterov) {
                (true, true, true) => momentum_kernel::<true, true, true>,
                (true, true, false) => momentum_kernel::<true, true, false>,
                (true, false, true) => momentum_kernel::<true, false, true>,
                (true, false, false) => momentum_kernel::<true, false, false>,
                (false, true, true) => momentum_kernel::<false, true, true>,
                (false, true, false) => momentum_kernel::<false, true, false>,
                (false, false, true) => momentum_kernel::<false, false, true>,
                (false, false, false) => momentum_kernel::<false, false, false>,
            };
            let step =
                |p: &mut [f32], vel: &mut [f32], _: &mut [f32], g: &[f32]| step(&k, p, vel, g);
            par_zip4(&mut p, &mut vel, &mut [], &g, step);
            (wrap(p, &dims), Some(wrap(vel, &dims)))
        } else {
            let step = |p: &mut [f32], _: &mut [f32], _: &mut [f32], g: &[f32]| {
                let g = &g[..p.len()];
                for i in 0..p.len() {
                    let g = if k.wd > 0.0 { p[i] * k.wd + g[i] } else { g[i] };
                    p[i] -= g * k.lr;
                }
            };
            par_zip4(&mut p, &mut [], &mut [], &g, step);
            (wrap(p, &dims), None)
        }
    }

    struct AdamScalars {
        b1: f32,
        b2: f32,
        c1: f32,
        c2: f32,
        wd: f32,
        factor: f32,
        epsilon: f32,
        lr: f32,
    }

    /// One Adam update of a chunk, in burn's operation order; the branches are constants so the
    /// loop vectorises.
    fn adam_kernel<const FIRST: bool, const DECAY: bool>(
        k: &AdamScalars,
        p: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        g: &[f32],
    ) {
        let n = p.len();
        let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
        for i in 0..n {
            let g = if DECAY { p[i] * k.wd + g[i] } else { g[i] };
            let (mi, vi) = if FIRST {
                (g * k.c1, (g * g) * k.c2)
            } else {
                (m[i] * k.b1 + g * k.c1, v[i] * k.b2 + (g * g) * k.c2)
            };
            let (mi, vi) = (flush_subnormal(mi), flush_subnormal(vi));
            m[i] = mi;
            v[i] = vi;
            p[i] -= (mi * k.factor / (vi.sqrt() + k.epsilon)) * k.lr;
        }
    }

    /// `x`, or zero where `x` is subnormal: see the module docs. A compare and a select, so the
    /// loops still vectorise.
    #[inline(always)]
    fn flush_subnormal(x: f32) -> f32 {
        if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
    }

    struct SgdScalars {
        mu: f32,
        wd: f32,
        lr: f32,
    }

    /// One SGD-with-momentum update of a chunk, in burn's operation order.
    fn momentum_kernel<const FIRST: bool, const DECAY: bool, const NESTEROV: bool>(
        k: &SgdScalars,
        p: &mut [f32],
        vel: &mut [f32],
        g: &[f32],
    ) {
        let n = p.len();
        let (vel, g) = (&mut vel[..n], &g[..n]);
        for i in 0..n {
            let g = if DECAY { p[i] * k.wd + g[i] } else { g[i] };
            let v = flush_subnormal(if FIRST { g } else { g + vel[i] * k.mu });
            vel[i] = v;
            let update = if NESTEROV { v * k.mu + g } else { v };
            p[i] -= update * k.lr;
        }
    }

    fn chunks(buf: &mut [f32]) -> Vec<&mut [f32]> {
        if buf.is_empty() {
            Vec::new()
        } else {
            buf.chunks_mut(CHUNK).collect()
        }
    }

    /// Runs `f` over matching chunks of up to three mutable buffers (empty ones stay empty) and
    /// the gradient, in parallel for large tensors.
    fn par_zip4<F>(a: &mut [f32], b: &mut [f32], c: &mut [f32], g: &[f32], f: F)
    where
        F: Fn(&mut [f32], &mut [f32], &mut [f32], &[f32]) + Sync,
    {
        let n = a.len().div_ceil(CHUNK).max(1);
        let mut a = chunks(a);
        let mut b = chunks(b);
        let mut c = chunks(c);
        b.resize_with(n, Default::default);
        c.resize_with(n, Default::default);
        a.par_iter_mut()
            .zip(b.par_iter_mut())
            .zip(c.par_iter_mut())
            .zip(g.par_chunks(CHUNK))
            .for_each(|(((a, b), c), g)| f(a, b, c, g));
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::{Adam, Sgd, fused};

    #[allow(clippy::disallowed_methods)] // this crate sits below `nets::readback`
    fn values(t: Tensor<1>) -> Vec<f32> {
        t.to_data().try_into_vec::<f32>().expect("f32 tensor")
    }

    /// A weight whose gradient is zero: its first moment and its velocity decay by 0.9 a step,
    /// and where they would become subnormal they are zero. A normal state is kept exactly.
    #[test]
    fn a_state_that_decays_below_the_normal_range_is_stored_as_zero() {
        let device = Device::flex();
        let t = |v: &[f32]| Tensor::<1>::from_floats(v, &device);
        let small = f32::MIN_POSITIVE * 1.05; // times 0.9: subnormal
        let (state, grad) = ([small, 1.0e-3], [0.0, 0.0]);

        let (_, m, v) = fused::adam(
            &Adam::new(0.0),
            1e-3,
            2,
            t(&[0.5, 0.5]),
            t(&grad),
            Some(t(&state)),
            Some(t(&[f32::MIN_POSITIVE * 1.0005, 1.0e-6])), // times 0.999: subnormal
        );
        assert_eq!(values(m), vec![0.0, 1.0e-3_f32 * 0.9]);
        let v = values(v);
        assert_eq!(v[0], 0.0, "a second moment decaying below the normal range");
        assert!(v[1].is_normal());

        let sgd = Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
            nesterov: false,
        };
        let (_, velocity) = fused::sgd(&sgd, 0.1, t(&[0.5, 0.5]), t(&grad), Some(t(&state)));
        assert_eq!(
            values(velocity.expect("velocity")),
            vec![0.0, 1.0e-3_f32 * 0.9]
        );
    }
}
