use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Device;
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
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut loss_sum = 0.0f64;
    let mut correct = 0i64;
    let mut examples = 0usize;
    for batch in eval_batches(source, transform, batch_size, limit) {
        let batch = batch?;
        let n = batch.len();
        let (images, labels) = batch.into_tensors(device);
        let logits = model.forward(images);
        let loss: f32 = loss_fn
            .forward(logits.clone(), labels.clone())
            .into_scalar::<f32>();
        let hits: i64 = logits
            .argmax(1)
            .flatten::<1>(0, 1)
            .equal(labels)
            .int()
            .sum()
            .into_scalar::<i64>();
        loss_sum += loss as f64 * n as f64;
        correct += hits;
        examples += n;
    }
    let n = examples.max(1) as f64;
    Ok(EvalResult {
        loss: (loss_sum / n) as f32,
        accuracy: (correct as f64 / n) as f32,
        examples,
    })
}
