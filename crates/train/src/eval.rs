use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::tensor::{Device, Int, Tensor};
use data::{ImageSource, Transform, eval_batches};
use nets::Classifier;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Mean cross-entropy and accuracy over a set of examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub loss: f32,
    pub accuracy: f32,
    pub examples: usize,
}

impl EvalResult {
    /// Error rate in percent (what the paper plots).
    pub fn error_percent(&self) -> f32 {
        100.0 * (1.0 - self.accuracy)
    }
}

/// Evaluates `model` (pass `model.valid()`: no autodiff, BN in inference mode) on the first
/// `limit` examples of `source` (all when `None`), without augmentation.
pub fn evaluate<M: Classifier>(
    model: &M,
    source: &ImageSource,
    transform: &Transform,
    batch_size: usize,
    limit: Option<usize>,
    device: &Device,
) -> Result<EvalResult> {
    EvalSet::new(source, transform, batch_size, limit, device, 0)?.evaluate(model)
}

/// The examples one evaluation sees, ready to evaluate many networks: an interpolation sweep
/// evaluates 30 networks on the same images. Where the decoded, normalised images fit
/// `cache_bytes`, they are built once and kept as tensors on the device; otherwise (ImageNet)
/// they are built batch by batch for every evaluation.
pub struct EvalSet {
    source: ImageSource,
    transform: Transform,
    batch_size: usize,
    limit: Option<usize>,
    device: Device,
    cached: Option<Vec<(Tensor<4>, Tensor<1, Int>)>>,
}

impl EvalSet {
    pub fn new(
        source: &ImageSource,
        transform: &Transform,
        batch_size: usize,
        limit: Option<usize>,
        device: &Device,
        cache_bytes: usize,
    ) -> Result<EvalSet> {
        let examples = limit.map_or(source.len(), |l| l.min(source.len()));
        let side = transform.size;
        let bytes = examples * transform.channels() * side * side * std::mem::size_of::<f32>();
        let cached = if bytes <= cache_bytes {
            Some(
                eval_batches(source, transform, batch_size, limit)
                    .map(|b| b.map(|b| b.into_tensors(device)))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            )
        } else {
            None
        };
        Ok(EvalSet {
            source: source.clone(),
            transform: transform.clone(),
            batch_size,
            limit,
            device: device.clone(),
            cached,
        })
    }

    /// Whether the images are kept as tensors.
    pub fn is_cached(&self) -> bool {
        self.cached.is_some()
    }

    /// Mean loss and accuracy of `model` (pass `model.valid()`) on this set.
    pub fn evaluate<M: Classifier>(&self, model: &M) -> Result<EvalResult> {
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        let mut total = Tally::default();
        match &self.cached {
            Some(batches) => {
                for (images, labels) in batches {
                    total.add(model, images.clone(), labels.clone(), &loss_fn);
                }
            }
            None => {
                let batches =
                    eval_batches(&self.source, &self.transform, self.batch_size, self.limit);
                for batch in batches {
                    let (images, labels) = batch?.into_tensors(&self.device);
                    total.add(model, images, labels, &loss_fn);
                }
            }
        }
        Ok(total.result())
    }
}

/// Sums of one evaluation pass, kept on the device: the pass reads them once, at its end.
#[derive(Default)]
struct Tally {
    /// Per batch: the loss times the batch's size, and the number of correct predictions.
    sums: Option<Tensor<1>>,
    examples: usize,
}

impl Tally {
    fn add<M: Classifier>(
        &mut self,
        model: &M,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        loss_fn: &CrossEntropyLoss,
    ) {
        let n = labels.dims()[0];
        let logits = model.forward(images);
        let loss = loss_fn
            .forward(logits.clone(), labels.clone())
            .mul_scalar(n as f32);
        let hits = logits
            .argmax(1)
            .flatten::<1>(0, 1)
            .equal(labels)
            .int()
            .sum()
            .float();
        let batch = Tensor::cat(vec![loss, hits], 0);
        self.sums = Some(match self.sums.take() {
            Some(sums) => sums + batch,
            None => batch,
        });
        self.examples += n;
    }

    fn result(self) -> EvalResult {
        let sums = self.sums.map(nets::readback::values).unwrap_or_default();
        let n = self.examples.max(1) as f64;
        let sum = |i: usize| sums.get(i).copied().map_or(0.0, f64::from);
        EvalResult {
            loss: (sum(0) / n) as f32,
            accuracy: (sum(1) / n) as f32,
            examples: self.examples,
        }
    }
}
