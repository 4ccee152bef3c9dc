//! Path-based access to every float tensor of a module.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// The kind of layer that owns a tensor, from the module's container type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    Linear,
    Conv2d,
    BatchNorm,
    Other,
}

/// What a tensor is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorRole {
    Weight(LayerKind),
    Bias(LayerKind),
    /// BN `gamma`.
    BnScale,
    /// BN `beta`.
    BnShift,
    BnRunningMean,
    BnRunningVar,
    Other,
}

impl TensorRole {
    /// Conv and linear weights: what the paper prunes.
    pub fn is_layer_weight(self) -> bool {
        matches!(
            self,
            TensorRole::Weight(LayerKind::Linear | LayerKind::Conv2d)
        )
    }

    /// BN running statistics: buffers, not trained parameters.
    pub fn is_buffer(self) -> bool {
        matches!(self, TensorRole::BnRunningMean | TensorRole::BnRunningVar)
    }
}

/// One tensor's identity inside a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Dotted path, e.g. `hidden.0.weight`.
    pub path: String,
    pub role: TensorRole,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of inputs feeding one output unit of a conv or linear weight (burn stores linear
    /// weights as `[in, out]` and conv weights as `[out, in / groups, kh, kw]`).
    pub fn fan_in(&self) -> Option<usize> {
        match self.role {
            TensorRole::Weight(LayerKind::Linear) => self.shape.first().copied(),
            TensorRole::Weight(LayerKind::Conv2d) => Some(self.shape[1..].iter().product()),
            _ => None,
        }
    }

    /// Path of the layer that owns this tensor (`hidden.0` for `hidden.0.weight`).
    pub fn layer(&self) -> &str {
        layer_of(&self.path)
    }
}

/// Path of the layer that owns the tensor at `tensor_path` (`hidden.0` for `hidden.0.weight`;
/// empty for a path without a layer).
pub fn layer_of(tensor_path: &str) -> &str {
    tensor_path.rsplit_once('.').map_or("", |(layer, _)| layer)
}

#[derive(Default)]
struct PathStack {
    names: Vec<String>,
    containers: Vec<String>,
}

impl PathStack {
    fn enter(&mut self, name: &str, container: &str) {
        self.names.push(name.to_string());
        self.containers.push(container.to_string());
    }

    fn exit(&mut self) {
        self.names.pop();
        self.containers.pop();
    }

    fn info(&self, shape: Vec<usize>) -> TensorInfo {
        let field = self.names.last().map(String::as_str).unwrap_or("");
        let owner = match self.containers.last().map(String::as_str) {
            Some("Struct:Linear") => LayerKind::Linear,
            Some("Struct:Conv2d") => LayerKind::Conv2d,
            Some("Struct:BatchNorm") => LayerKind::BatchNorm,
            _ => LayerKind::Other,
        };
        let role = match (owner, field) {
            (LayerKind::BatchNorm, "gamma") => TensorRole::BnScale,
            (LayerKind::BatchNorm, "beta") => TensorRole::BnShift,
            (LayerKind::BatchNorm, "running_mean") => TensorRole::BnRunningMean,
            (LayerKind::BatchNorm, "running_var") => TensorRole::BnRunningVar,
            (kind, "weight") if kind != LayerKind::BatchNorm => TensorRole::Weight(kind),
            (kind, "bias") if kind != LayerKind::BatchNorm => TensorRole::Bias(kind),
            _ => TensorRole::Other,
        };
        TensorInfo {
            path: self.names.join("."),
            role,
            shape,
        }
    }
}

struct Visitor<F> {
    stack: PathStack,
    f: F,
}

impl<F: FnMut(&TensorInfo, Tensor<1>)> ModuleVisitor for Visitor<F> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let info = self.stack.info(shape);
        let n = info.numel();
        (self.f)(&info, tensor.reshape([n]));
    }
}

struct Mapper<F> {
    stack: PathStack,
    f: F,
}

