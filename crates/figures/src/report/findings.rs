//! The findings of SPEC §5 checked per network: each line says what was measured (with n),
//! what this network's registry entry says the paper found, and a verdict.
//!
//! Rules. Stable: test instability under 2 points; a mean within one standard deviation of 2
//! is undecided. Matching: the subnetwork's mean accuracy at least the dense network's mean
//! minus one standard deviation; undecided when the threshold lies within one standard
//! deviation of the subnetwork's mean. When the length check shows the dense network more
//! than 1 point short of its own longer run, "matching" against it would compare with an
//! untrained network: then only "not matching" is decided against it (assuming longer
//! training lifts a subnetwork no more than the dense network), and "matching" needs the
//! dense mean plus the longer run's gain (see [`matching`]). Where a stable k is reported
//! it is the bound the grid gives: the onset lies between the last unstable and the first
//! stable measured k.

use std::fmt;

use results::{BaselineClaim, Branch, MeanStd, ModelResults, PaperReference};

use super::{LENGTH_SHORTFALL_PP, STABLE_PP, with_n};

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

/// A measured yes/no, or why it cannot be said.
type Decided = Result<bool, String>;

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

/// Stable (Ok(true)), unstable (Ok(false)) or too close to the threshold to say.
pub fn stability(v: MeanStd) -> Result<bool, String> {
    if !v.mean.is_finite() {
        return Err("not measured".into());
    }
    if v.n > 1 && (v.mean - STABLE_PP).abs() < v.std {
        return Err(format!("within one std of {STABLE_PP} pp"));
    }
    Ok(v.mean < STABLE_PP)
}

/// The word for a decided result, or "undecided" (the verdict gives the reason).
fn decided(r: &Result<bool, String>, word: fn(bool) -> &'static str) -> &'static str {
    r.as_ref().map_or("undecided", |&b| word(b))
}

fn stable_word(stable: bool) -> &'static str {
    if stable { "stable" } else { "unstable" }
}

fn matching_word(matching: bool) -> &'static str {
    if matching { "matching" } else { "not matching" }
}

/// Whether `accuracy` (a subnetwork's, %) is matching for network `m`. When the length check
/// shows the dense network more than [`LENGTH_SHORTFALL_PP`] short of its longer run, "not
/// matching" still stands (on the assumption, stated in the report, that longer training lifts
/// the subnetwork no more than the dense network), but "matching" needs the subnetwork to reach
/// the dense mean plus what the longer run gained, minus one std; between the two it is
/// undecided.
pub fn matching(m: &ModelResults, accuracy: MeanStd) -> Result<bool, String> {
    let dense = m.dense_accuracy.ok_or("no dense accuracy")?;
    let spread = if dense.std.is_finite() {
        dense.std
    } else {
        0.0
    };
    let near = |threshold: f64| accuracy.n > 1 && (accuracy.mean - threshold).abs() < accuracy.std;
    let threshold = dense.mean - spread;
    if near(threshold) {
        return Err(format!(
            "the threshold {threshold:.2}% is within one std of the mean"
        ));
    }
    let Some(c) = m
        .length_check
        .filter(|c| c.shortfall() > LENGTH_SHORTFALL_PP)
    else {
        return Ok(accuracy.mean >= threshold);
    };
    if accuracy.mean < threshold {
        return Ok(false);
    }
    let trained = threshold + c.shortfall();
    if accuracy.mean >= trained && !near(trained) {
        return Ok(true);
    }
    Err(format!(
        "above the dense network at this length, which is {:.1} points short of its \
         {}-step run, but below {trained:.2}% (the threshold plus that run's gain)",
        c.shortfall(),
        c.long_steps
    ))
}

/// Test instability at k (dense).
pub fn instability_at(m: &ModelResults, k: u64) -> Option<MeanStd> {
    m.dense.as_ref()?.at(k).map(|x| x.test_instability)
}

