//! The decision rules of the report (SPEC.md §7), one per kind of claim. Each returns a
//! measured yes / no only when a 95% interval lies on one side of its threshold; otherwise the
//! reason it is undecided, with the n the observed spread would need.
//!
//! * Stable: test instability below [`STABLE_PP`]. With n >= 2 pairs the mean's Student-t
//!   interval decides; a single pair is decided only when it lies farther from the threshold
//!   than the 95% margin of the replicate spread measured at this scale (the spread of the
//!   network's instability over pairs, pooled over every k with two or more).
//! * Matching (the paper's rule, same training length): the subnetwork's mean accuracy at
//!   least the dense reference's mean minus its std. Decided on the difference sparse − dense
//!   with Welch's interval against −std.
//! * The onset of stability is the bound the grid gives, compared as an interval with the
//!   paper's own grid bound.

use results::{
    AccuracyComparison, Branch, Difference, Interval, MeanStd, ModelResults, PooledSpread, Side,
    about, n_needed_welch, n_needed_words,
};

use super::STABLE_PP;

/// A measured yes/no, or why it cannot be said.
pub type Decided = Result<bool, String>;

fn interval_words(i: Interval, unit: &str) -> String {
    format!("[{:.2}, {:.2}]{unit}", i.lo, i.hi)
}

/// Stable (Ok(true)), unstable (Ok(false)) or undecided, for a mean instability over pairs.
/// `spread`: the replicate spread of this network at this scale, for a single pair.
pub fn stability(v: MeanStd, spread: Option<PooledSpread>) -> Decided {
    if !v.mean.is_finite() || v.n == 0 {
        return Err("not measured".into());
    }
    let (interval, how) = match (v.ci95, spread) {
        (Some(ci), _) => (ci, format!("95% t-interval {}", interval_words(ci, " pp"))),
        (None, Some(p)) => {
            let ci = Interval::around(v.mean, p.margin());
            (
                ci,
                format!(
                    "a single pair; the replicate spread at this scale ({:.2} pp, {} df) gives \
                     ± {:.2} pp: {}",
                    p.std,
                    p.df,
                    p.margin(),
                    interval_words(ci, " pp")
                ),
            )
        }
        (None, None) => {
            return Err(
                "a single pair, and no replicate spread measured at this scale: at least 2 \
                 pairs at some k are needed"
                    .into(),
            );
        }
    };
    match interval.side_of(STABLE_PP) {
        Side::Below => Ok(true),
        Side::Above => Ok(false),
        Side::Across => {
            let s = if v.has_spread() {
                v.std
            } else {
                spread.map_or(f64::NAN, |p| p.std)
            };
            Err(format!(
                "{how} contains {STABLE_PP} pp; this spread needs {} pairs",
                n_needed_words(s, v.mean - STABLE_PP, 1)
            ))
        }
    }
}

/// Whether a subnetwork is matching, with the numbers it rests on.
#[derive(Debug, Clone)]
pub struct MatchingCheck {
    pub comparison: AccuracyComparison,
    /// sparse − dense, Welch's interval (both n >= 2).
    pub difference: Option<Difference>,
    /// −std of the dense reference: "matching" is a difference at least this.
    pub threshold: f64,
    pub decided: Decided,
}

/// The matching check of the last IMP level of `branch` rewound to `k`.
pub fn matching(m: &ModelResults, k: u64, branch: Branch) -> Option<MatchingCheck> {
    let comparison = m.accuracy_comparison(k, branch)?;
    Some(matching_of(comparison))
}

/// The matching rule on a comparison of one test set.
pub fn matching_of(comparison: AccuracyComparison) -> MatchingCheck {
    let AccuracyComparison {
        subnetwork: sub,
        dense,
        ..
    } = comparison;
    let threshold = -dense.std;
    let difference = Difference::welch(&sub, &dense);
    let decided = if !dense.has_spread() {
        Err("the dense reference is a single network: no std to define matching by".into())
    } else if !sub.has_spread() {
        Err("a single subnetwork: no spread to judge the difference by".into())
    } else if let Some(d) = difference {
        match d.ci95.side_of(threshold) {
            Side::Above => Ok(true),
            Side::Below => Ok(false),
            Side::Across => Err(format!(
                "the 95% Welch interval of sparse − dense {} contains the threshold \
                     {threshold:.2}; these spreads need {} subnetworks (and as many dense \
                     networks where there are fewer)",
                interval_words(d.ci95, " points"),
                about(n_needed_welch(&sub, &dense, d.value - threshold))
            )),
        }
    } else {
        Err("no interval".into())
    };
    MatchingCheck {
        comparison,
        difference,
        threshold,
        decided,
    }
}

/// Where the dense network becomes stable, as the grid bounds it: `(last unstable, first
/// stable)`, where every k from `first stable` on is decided stable and `last unstable` is the
/// last k before it decided unstable (undecided k between widen the bound). `(None, Some(k))`:
/// no k before `k` decided unstable; `(Some(k), None)`: not decided stable at the last k;
/// `(None, None)`: nothing decided.
pub fn stable_bound(m: &ModelResults) -> Option<(Option<u64>, Option<u64>)> {
    let d = m.dense.as_ref()?;
    let spread = m.instability_spread();
    let decided: Vec<(u64, Decided)> = d
        .per_k
        .iter()
        .map(|k| (k.k, stability(k.test_instability, spread)))
        .collect();
    let mut first_stable = None;
    for (k, s) in decided.iter().rev() {
        if *s == Ok(true) {
            first_stable = Some(*k);
        } else {
            break;
        }
    }
    let last_unstable = decided
        .iter()
        .filter(|(k, s)| *s == Ok(false) && first_stable.is_none_or(|f| *k < f))
        .map(|(k, _)| *k)
        .next_back();
    Some((last_unstable, first_stable))
}
