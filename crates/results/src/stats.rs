//! The statistics every report follows (SPEC.md §7): means over distinct networks with their
//! sample standard deviation and a 95% Student-t interval, differences of means with Welch's
//! interval, and one decision rule: a comparison with a threshold is decided only when the
//! interval lies on one side of it, else it is undecided with the n the observed spread needs.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Two-sided confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// The paper's threshold for "stable" (SPEC §7): test instability below 2 percentage points.
pub const STABLE_PP: f64 = 2.0;

/// The largest n [`n_needed`] looks for; past it the report says "more than".
pub const N_SEARCH_LIMIT: usize = 1000;

/// A closed interval `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// `centre ± half`.
    pub fn around(centre: f64, half: f64) -> Interval {
        Interval {
            lo: centre - half,
            hi: centre + half,
        }
    }

    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// Where the interval lies against `threshold`: wholly above, wholly below, or across it.
    pub fn side_of(&self, threshold: f64) -> Side {
        if self.lo > threshold {
            Side::Above
        } else if self.hi < threshold {
            Side::Below
        } else {
            Side::Across
        }
    }
}

/// See [`Interval::side_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Above,
    Below,
    Across,
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (the half-width factor of a
/// two-sided 95% interval). `df` may be fractional (Welch); NaN for `df <= 0`.
pub fn t_quantile(df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |t| t.inverse_cdf(0.5 + CONFIDENCE / 2.0))
}

/// Mean, sample standard deviation (divides by n - 1) and the mean's 95% Student-t interval of
/// n distinct values. A single value has no measured spread: `std` 0 and no interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
    /// 95% interval of the mean (t with n - 1 degrees of freedom); absent for n < 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<Interval>,
}

impl MeanStd {
    /// The statistics of `values` (mean NaN for none).
    pub fn of(values: &[f64]) -> MeanStd {
        let n = values.len();
        if n == 0 {
            return MeanStd::from_parts(f64::NAN, 0.0, 0);
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return MeanStd::from_parts(mean, 0.0, 1);
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        MeanStd::from_parts(mean, var.sqrt(), n)
    }

    /// From a mean, a sample std and n, with the interval they give.
    pub fn from_parts(mean: f64, std: f64, n: usize) -> MeanStd {
        let ci95 = (n >= 2 && mean.is_finite() && std.is_finite())
            .then(|| Interval::around(mean, t_quantile((n - 1) as f64) * std / (n as f64).sqrt()));
        MeanStd { mean, std, n, ci95 }
    }

    /// Whether there is a spread to judge noise by (n >= 2).
    pub fn has_spread(&self) -> bool {
        self.n >= 2 && self.std.is_finite()
    }
}

/// The difference of two independent means `a - b` with Welch's 95% interval (unequal
/// variances, Welch-Satterthwaite degrees of freedom); `None` unless both have n >= 2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub value: f64,
    pub ci95: Interval,
    pub df: f64,
}

impl Difference {
    pub fn welch(a: &MeanStd, b: &MeanStd) -> Option<Difference> {
        if !a.has_spread() || !b.has_spread() {
            return None;
        }
        let (va, vb) = (a.std.powi(2) / a.n as f64, b.std.powi(2) / b.n as f64);
        let se = (va + vb).sqrt();
        let value = a.mean - b.mean;
        // Both spreads zero: the difference is exact.
        let df = if se > 0.0 {
            (va + vb).powi(2) / (va.powi(2) / (a.n - 1) as f64 + vb.powi(2) / (b.n - 1) as f64)
        } else {
            (a.n + b.n - 2) as f64
        };
        Some(Difference {
            value,
            ci95: Interval::around(value, t_quantile(df) * se),
            df,
        })
    }
}

/// The spread of replicates pooled over groups (each a mean over n >= 2 values):
/// sqrt(Σ (n_i - 1) s_i² / Σ (n_i - 1)), with its degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PooledSpread {
    pub std: f64,
    pub df: usize,
}

impl PooledSpread {
    pub fn of<'a>(groups: impl IntoIterator<Item = &'a MeanStd>) -> Option<PooledSpread> {
        let (mut ss, mut df) = (0.0, 0usize);
        for g in groups.into_iter().filter(|g| g.has_spread()) {
            ss += (g.n - 1) as f64 * g.std.powi(2);
            df += g.n - 1;
        }
        (df > 0).then(|| PooledSpread {
            std: (ss / df as f64).sqrt(),
            df,
        })
    }

    /// The 95% margin of a single value with this spread: t(df) × std.
    pub fn margin(&self) -> f64 {
        t_quantile(self.df as f64) * self.std
    }
}

/// The smallest n (per group when `groups` is 2) at which a 95% interval of half-width
/// t(df) × spread × sqrt(groups / n) is narrower than `gap`, the distance of the mean from
/// the threshold; `None` past [`N_SEARCH_LIMIT`] or when there is no gap.
pub fn n_needed(spread: f64, gap: f64, groups: usize) -> Option<usize> {
    let gap = gap.abs();
    if gap.is_nan() || gap == 0.0 || !spread.is_finite() {
        return None;
    }
    (2..=N_SEARCH_LIMIT).find(|&n| {
        let df = (groups * (n - 1)) as f64;
        t_quantile(df) * spread * (groups as f64 / n as f64).sqrt() < gap
    })
}

/// The smallest n of networks for `a` (and for `b`, where it has fewer) at which Welch's 95%
/// interval of `a - b`, with the spreads observed now, is narrower than `gap`; `None` past
/// [`N_SEARCH_LIMIT`] or without spreads.
pub fn n_needed_welch(a: &MeanStd, b: &MeanStd, gap: f64) -> Option<usize> {
    let gap = gap.abs();
    if gap.is_nan() || gap == 0.0 || !a.has_spread() || !b.has_spread() {
        return None;
    }
    (a.n + 1..=N_SEARCH_LIMIT).find(|&n| {
        let grown = |m: &MeanStd| MeanStd::from_parts(m.mean, m.std, m.n.max(n));
        Difference::welch(&grown(a), &grown(b)).is_some_and(|d| d.ci95.half_width() < gap)
    })
}

/// "about 7" for `Some(7)`, else "more than 1000".
pub fn about(n: Option<usize>) -> String {
    n.map_or(format!("more than {N_SEARCH_LIMIT}"), |n| {
        format!("about {n}")
    })
}

/// The words for an [`n_needed`] result: "about 7", "more than 1000", "none (the mean is on the
/// threshold)".
pub fn n_needed_words(spread: f64, gap: f64, groups: usize) -> String {
    if gap.abs() > 0.0 && spread.is_finite() {
        about(n_needed(spread, gap, groups))
    } else {
        "no n (the mean sits on the threshold)".into()
    }
}
