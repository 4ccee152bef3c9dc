//! The findings of SPEC §5 checked per network: each line says what was measured (with n,
//! sample std and 95% interval), what this network's registry entry says the paper found, and
//! a verdict by the rules of [`super::rules`]: agrees or differs only when the interval lies
//! on one side of the threshold, else undecided with the reason.

use std::fmt;

use results::{BaselineClaim, Branch, MeanStd, ModelResults, PaperReference, Side, TestSet};

use super::rules::{Decided, MatchingCheck, matching, stability, stable_bound};
use super::{LENGTH_SHORTFALL_PP, with_n};

/// How a measurement compares with the paper's statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Agrees,
    Differs,
    Undecided(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Agrees => f.write_str("**agrees**"),
            Verdict::Differs => f.write_str("**differs**"),
            Verdict::Undecided(why) => write!(f, "**undecided** ({why})"),
        }
    }
}

/// Measured against claimed, where the measurement may itself be undecided.
fn verdict(measured: Result<bool, String>, paper: bool) -> Verdict {
    match measured {
        Ok(m) if m == paper => Verdict::Agrees,
        Ok(_) => Verdict::Differs,
        Err(why) => Verdict::Undecided(why),
    }
}

/// One line of the findings.
#[derive(Debug, Clone)]
pub struct Finding {
    pub text: String,
    pub verdict: Verdict,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Verdict: {}.", self.text, self.verdict)
    }
}

/// Test instability at k (dense).
pub fn instability_at(m: &ModelResults, k: u64) -> Option<MeanStd> {
    m.dense.as_ref()?.at(k).map(|x| x.test_instability)
}

/// The word for a decided result, or "undecided" (the verdict gives the reason).
fn decided(r: &Decided, word: fn(bool) -> &'static str) -> &'static str {
    r.as_ref().map_or("undecided", |&b| word(b))
}

fn stable_word(stable: bool) -> &'static str {
    if stable { "stable" } else { "unstable" }
}

fn matching_word(matching: bool) -> &'static str {
    if matching { "matching" } else { "not matching" }
}

/// Does the paper expect IMP rewound to `k` to be matching (and so, by its central link,
/// stable)? `None` when it does not say, or when `k` falls between the last k of the paper's
/// grid where it was not matching and the first where it was.
fn paper_expects_matching(m: &ModelResults, p: &PaperReference, k: u64) -> Option<bool> {
    if k == 0 {
        return Some(p.imp_matching_at_init);
    }
    let from = p.matching_from_fraction?;
    let f = fraction_of_training(m, k);
    if f >= from {
        Some(true)
    } else if p.matching_after_fraction.is_none_or(|after| f <= after) {
        Some(false)
    } else {
        None
    }
}

/// The test set a comparison's accuracies were measured on, in words.
fn test_set_words(m: &ModelResults, set: TestSet) -> String {
    let subset = |eval: &serde_json::Value| eval.get("test_subset").and_then(|v| v.as_u64());
    match set {
        TestSet::CurveEndpoints => match subset(&m.setup.curve_eval) {
            Some(n) => format!("the interpolation endpoints, on the first {n} test images"),
            None => "the interpolation endpoints, on the whole test set".into(),
        },
        TestSet::RunEvaluation => match subset(&m.setup.eval) {
            Some(n) => format!("the IMP level runs, on the first {n} test images"),
            None => "the IMP level runs, on the whole test set".into(),
        },
    }
}

/// ", at this scale's length (its dense network is 5.15 points short of its 3x run)" where the
/// length check shows the scale's length short of trained.
fn length_caveat(m: &ModelResults) -> String {
    m.length_check
        .filter(|c| c.shortfall() > LENGTH_SHORTFALL_PP)
        .map_or(String::new(), |c| {
            format!(
                " at this scale's length (its dense network is {:.2} points short of its \
                 {}-step run)",
                c.shortfall(),
                c.long_steps
            )
        })
}

/// "sparse − dense = -0.16 points, 95% Welch interval [-1.02, 0.70], threshold −0.44".
fn difference_words(c: &MatchingCheck) -> String {
    match c.difference {
        Some(d) => format!(
            "sparse − dense {:+.2} points, 95% Welch interval [{:.2}, {:.2}] ({:.1} df), \
             against the threshold {:.2} (minus the dense std)",
            d.value, d.ci95.lo, d.ci95.hi, d.df, c.threshold
        ),
        None => format!(
            "sparse − dense {:+.2} points, no interval",
            c.comparison.subnetwork.mean - c.comparison.dense.mean
        ),
    }
}

