//! Divergence that stays finite: a run whose training loss stays far above its early value
//! stops with one message, its checkpoints kept (NaN and infinity stop it at once, see
//! [`crate::Error::NonFinite`]).

use serde::{Deserialize, Serialize};

/// When a run counts as diverged: `reads` consecutive loss reads (each the mean loss of the
/// steps since the previous read, every `Trainer::loss_read_every` steps) above `factor` times
/// the run's early loss, the larger of its first read and chance-level loss, ln(classes). The
/// default (10x for 4 reads: 23 for 10 classes, held for ~200 steps) is far above anything a
/// Table 1 recipe does, whose losses stay under ln(classes) after their first steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    pub factor: f64,
    pub reads: u32,
}

impl Default for Divergence {
    fn default() -> Self {
        Divergence {
            factor: 10.0,
            reads: 4,
        }
    }
}

impl Divergence {
    pub fn is_default(&self) -> bool {
        *self == Divergence::default()
    }
}

/// Where a run tripped the rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Diverged {
    /// The first step of the stretch above the threshold.
    pub since: u64,
    pub loss: f64,
    pub threshold: f64,
}

/// The rule applied to one run's loss reads, in order.
#[derive(Debug, Clone)]
pub(crate) struct DivergenceWatch {
    rule: Divergence,
    chance: f64,
    threshold: Option<f64>,
    stretch: Option<(u64, u32)>,
}

impl DivergenceWatch {
    pub fn new(rule: Divergence, classes: usize) -> Self {
        DivergenceWatch {
            rule,
            chance: (classes.max(2) as f64).ln(),
            threshold: None,
            stretch: None,
        }
    }

    /// Takes the mean loss of the steps from `from` to this read; `Some` when the rule trips.
    pub fn observe(&mut self, from: u64, mean_loss: f64) -> Option<Diverged> {
        let threshold = *self
            .threshold
            .get_or_insert(self.rule.factor * mean_loss.max(self.chance));
        if mean_loss <= threshold {
            self.stretch = None;
            return None;
        }
        let (since, reads) = self.stretch.map_or((from, 1), |(s, n)| (s, n + 1));
        self.stretch = Some((since, reads));
        (reads >= self.rule.reads).then_some(Diverged {
            since,
            loss: mean_loss,
            threshold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sustained_stretch_far_above_the_early_loss_trips_and_a_spike_does_not() {
        let rule = Divergence::default();
        let mut watch = DivergenceWatch::new(rule, 10);
        assert_eq!(watch.observe(0, 2.4), None);
        // One spike, then back: no trip; the stretch starts over.
        assert_eq!(watch.observe(50, 1e3), None);
        assert_eq!(watch.observe(100, 1.0), None);
        let mut tripped = None;
        for (i, from) in (150..).step_by(50).take(4).enumerate() {
            tripped = watch.observe(from, 1e30);
            assert_eq!(tripped.is_some(), i == 3, "read {i}");
        }
        let d = tripped.expect("tripped");
        assert_eq!(d.since, 150);
        assert!((d.threshold - 24.0).abs() < 1e-9, "{d:?}");
        // A run resumed late, with a low first read, keeps chance level as its floor.
        let mut late = DivergenceWatch::new(rule, 10);
        for from in [0, 50, 100, 150] {
            assert_eq!(
                late.observe(from, if from == 0 { 0.01 } else { 20.0 }),
                None
            );
        }
    }
}
