use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use data::{ImageSource, SeededBatches, Transform};
use nets::Classifier;
use nets::params::{TensorInfo, map_tensors, tensor_infos, visit_tensors};
use results::{BnPolicy, CurvePoint, ErrorCurve, L2Distance};

use crate::{Error, Result};

/// `alpha * a + (1 - alpha) * b` for every float tensor, parameters and BN buffers alike,
/// matched by path. The result is a new inference-mode module (built from `a.valid()`, so it
/// shares no BN buffers with `a`). `alpha` 1 and 0 give exact copies of `a` and `b`.
pub fn interpolate<M: Module>(a: &M, b: &M, alpha: f32) -> Result<M> {
    let (a, b) = (a.valid(), b.valid());
    check_same_structure(&a, &b)?;
    if alpha == 1.0 {
        return Ok(a);
    }
    if alpha == 0.0 {
        return Ok(b);
    }
    let mut others: HashMap<String, Tensor<1>> = HashMap::new();
    visit_tensors(&b, |info, t| {
        others.insert(info.path.clone(), t);
    });
    Ok(map_tensors(a, |info, t| match others.remove(&info.path) {
        Some(other) => t * alpha + other * (1.0 - alpha),
        None => t,
    }))
}

fn check_same_structure<M: Module>(a: &M, b: &M) -> Result<()> {
    let (ia, ib) = (tensor_infos(a), tensor_infos(b));
    if ia.len() != ib.len() {
        return Err(Error::Mismatch(format!(
            "{} tensors vs {}",
            ia.len(),
            ib.len()
        )));
    }
    for (x, y) in ia.iter().zip(&ib) {
        if x.path != y.path || x.shape != y.shape {
            return Err(Error::Mismatch(format!(
                "{} {:?} vs {} {:?}",
                x.path, x.shape, y.path, y.shape
            )));
        }
    }
    Ok(())
}

/// The momentum of every BN layer of the networks here (burn's default and PyTorch's, checked
/// by the parity tests): a running statistic moves by this fraction of the batch's.
pub const BN_MOMENTUM: f64 = 0.1;

/// Re-estimates the BN running statistics of `model` as the plain average of their batch
/// statistics over the first `batches` training batches of `batches_source`, without
/// changing any weight (REPAIR-style; PyTorch's `momentum=None`). Returns the inference-mode
/// model.
///
/// burn's BatchNorm only keeps a running average with [`BN_MOMENTUM`]; each forward in train
/// mode moves it to `(1 - m) r + m x`, so the batch's statistic is recovered as
/// `x = (r' - (1 - m) r) / m` and averaged here. (Reading the running average instead would
/// keep 0.9^N of its starting value after N batches: 12% after 20.)
pub fn reestimate_bn<M: Classifier>(
    model: &M,
    batches_source: &SeededBatches,
    batches: usize,
    device: &Device,
) -> Result<M> {
    if batches == 0 {
        return Err(Error::Invalid(
            "re-estimating BN statistics needs at least one batch".into(),
        ));
    }
    let train_device = device.clone().autodiff();
    // Only the running statistics come to the host after each batch, not the weights.
    let buffers = |m: &M| -> HashMap<String, Vec<f64>> {
        let mut out = HashMap::new();
        visit_tensors(m, |info, t| {
            if info.role.is_buffer() {
                let values = nets::params::to_vec(t).into_iter().map(f64::from).collect();
                out.insert(info.path.clone(), values);
            }
        });
        out
    };
    // No parameter requires a gradient: BN still normalises with the batch's statistics and
    // updates its running ones (training mode on an autodiff device), but no autodiff graph
    // is recorded, which forwards that are never differentiated would otherwise keep alive.
    let training = model.valid().fork(&train_device).train().no_grad();
    let mut before = buffers(&training);
    let mut sums: HashMap<String, Vec<f64>> = before
        .iter()
        .map(|(p, v)| (p.clone(), vec![0.0; v.len()]))
        .collect();
    for step in 0..batches as u64 {
        let (images, _) = batches_source.batch(step)?.into_tensors(&train_device);
        let _ = training.forward(images);
        let after = buffers(&training);
        for (path, sum) in sums.iter_mut() {
            let (r0, r1) = (&before[path], &after[path]);
            for ((s, a), b) in sum.iter_mut().zip(r0).zip(r1) {
                *s += (b - (1.0 - BN_MOMENTUM) * a) / BN_MOMENTUM;
            }
        }
        before = after;
    }
    Ok(map_tensors(training.valid(), |info, t| {
        match sums.get(&info.path) {
            Some(sum) => {
                let mean: Vec<f32> = sum.iter().map(|s| (s / batches as f64) as f32).collect();
                nets::params::from_vec(mean, &t.device())
            }
            None => t,
        }
    }))
}