/// Every finding this network's results can speak to.
pub fn findings(m: &ModelResults) -> Vec<Finding> {
    let name = &m.setup.preset;
    let Some(p) = &m.setup.network.paper else {
        return vec![];
    };
    let spread = m.instability_spread();
    let stable = |v: MeanStd| stability(v, spread);
    let mut out = Vec::new();
    if let Some(i0) = instability_at(m, 0) {
        out.push(Finding {
            text: format!(
                "{name}, dense, k = 0: test instability {}: {}; the paper: {} at k = 0.",
                with_n(i0, "pp", "pair"),
                decided(&stable(i0), stable_word),
                stable_word(p.stable_at_init)
            ),
            verdict: verdict(stable(i0), p.stable_at_init),
        });
        if !p.stable_at_init {
            out.extend(midpoint(m));
        }
    }
    out.extend(onset(m, p));
    let sparse_ks: Vec<u64> = {
        let mut ks: Vec<u64> = m.imp.iter().map(|s| s.k).collect();
        ks.extend(m.sparse.iter().map(|a| a.k));
        ks.sort_unstable();
        ks.dedup();
        ks
    };
    let density = 100.0 * m.setup.design.target_density();
    let mut link = Vec::new();
    for &k in &sparse_ks {
        let expected = paper_expects_matching(m, p, k);
        let at = format!("k = {k} ({:.2}% of training)", percent_of_training(m, k));
        let claim = |what: &str| match expected {
            Some(e) => format!("the paper: {what} {}", if e { "yes" } else { "no" }),
            None => format!(
                "the paper's grid does not say at this k (matching from {})",
                p.matching_from
            ),
        };
        let judged = |measured: Decided| match expected {
            Some(e) => verdict(measured, e),
            None => Verdict::Undecided("no claim of the paper at this k to compare with".into()),
        };
        let check = matching(m, k, Branch::Imp);
        if let Some(c) = &check {
            out.push(Finding {
                text: format!(
                    "{name}, IMP at {density:.1}% density rewound to {at}: test accuracy {} \
                     against the dense reference {} (both from {}); {}: {}{}; {} (matching \
                     from {}).",
                    with_n(c.comparison.subnetwork, "%", "network"),
                    with_n(c.comparison.dense, "%", "distinct network"),
                    test_set_words(m, c.comparison.test_set),
                    difference_words(c),
                    decided(&c.decided, matching_word),
                    length_caveat(m),
                    claim("matching?"),
                    p.matching_from
                ),
                verdict: judged(c.decided.clone()),
            });
        }
        let inst = sparse_instability(m, k, Branch::Imp);
        if let Some(i) = inst {
            out.push(Finding {
                text: format!(
                    "{name}, IMP subnetworks rewound to {at}: sparse test instability {}: {}; \
                     {} (stable where matching).",
                    with_n(i, "pp", "pair"),
                    decided(&stable(i), stable_word),
                    claim("stable?")
                ),
                verdict: judged(stable(i)),
            });
        }
        if let (Some(i), Some(c)) = (inst, check) {
            link.push((k, stable(i), c.decided));
        }
        for branch in Branch::BASELINES {
            let claim = match branch {
                Branch::RandomPrune => p.random_pruning.as_ref(),
                _ => p.reinit.as_ref(),
            };
            out.extend(baseline(m, k, branch, claim));
        }
    }
    out.extend(matching_only_when_stable(name, &link));
    out
}

/// The sparse test instability of `branch` rewound to `k`.
pub fn sparse_instability(m: &ModelResults, k: u64, branch: Branch) -> Option<MeanStd> {
    Some(
        m.sparse_at(k, branch)?
            .summary
            .per_k
            .first()?
            .test_instability,
    )
}

fn fraction_of_training(m: &ModelResults, k: u64) -> f64 {
    k as f64 / m.setup.design.total_steps.max(1) as f64
}

fn percent_of_training(m: &ModelResults, k: u64) -> f64 {
    100.0 * fraction_of_training(m, k)
}