impl<F: FnMut(&TensorInfo, Tensor<1>) -> Tensor<1>> ModuleMapper for Mapper<F> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let info = self.stack.info(param.lazy_shape().dims::<D>().to_vec());
        let f = &mut self.f;
        param.map(|tensor| {
            let require_grad = tensor.is_require_grad();
            let dims: [usize; D] = tensor.dims();
            let n = info.numel();
            let out = f(&info, tensor.detach().reshape([n]))
                .detach()
                .reshape(dims);
            if require_grad {
                out.require_grad()
            } else {
                out
            }
        })
    }
}

/// Folds pending BN running-statistic updates into their values. burn's `RunningState`
/// keeps the last forward's update aside until the next forward (or `valid()`/`train()`)
/// reads it, and its `visit`/`map` see the value without it: one update behind, and a mapped
/// value would later be overwritten by the pending update.
fn sync_running_states<M: Module>(module: &M) {
    let _ = module.valid();
}

/// Calls `f` with every float tensor of `module` (flattened), in traversal order, BN running
/// statistics included and up to date.
pub fn visit_tensors<M: Module>(module: &M, f: impl FnMut(&TensorInfo, Tensor<1>)) {
    sync_running_states(module);
    module.visit(&mut Visitor {
        stack: PathStack::default(),
        f,
    });
}

/// Replaces every float tensor of `module` by `f(info, flattened tensor)` (same number of
/// elements), keeping parameter ids and gradient requirements. BN running statistics are
/// included; note that they are shared with clones of the module (burn's `RunningState`).
pub fn map_tensors<M: Module>(module: M, f: impl FnMut(&TensorInfo, Tensor<1>) -> Tensor<1>) -> M {
    sync_running_states(&module);
    module.map(&mut Mapper {
        stack: PathStack::default(),
        f,
    })
}

/// The identity of every tensor, in traversal order.
pub fn tensor_infos<M: Module>(module: &M) -> Vec<TensorInfo> {
    let mut out = Vec::new();
    visit_tensors(module, |info, _| out.push(info.clone()));
    out
}

/// Every tensor's values copied to the host, with its identity.
pub fn tensor_values<M: Module>(module: &M) -> Vec<(TensorInfo, Vec<f32>)> {
    let mut out = Vec::new();
    visit_tensors(module, |info, t| out.push((info.clone(), to_vec(t))));
    out
}

/// SHA-256 (64 hex digits) of every tensor's path and `f32` values (little-endian), in
/// traversal order, BN running statistics included: equal for two modules exactly when they
/// hold the same values under the same names. A checkpoint's file bytes cannot tell this
/// (burn writes each process's parameter ids into them).
pub fn values_sha256<M: Module>(module: &M) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    visit_tensors(module, |info, t| {
        hasher.update(info.path.as_bytes());
        hasher.update([0u8]);
        for v in to_vec(t) {
            hasher.update(v.to_le_bytes());
        }
    });
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A 1-D tensor's values on the host as `f32`.
pub fn to_vec(tensor: Tensor<1>) -> Vec<f32> {
    crate::readback::values(tensor)
}

/// A 1-D tensor from host values on `device`.
pub fn from_vec(values: Vec<f32>, device: &burn::tensor::Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Number of trained parameters (weights, biases, BN scale and shift; no running statistics).
pub fn trainable_params<M: Module>(module: &M) -> usize {
    tensor_infos(module)
        .iter()
        .filter(|i| !i.role.is_buffer())
        .map(TensorInfo::numel)
        .sum()
}

/// True when no float tensor of `module` holds a NaN or an infinity (one read from the device).
pub fn all_finite<M: Module>(module: &M) -> bool {
    let mut non_finite: Option<Tensor<1>> = None;
    visit_tensors(module, |_, t| {
        let bad = t.clone().is_nan().int().sum() + t.is_inf().int().sum();
        let bad = bad.float();
        non_finite = Some(match non_finite.take() {
            Some(sum) => sum + bad,
            None => bad,
        });
    });
    non_finite.is_none_or(|n| crate::readback::scalar(n) == 0.0)
}