/// What [`error_curve`] evaluates on.
pub struct CurveData<'a> {
    pub test: &'a ImageSource,
    pub train: &'a ImageSource,
    pub transform: &'a Transform,
    /// Evaluate train error on the first N training examples (`Some(0)`: not at all).
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub batch_size: usize,
    /// Training batches for [`BnPolicy::Reestimate`].
    pub bn_batches: Option<&'a SeededBatches>,
}

/// Most bytes of images an error curve keeps on the device per evaluation set (the MNIST and
/// CIFAR-10 test and train sets fit; ImageNet's are streamed).
const CURVE_CACHE_BYTES: usize = 1 << 30;

/// Test (and train) error and loss of `alpha * a + (1 - alpha) * b` at `points` evenly spaced alphas
/// in [0, 1], ends included, alpha ascending (alpha 0 is `b`, alpha 1 is `a`). `finish` is
/// applied to every interpolated network before evaluation (e.g. re-applying a sparse mask).
pub fn error_curve<M: Classifier>(
    a: &M,
    b: &M,
    points: usize,
    bn_policy: BnPolicy,
    data: &CurveData<'_>,
    device: &Device,
    finish: impl Fn(M) -> M,
) -> Result<ErrorCurve> {
    if points < 2 {
        return Err(Error::Invalid(
            "an error curve needs at least 2 points".into(),
        ));
    }
    // Every point is evaluated on the same images: build them once where they fit.
    let test_set = train::EvalSet::new(
        data.test,
        data.transform,
        data.batch_size,
        data.test_subset,
        device,
        CURVE_CACHE_BYTES,
    )?;
    let train_set = match data.train_subset {
        Some(0) => None,
        limit => Some(train::EvalSet::new(
            data.train,
            data.transform,
            data.batch_size,
            limit,
            device,
            CURVE_CACHE_BYTES,
        )?),
    };
    let mut out = Vec::with_capacity(points);
    for i in 0..points {
        let alpha = i as f32 / (points - 1) as f32;
        let mut model = finish(interpolate(a, b, alpha)?);
        if let BnPolicy::Reestimate { batches } = bn_policy {
            let source = data
                .bn_batches
                .ok_or_else(|| Error::Invalid("BN re-estimation needs training batches".into()))?;
            model = finish(reestimate_bn(&model, source, batches, device)?);
        }
        let test = test_set.evaluate(&model)?;
        let train = match &train_set {
            Some(set) => Some(set.evaluate(&model)?),
            None => None,
        };
        out.push(CurvePoint {
            alpha,
            test_error: test.error_percent(),
            train_error: train.as_ref().map(|t| t.error_percent()),
            test_loss: Some(test.loss),
            train_loss: train.map(|t| t.loss),
        });
    }
    Ok(ErrorCurve {
        points: out,
        bn_policy,
    })
}

/// L2 distances between `a` and `b` (matched by path).
pub fn l2_distance<M: Module>(
    a: &M,
    b: &M,
    prunable: impl Fn(&TensorInfo) -> bool,
) -> Result<L2Distance> {
    check_same_structure(a, b)?;
    let mut others: HashMap<String, Tensor<1>> = HashMap::new();
    visit_tensors(b, |info, t| {
        others.insert(info.path.clone(), t);
    });
    // Per tensor: its squared distance (on the device, all read at once) and whether it is
    // prunable.
    let mut squares = Vec::new();
    let mut is_prunable = Vec::new();
    visit_tensors(a, |info, t| {
        if info.role.is_buffer() {
            return;
        }
        if let Some(other) = others.get(&info.path) {
            let d = t - other.clone();
            squares.push(d.clone().mul(d).sum());
            is_prunable.push(prunable(info));
        }
    });
    let squares = if squares.is_empty() {
        vec![]
    } else {
        nets::readback::values(Tensor::cat(squares, 0))
    };
    let (mut pruned_sum, mut all_sum) = (0.0f64, 0.0f64);
    for (sq, pruned) in squares.into_iter().zip(is_prunable) {
        all_sum += f64::from(sq);
        if pruned {
            pruned_sum += f64::from(sq);
        }
    }
    Ok(L2Distance {
        prunable: pruned_sum.sqrt(),
        all_parameters: all_sum.sqrt(),
    })
}
