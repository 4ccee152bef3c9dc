use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Result, write_atomic};

/// One evaluation point of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    pub step: u64,
    pub epoch: f64,
    pub lr: f64,
    /// Mean training loss over the sampled steps since the previous record.
    pub train_loss: Option<f32>,
    pub test_loss: f32,
    pub test_accuracy: f32,
    /// Loss and accuracy on the training set (or the configured fixed subset of it).
    pub train_eval_loss: Option<f32>,
    pub train_eval_accuracy: Option<f32>,
    /// Seconds of training since the run started (across resumptions).
    pub elapsed_seconds: f64,
}

/// The `metrics.json` of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub records: Vec<MetricRecord>,
}

impl Metrics {
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.records)
            .map_err(|e| crate::Error::Config(e.to_string()))?;
        write_atomic(path, &json)
    }

    pub fn load(path: &Path) -> Result<Metrics> {
        Ok(Metrics {
            records: crate::checkpoint::read_json(path)?,
        })
    }

    pub fn last(&self) -> Option<&MetricRecord> {
        self.records.last()
    }
}