/// The bound the measured k give on where the dense network becomes stable: `(last unstable,
/// first stable)` with every later k stable; `(None, Some(k0))` when stable from the first k,
/// `(Some(k), None)` when never stable.
pub fn stable_bound(m: &ModelResults) -> Option<(Option<u64>, Option<u64>)> {
    let d = m.dense.as_ref()?;
    let mut first_stable = None;
    for k in d.per_k.iter().rev() {
        if stability(k.test_instability) == Ok(true) {
            first_stable = Some(k.k);
        } else {
            break;
        }
    }
    let last_unstable = d
        .per_k
        .iter()
        .filter(|k| Some(k.k) < first_stable || first_stable.is_none())
        .map(|k| k.k)
        .next_back();
    Some((last_unstable, first_stable))
}

/// A subnetwork's accuracy: the mean of the children of its sparse instability pairs (the runs
/// whose instability is reported), else the level run of its IMP series.
pub fn subnetwork_accuracy(m: &ModelResults, k: u64, branch: Branch) -> Option<MeanStd> {
    if let Some(x) = m.sparse_at(k, branch).and_then(|a| a.summary.per_k.first()) {
        return Some(x.child_test_accuracy);
    }
    m.imp_at(k)?
        .level(m.setup.design.levels, branch)
        .map(|l| l.test_accuracy)
}

fn sparse_instability(m: &ModelResults, k: u64, branch: Branch) -> Option<MeanStd> {
    Some(
        m.sparse_at(k, branch)?
            .summary
            .per_k
            .first()?
            .test_instability,
    )
}

fn percent_of_training(m: &ModelResults, k: u64) -> f64 {
    100.0 * k as f64 / m.setup.design.total_steps.max(1) as f64
}

/// Does the paper expect IMP rewound to `k` to be matching (and so, by its central link,
/// stable)? `None` when it does not say where matching starts.
fn paper_expects_matching(m: &ModelResults, p: &PaperReference, k: u64) -> Option<bool> {
    if k == 0 {
        return Some(p.imp_matching_at_init);
    }
    let f = p.matching_from_fraction?;
    Some(k as f64 / m.setup.design.total_steps.max(1) as f64 >= f)
}

