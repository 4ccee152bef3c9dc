//! Beyond the paper: the IMP-level connectivity section. Paul et al. (2023) found that IMP
//! finds matching subnetworks exactly when the trained networks of successive levels are
//! linearly connected. Per IMP series step (rewind k, level L to L + 1): connected is the
//! instability rule of [`super::rules::stability`] on the pair's test instability (over inits),
//! matching the paper's rule on level L + 1 against the dense IMP runs (each run's final
//! evaluation); the finding agrees only where every step has both decided and equal, and
//! differs where a decided step has them unequal.

use std::fmt::Write;

use results::{ModelResults, Results};

use super::findings::{Finding, Verdict};
use super::rules::{Decided, matching_of, stability};
use super::with_n;

/// Connected and matching, decided per (k, level) of `m`'s level links.
fn steps(m: &ModelResults) -> Vec<(u64, usize, f64, String, Decided, Decided)> {
    let spread = m.instability_spread();
    m.level_link_summaries()
        .into_iter()
        .map(|l| {
            let matching = m
                .level_comparison(l.k, l.level + 1)
                .map_or_else(|| Err("no level run".into()), |c| matching_of(c).decided);
            (
                l.k,
                l.level,
                l.density,
                with_n(l.test_instability, "pp", "pair"),
                stability(l.test_instability, spread),
                matching,
            )
        })
        .collect()
}

fn word(r: &Decided, yes: &str, no: &str) -> String {
    match r {
        Ok(true) => yes.into(),
        Ok(false) => no.into(),
        Err(why) => format!("undecided ({why})"),
    }
}

/// The finding "consecutive IMP levels are connected exactly when the sparser is matching".
pub(super) fn finding(m: &ModelResults) -> Option<Finding> {
    let steps = steps(m);
    if steps.is_empty() {
        return None;
    }
    let decided: Vec<(bool, bool)> = steps
        .iter()
        .filter_map(|(.., c, mt)| Some((c.clone().ok()?, mt.clone().ok()?)))
        .collect();
    let verdict = if decided.is_empty() {
        Verdict::Undecided(
            "no step of an IMP series where both connectivity and matching are decided".into(),
        )
    } else if decided.iter().any(|(c, mt)| c != mt) {
        Verdict::Differs
    } else if decided.len() < steps.len() {
        Verdict::Undecided(format!(
            "holds at the {} of {} steps where both are decided",
            decided.len(),
            steps.len()
        ))
    } else {
        Verdict::Agrees
    };
    Some(Finding {
        text: format!(
            "{}, consecutive IMP levels are linearly connected exactly when the sparser level \
             is matching (Paul et al. 2023): of {} steps (rewind k, level to level + 1), {} \
             have both decided, {} of them connected and matching, {} neither.",
            m.setup.preset,
            steps.len(),
            decided.len(),
            decided.iter().filter(|(c, mt)| *c && *mt).count(),
            decided.iter().filter(|(c, mt)| !*c && !*mt).count()
        ),
        verdict,
    })
}

/// The section: one table per network with level links, and its finding.
pub(super) fn section(s: &mut String, r: &Results) {
    if r.models.iter().all(|m| m.level_links.is_empty()) {
        return;
    }
    let _ = writeln!(
        s,
        "## Beyond the paper: are consecutive IMP levels linearly connected?\n\nThe trained \
         networks of IMP levels L and L + 1 (same rewind k, same init) interpolated; \
         \"connected\" is the instability rule (below 2 pp, decided by its 95% interval), \
         \"matching\" the paper's rule for level L + 1 against the dense IMP runs. The path is \
         evaluated like the scale's other curves (see its cuts), the accuracies are each \
         run's own final evaluation.\n"
    );
    for m in r.models.iter().filter(|m| !m.level_links.is_empty()) {
        let _ = writeln!(
            s,
            "**{}**\n\n| rewind k | levels | density of L + 1 | test instability | connected | level L + 1 matching |\n|---|---|---|---|---|---|",
            m.setup.preset
        );
        for (k, level, density, instability, connected, matching) in steps(m) {
            let _ = writeln!(
                s,
                "| {k} | {level} → {} | {:.1}% | {instability} | {} | {} |",
                level + 1,
                100.0 * density,
                word(&connected, "yes", "no"),
                word(&matching, "yes", "no")
            );
        }
        if let Some(f) = finding(m) {
            let _ = writeln!(s, "\n- {f}\n");
        }
    }
}
