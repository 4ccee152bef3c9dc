//! What a scale changes for every network, beside each network's own [`super::Cut`]: seeds,
//! how IMP reaches the Table 1 density, where the baselines are trained. One table, read by
//! `reproduce`'s setup; the per-network cuts are the entries'.

use results::Scale;

/// IMP rounds of a scale where the network's cut names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounds {
    /// Table 1's rounds and pruning fraction.
    Paper,
    /// At most this many rounds, to Table 1's density.
    AtMost(usize),
    /// A quarter of Table 1's rounds (rounded up), to its density.
    Quarter,
}

/// The IMP levels at which random pruning and reinitialisation are trained from k = 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineLevels {
    /// Every level.
    Every,
    /// The middle level (rounded up) and the last.
    MiddleAndLast,
}

/// What one scale changes for every network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalePolicy {
    pub init_seeds: &'static [u64],
    pub data_seeds: &'static [u64],
    /// The parent's data order: 0 is its own; 1 the first child's (the parent is that child).
    pub parent_data_seed: u64,
    pub rounds: Rounds,
    pub baseline_levels: BaselineLevels,
    /// Whether the scale differs from the paper (its report lists the seeds, k values and
    /// Figure 4's spacing as cuts).
    pub cuts_the_paper: bool,
}

/// Table 1: 3 inits x 3 data orders, the paper's IMP schedule.
pub const PAPER: ScalePolicy = ScalePolicy {
    init_seeds: &[1, 2, 3],
    data_seeds: &[1, 2, 3],
    parent_data_seed: 0,
    rounds: Rounds::Paper,
    baseline_levels: BaselineLevels::Every,
    cuts_the_paper: false,
};

/// The CPU scales: 1 init x 2 data orders, fewer and larger IMP rounds.
pub const QUICK: ScalePolicy = ScalePolicy {
    init_seeds: &[1],
    data_seeds: &[1, 2],
    parent_data_seed: 1,
    rounds: Rounds::Quarter,
    baseline_levels: BaselineLevels::MiddleAndLast,
    cuts_the_paper: true,
};

/// Replicates for decided verdicts (#41): 2 inits x 3 data orders, so every k has 3 pairs per
/// init (6 in all) and a replicate spread; IMP in quick's rounds.
pub const MEDIUM: ScalePolicy = ScalePolicy {
    init_seeds: &[1, 2],
    data_seeds: &[1, 2, 3],
    ..QUICK
};

/// A pipeline check: at most 2 IMP rounds, baselines at each.
pub const SMOKE: ScalePolicy = ScalePolicy {
    rounds: Rounds::AtMost(2),
    baseline_levels: BaselineLevels::Every,
    ..QUICK
};

/// The policy of `scale`.
pub const fn policy(scale: Scale) -> &'static ScalePolicy {
    match scale {
        Scale::Paper => &PAPER,
        Scale::Medium => &MEDIUM,
        Scale::Quick => &QUICK,
        Scale::Smoke => &SMOKE,
    }
}

impl ScalePolicy {
    /// IMP's rounds and per-round fraction for a network pruned in `paper_rounds` rounds of
    /// `paper_fraction` to `density`, when its cut asks for `cut_rounds`.
    pub fn imp_schedule(
        &self,
        paper_rounds: usize,
        paper_fraction: f64,
        density: f64,
        cut_rounds: Option<usize>,
    ) -> (usize, f64) {
        let to_density = |levels: usize| (levels, 1.0 - density.powf(1.0 / levels as f64));
        match (self.rounds, cut_rounds) {
            (Rounds::Paper, _) => (paper_rounds, paper_fraction),
            (_, Some(rounds)) => to_density(rounds),
            (Rounds::AtMost(n), None) => to_density(paper_rounds.min(n)),
            (Rounds::Quarter, None) => to_density(paper_rounds.div_ceil(4)),
        }
    }

    /// The levels at which the baselines are trained, of IMP's `levels`.
    pub fn baseline_levels(&self, levels: usize) -> Vec<usize> {
        match self.baseline_levels {
            BaselineLevels::Every => (1..=levels).collect(),
            BaselineLevels::MiddleAndLast => vec![levels.div_ceil(2), levels],
        }
    }
}
