use serde::{Deserialize, Serialize};

use crate::Steps;

/// A learning-rate schedule that is a pure function of the step: `base`, times a linear
/// warmup factor `min(1, step / warmup)`, times `drop_factor` for every milestone reached,
/// or, with `final_lr`, decaying linearly from `base` at step 0 to `final_lr` at the end of
/// training (Inception-v3's recipe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub base: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Steps>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<Steps>,
    #[serde(default = "default_drop")]
    pub drop_factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_lr: Option<f64>,
}

fn default_drop() -> f64 {
    0.1
}

impl LrSchedule {
    pub fn constant(base: f64) -> Self {
        LrSchedule {
            base,
            warmup: None,
            milestones: vec![],
            drop_factor: default_drop(),
            final_lr: None,
        }
    }

    /// The rate used for the update of step `step` (0-based) of a run of `total` steps.
    pub fn lr_at(&self, step: u64, total: u64, iterations_per_epoch: u64) -> f64 {
        let mut lr = match self.final_lr {
            Some(end) if total > 0 => {
                let t = (step as f64 / total as f64).min(1.0);
                self.base + (end - self.base) * t
            }
            _ => self.base,
        };
        if let Some(w) = self.warmup {
            let w = w.resolve(iterations_per_epoch);
            if w > 0 {
                lr *= (step as f64 / w as f64).min(1.0);
            }
        }
        for m in &self.milestones {
            if step >= m.resolve(iterations_per_epoch) {
                lr *= self.drop_factor;
            }
        }
        lr
    }

    /// The same schedule with every step position multiplied by `factor` (used to run a
    /// recipe at a shorter length with the same shape).
    pub fn scaled(&self, factor: f64, iterations_per_epoch: u64) -> Self {
        let scale = |s: Steps| {
            Steps::iterations((s.resolve(iterations_per_epoch) as f64 * factor).round() as u64)
        };
        LrSchedule {
            warmup: self.warmup.map(scale),
            milestones: self.milestones.iter().copied().map(scale).collect(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_warmup_and_linear_decay() {
        let s = LrSchedule {
            milestones: vec![Steps::iterations(32_000), Steps::iterations(48_000)],
            ..LrSchedule::constant(0.1)
        };
        assert_eq!(s.lr_at(0, 63_000, 391), 0.1);
        assert_eq!(s.lr_at(31_999, 63_000, 391), 0.1);
        assert!((s.lr_at(32_000, 63_000, 391) - 0.01).abs() < 1e-12);
        assert!((s.lr_at(62_999, 63_000, 391) - 0.001).abs() < 1e-12);
        let w = LrSchedule {
            warmup: Some(Steps::iterations(30_000)),
            ..s.clone()
        };
        assert_eq!(w.lr_at(0, 63_000, 391), 0.0);
        assert!((w.lr_at(15_000, 63_000, 391) - 0.05).abs() < 1e-12);
        assert!((w.lr_at(40_000, 63_000, 391) - 0.01).abs() < 1e-12);
        let d = LrSchedule {
            final_lr: Some(0.005),
            ..LrSchedule::constant(0.03)
        };
        assert!((d.lr_at(50, 100, 10) - 0.0175).abs() < 1e-12);
        let half = s.scaled(0.5, 391);
        assert_eq!(
            half.milestones,
            vec![Steps::iterations(16_000), Steps::iterations(24_000)]
        );
    }
}