/// The worst test error on the k = 0 path beside chance (the paper: close to it, read as
/// within 10 points), decided on the mean's 95% interval.
fn midpoint(m: &ModelResults) -> Option<Finding> {
    let d = m.dense.as_ref()?;
    let worst: Vec<f64> = d
        .pairs
        .iter()
        .filter(|x| x.k == 0)
        .filter_map(|x| x.result.curve.worst_test_error().map(f64::from))
        .collect();
    let w = MeanStd::of(&worst);
    if !w.mean.is_finite() {
        return None;
    }
    let chance = 100.0 * (1.0 - 1.0 / m.setup.network.dataset.num_classes() as f64);
    let near = match w.ci95.map(|ci| ci.side_of(chance - 10.0)) {
        Some(Side::Above) => Ok(true),
        Some(Side::Below) => Ok(false),
        Some(Side::Across) => Err(format!(
            "the 95% interval contains {:.0}%, 10 points below chance",
            chance - 10.0
        )),
        None => Err("a single pair: no spread of the worst error to judge by".into()),
    };
    Some(Finding {
        text: format!(
            "{}, dense, k = 0: the worst test error along the path is {} (chance: {chance:.0}%; \
             \"close to chance\" read as within 10 points of it): {}; the paper: close to \
             chance for its unstable networks.",
            m.setup.preset,
            with_n(w, "%", "pair"),
            if w.mean < chance {
                format!("{:.2} points below chance", chance - w.mean)
            } else {
                format!(
                    "{:.2} points above chance (one class predicted)",
                    w.mean - chance
                )
            }
        ),
        verdict: verdict(near, true),
    })
}

/// Where the dense network becomes stable: the bound the grid gives, compared as an interval
/// with the paper's own grid bound (after, from]: consistent when the two overlap.
fn onset(m: &ModelResults, p: &PaperReference) -> Option<Finding> {
    let (last_unstable, first_stable) = stable_bound(m)?;
    let name = &m.setup.preset;
    let total = m.setup.design.total_steps;
    let first_k = m.dense.as_ref()?.per_k.first()?.k;
    let pct = |k: u64| percent_of_training(m, k);
    let at = |k: u64| instability_at(m, k).map_or("–".into(), |v| with_n(v, "pp", "pair"));
    let measured = match (last_unstable, first_stable) {
        (None, Some(k)) if k == first_k => format!("stable at every measured k, from k = {k}"),
        (None, Some(b)) => format!(
            "stable from k = {b} ({:.2}%: {}) on, no earlier k decided unstable: the onset is \
             at or before k = {b} of {total} iterations",
            pct(b),
            at(b)
        ),
        (Some(a), Some(b)) => format!(
            "unstable at k = {a} ({:.2}%: {}), stable from k = {b} ({:.2}%: {}) on: the onset \
             lies in ({a}, {b}] of {total} iterations",
            pct(a),
            at(a),
            pct(b),
            at(b)
        ),
        (Some(a), None) => format!(
            "unstable at k = {a} ({:.2}%), not decided stable at the last measured k: the onset \
             is after k = {a}",
            pct(a)
        ),
        (None, None) => "stability is decided at no measured k".into(),
    };
    let ours_lo = last_unstable.map_or(f64::NEG_INFINITY, |k| fraction_of_training(m, k));
    let ours_hi = first_stable.map_or(f64::INFINITY, |k| fraction_of_training(m, k));
    let verdict = match p.stable_from_fraction {
        None => Verdict::Undecided("the paper's onset is not recorded in these results".into()),
        Some(_) if last_unstable.is_none() && first_stable.is_none() => {
            Verdict::Undecided("no k is decided".into())
        }
        Some(from) => {
            let after = p.stable_after_fraction.unwrap_or(if from > 0.0 {
                f64::NEG_INFINITY
            } else {
                -1.0
            });
            // Two half-open intervals (lo, hi] overlap when each starts before the other ends.
            if ours_lo < from && after < ours_hi {
                Verdict::Agrees
            } else if ours_lo >= from || first_stable.is_some() {
                Verdict::Differs
            } else {
                Verdict::Undecided("no measured k reaches the paper's onset".into())
            }
        }
    };
    let paper_bound = match (p.stable_after_fraction, p.stable_from_fraction) {
        (Some(a), Some(f)) => format!(
            ", {:.2}% of training; on its grid the onset lies in ({:.2}%, {:.2}%]",
            100.0 * f,
            100.0 * a,
            100.0 * f
        ),
        (None, Some(f)) => format!(", {:.2}% of training", 100.0 * f),
        _ => String::new(),
    };
    let reading = match &verdict {
        Verdict::Agrees => " The two bounds overlap: consistent with the paper, not a \
                            measurement of its onset."
            .to_string(),
        Verdict::Differs if ours_lo >= p.stable_from_fraction.unwrap_or(0.0) => {
            " Not stable by the paper's onset: later than the paper.".to_string()
        }
        Verdict::Differs => {
            " Stable before the paper's bound begins: earlier than the paper.".to_string()
        }
        Verdict::Undecided(_) => String::new(),
    };
    Some(Finding {
        text: format!(
            "{name}, dense: {measured}; the paper: stable from {}{paper_bound}.{reading}",
            p.stable_from,
        ),
        verdict,
    })
}