/// Every finding this network's results can speak to.
pub fn findings(m: &ModelResults) -> Vec<Finding> {
    let name = &m.setup.preset;
    let Some(p) = &m.setup.network.paper else {
        return vec![];
    };
    let mut out = Vec::new();
    if let Some(i0) = instability_at(m, 0) {
        out.push(Finding {
            text: format!(
                "{name}, dense, k = 0: test instability {}: {}; the paper: {} at k = 0.",
                with_n(i0, "pp", "pair"),
                decided(&stability(i0), stable_word),
                stable_word(p.stable_at_init)
            ),
            verdict: verdict(stability(i0), p.stable_at_init),
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
        let at = format!("k = {k} ({:.1}% of training)", percent_of_training(m, k));
        let claim = |what: &str| match expected {
            Some(e) => format!("the paper: {what} {}", if e { "yes" } else { "no" }),
            None => "the paper does not say where matching starts".into(),
        };
        let judged = |measured: Result<bool, String>| match expected {
            Some(e) => verdict(measured, e),
            None => Verdict::Undecided("no claim of the paper to compare with".into()),
        };
        let acc = subnetwork_accuracy(m, k, Branch::Imp);
        let matched = acc.map(|a| matching(m, a));
        if let (Some(a), Some(matched)) = (acc, matched.clone()) {
            out.push(Finding {
                text: format!(
                    "{name}, IMP at {density:.1}% density rewound to {at}: test accuracy {} \
                     against the dense {}: {}; {} (matching from {}).",
                    with_n(a, "%", "child"),
                    m.dense_accuracy
                        .map_or("–".into(), |d| with_n(d, "%", "child")),
                    decided(&matched, matching_word),
                    claim("matching?"),
                    p.matching_from
                ),
                verdict: judged(matched),
            });
        }
        let inst = sparse_instability(m, k, Branch::Imp);
        if let Some(i) = inst {
            out.push(Finding {
                text: format!(
                    "{name}, IMP subnetworks rewound to {at}: sparse test instability {}: {}; \
                     {} (stable where matching).",
                    with_n(i, "pp", "pair"),
                    decided(&stability(i), stable_word),
                    claim("stable?")
                ),
                verdict: judged(stability(i)),
            });
        }
        if let (Some(i), Some(mt)) = (inst, matched) {
            link.push((k, stability(i), mt));
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

/// The worst test error on the k = 0 path beside chance (the paper: close to it).
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
    let near = w.mean >= chance - 10.0;
    Some(Finding {
        text: format!(
            "{}, dense, k = 0: the worst test error along the path is {} (chance: {chance:.0}%; \
             \"close to chance\" read as within 10 points of it): {:.1} points below chance; \
             the paper: close to chance for its unstable networks.",
            m.setup.preset,
            with_n(w, "%", "pair"),
            chance - w.mean
        ),
        verdict: verdict(Ok(near), true),
    })
}

/// Where the dense network becomes stable: the bound the grid gives, against the paper's.
fn onset(m: &ModelResults, p: &PaperReference) -> Option<Finding> {
    let (last_unstable, first_stable) = stable_bound(m)?;
    let name = &m.setup.preset;
    let total = m.setup.design.total_steps;
    let pct = |k: u64| percent_of_training(m, k);
    let at = |k: u64| instability_at(m, k).map_or("–".into(), |v| with_n(v, "pp", "pair"));
    let measured = match (last_unstable, first_stable) {
        (None, Some(k)) => format!("stable at every measured k, from k = {k}"),
        (Some(a), Some(b)) => format!(
            "unstable at k = {a} ({:.1}%: {}), stable from k = {b} ({:.1}%: {}) on: the onset \
             lies in ({a}, {b}] of {total} iterations",
            pct(a),
            at(a),
            pct(b),
            at(b)
        ),
        (Some(a), None) => format!("not stable at any measured k (up to k = {a})"),
        (None, None) => return None,
    };
    let verdict = match p.stable_from_fraction {
        None => Verdict::Undecided("the paper's onset is not recorded in these results".into()),
        Some(f) => {
            let lo = last_unstable.map_or(-1.0, |k| pct(k) / 100.0);
            let hi = first_stable.map(|k| pct(k) / 100.0);
            match hi {
                Some(hi) if lo < f && f <= hi => Verdict::Agrees,
                Some(_) => Verdict::Differs,
                None if lo >= f => Verdict::Differs,
                None => Verdict::Undecided("no measured k reaches the paper's onset".into()),
            }
        }
    };
    Some(Finding {
        text: format!(
            "{name}, dense: {measured}; the paper: stable from {}{}.",
            p.stable_from,
            p.stable_from_fraction.map_or(String::new(), |f| format!(
                ", {:.1}% of training",
                100.0 * f
            ))
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
    let acc = subnetwork_accuracy(m, k, branch)?;
    let inst = sparse_instability(m, k, branch);
    let matched = matching(m, acc);
    let Some(claim) = claim else {
        return Some(Finding {
            text: format!(
                "{}, {} at k = {k}: accuracy {}.",
                m.setup.preset,
                branch.label(),
                with_n(acc, "%", "child")
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
            decided(&stability(i), stable_word)
        )
    });
    // Both parts of the claim must hold; an undecided part leaves the verdict undecided.
    let stable_ok = match (claim.stable, inst) {
        (Some(expected), Some(i)) => Some(verdict(stability(i), expected)),
        _ => None,
    };
    let matching_ok = verdict(matched.clone(), claim.matching);
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
            "{}, {} at k = {k}: {stable_part}accuracy {}: {}; the paper: {}.",
            m.setup.preset,
            branch.label(),
            with_n(acc, "%", "child"),
            decided(&matched, matching_word),
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