fn baseline(
    m: &ModelResults,
    k: u64,
    branch: Branch,
    claim: Option<&BaselineClaim>,
) -> Option<Finding> {
    let check = matching(m, k, branch)?;
    let acc = check.comparison.subnetwork;
    let inst = sparse_instability(m, k, branch);
    let spread = m.instability_spread();
    let Some(claim) = claim else {
        return Some(Finding {
            text: format!(
                "{}, {} at k = {k}: accuracy {}.",
                m.setup.preset,
                branch.label(),
                with_n(acc, "%", "network")
            ),
            verdict: Verdict::Undecided(
                "the paper's finding is not recorded in these results".into(),
            ),
        });
    };
    let stable_part = inst.map_or(String::new(), |i| {
        format!(
            "test instability {}: {}; ",
            with_n(i, "pp", "pair"),
            decided(&stability(i, spread), stable_word)
        )
    });
    // Both parts of the claim must hold; an undecided part leaves the verdict undecided.
    let stable_ok = match (claim.stable, inst) {
        (Some(expected), Some(i)) => Some(verdict(stability(i, spread), expected)),
        _ => None,
    };
    let matching_ok = verdict(check.decided.clone(), claim.matching);
    let part = |v: &Verdict| match v {
        Verdict::Agrees => "agrees".to_string(),
        Verdict::Differs => "differs".to_string(),
        Verdict::Undecided(why) => format!("undecided: {why}"),
    };
    let combined = match (&stable_ok, &matching_ok) {
        (Some(Verdict::Differs), _) | (_, Verdict::Differs) => Verdict::Differs,
        (Some(Verdict::Agrees) | None, Verdict::Agrees) => Verdict::Agrees,
        (Some(s), m) => {
            Verdict::Undecided(format!("instability {}; matching {}", part(s), part(m)))
        }
        (None, m) => Verdict::Undecided(format!("matching {}", part(m))),
    };
    Some(Finding {
        text: format!(
            "{}, {} at k = {k}: {stable_part}accuracy {} ({}; {}): {}; the paper: {}.",
            m.setup.preset,
            branch.label(),
            with_n(acc, "%", "network"),
            test_set_words(m, check.comparison.test_set),
            difference_words(&check),
            decided(&check.decided, matching_word),
            claim.words
        ),
        verdict: combined,
    })
}

/// The paper's central link: IMP subnetworks are matching exactly where they are stable.
fn matching_only_when_stable(name: &str, link: &[(u64, Decided, Decided)]) -> Option<Finding> {
    if link.is_empty() {
        return None;
    }
    let decided: Vec<(u64, bool, bool)> = link
        .iter()
        .filter_map(|(k, s, mt)| Some((*k, s.clone().ok()?, mt.clone().ok()?)))
        .collect();
    let each = link
        .iter()
        .map(|(k, s, mt)| {
            let word = |r: &Result<bool, String>, yes: &str, no: &str| match r {
                Ok(true) => yes.to_string(),
                Ok(false) => no.to_string(),
                Err(_) => "undecided".to_string(),
            };
            format!(
                "k = {k}: {} and {}",
                word(s, "stable", "unstable"),
                word(mt, "matching", "not matching")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let verdict = if decided.is_empty() {
        Verdict::Undecided("no k where both stability and matching are decided".into())
    } else if decided.iter().all(|(_, s, mt)| s == mt) {
        if decided.len() < link.len() {
            Verdict::Undecided(format!(
                "holds at the {} decided k, undecided at the others",
                decided.len()
            ))
        } else {
            Verdict::Agrees
        }
    } else {
        Verdict::Differs
    };
    Some(Finding {
        text: format!(
            "{name}, IMP subnetworks are matching only when stable (the paper's central link): \
             {each}."
        ),
        verdict,
    })
}
