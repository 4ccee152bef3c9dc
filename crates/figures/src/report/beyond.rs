//! "Beyond the paper": the same pairs interpolated after aligning the second child to the
//! first, with BN statistics re-estimated along the path, and with both; each change credited
//! to what caused it.

use std::fmt::Write;

use results::{
    AlignedAnalysis, Alignment, BnPolicy, Branch, KSummary, MeanStd, ModelResults, PairRecord,
    PooledSpread, Results,
};

use super::pm;
use super::rules::stability;
use crate::figs::{aligned_label, alignment_label, model_label};

/// The paper's (unaligned) analysis at k: dense, or the IMP subnetworks rewound to k.
fn unaligned_at(m: &ModelResults, sparse: bool, k: u64) -> Option<&KSummary> {
    if sparse {
        m.sparse_at(k, Branch::Imp)?.summary.per_k.first()
    } else {
        m.dense.as_ref()?.at(k)
    }
}

fn barrier(k: &KSummary) -> String {
    k.test_loss_barrier
        .map_or("–".into(), |b| format!("{:.3}", b.mean))
}

/// Mean endpoint test error (%) of `pairs` at `k`.
fn endpoint_errors(pairs: &[PairRecord], k: u64) -> MeanStd {
    let values: Vec<f64> = pairs
        .iter()
        .filter(|p| p.k == k)
        .flat_map(|p| p.result.endpoint_test_errors.map(f64::from))
        .collect();
    MeanStd::of(&values)
}

/// The variants of one analysis (dense or sparse) in a fixed order: the BN-only control
/// first, then each alignment without and with BN re-estimated.
fn ordered(m: &ModelResults, sparse: bool) -> Vec<&AlignedAnalysis> {
    let rank = |a: &AlignedAnalysis| {
        let align = match a.align {
            Alignment::None => 0,
            Alignment::Weights => 1,
            Alignment::Activations => 2,
        };
        let bn = usize::from(matches!(a.bn_policy, BnPolicy::Reestimate { .. }));
        2 * align + bn
    };
    let mut out: Vec<&AlignedAnalysis> = m.aligned.iter().filter(|a| a.sparse == sparse).collect();
    out.sort_by_key(|a| rank(a));
    out
}

pub(super) fn section(s: &mut String, r: &Results) {
    if r.models.iter().all(|m| m.aligned.is_empty()) {
        return;
    }
    let batches = r
        .models
        .iter()
        .flat_map(|m| &m.aligned)
        .find_map(|a| match a.bn_policy {
            BnPolicy::Reestimate { batches } => Some(batches),
            BnPolicy::Interpolate => None,
        });
    let has_control =
        r.models.iter().flat_map(|m| &m.aligned).any(|a| {
            a.align == Alignment::None && matches!(a.bn_policy, BnPolicy::Reestimate { .. })
        });
    let has_activations = r
        .models
        .iter()
        .flat_map(|m| &m.aligned)
        .any(|a| a.align == Alignment::Activations);
    let _ = writeln!(
        s,
        "## Beyond the paper: instability modulo permutation\n\n\
         The same pairs of children, interpolated with the second child aligned to the first \
         by weight matching (Ainsworth et al. 2023: coordinate descent over each layer's hidden \
         units, every step an exact assignment; BN statistics and pruning masks move with their \
         units){}, with BN statistics re-estimated along the path, and with both. {} Test \
         instability in percentage points of error (the paper's measure) and the test loss \
         barrier (the rise of the mean cross-entropy above the endpoints', the measure of later \
         work). Children of one init share W0, so weight matching is biased towards leaving \
         them as they are: a pair it does not move is not evidence that no permutation helps{}.{}\n",
        if has_activations {
            " or by activation matching (each layer's units matched by the correlation of their \
             activations on training images, the same exact assignment; it does not look at the \
             weights, so a shared initialisation does not pull it towards the identity)"
        } else {
            ""
        },
        if has_control {
            "BN re-estimated without alignment is the control that separates the two effects."
        } else {
            "These results hold no BN-only control (BN re-estimated without alignment): where \
             weight matching moved no unit the aligned pair is the unaligned pair, so its BN \
             re-estimated result is that control; elsewhere the two effects are not separated."
        },
        if has_activations {
            "; activation matching is the control for that"
        } else {
            " (activation matching, the control for that, is not in these results)"
        },
        batches.map_or(String::new(), |b| format!(
            " BN re-estimation resets each network's running statistics and averages the \
             statistics of {b} training batches in train mode (no gradient), at every \
             interpolated point *and at the two endpoints*, so it moves the endpoint errors \
             too: the instability is measured against the re-estimated endpoints."
        ))
    );
    for m in r.models.iter().filter(|m| !m.aligned.is_empty()) {
        let _ = writeln!(s, "**{}**\n", model_label(m));
        for sparse in [false, true] {
            table(s, m, sparse);
        }
        for line in credits(m) {
            let _ = writeln!(s, "- {line}");
        }
        across_inits(s, m);
        let _ = writeln!(s);
    }
}

fn table(s: &mut String, m: &ModelResults, sparse: bool) {
    let variants = ordered(m, sparse);
    if variants.is_empty() {
        return;
    }
    let mut header = format!(
        "| {} | k | no alignment (the paper): instability / loss barrier",
        if sparse { "IMP subnetworks" } else { "dense" }
    );
    for a in &variants {
        let _ = write!(header, " | {}", aligned_label(a));
    }
    let _ = writeln!(s, "{header} |");
    let _ = writeln!(s, "{}|", "|---".repeat(3 + variants.len()));
    for k in measured_ks(&variants) {
        let cell = |x: Option<&KSummary>| {
            x.map_or("–".into(), |x| {
                format!("{} / {}", pm(x.test_instability), barrier(x))
            })
        };
        let mut line = format!("| | {k} | {}", cell(unaligned_at(m, sparse, k)));
        for a in &variants {
            let _ = write!(
                line,
                " | {}",
                cell(a.summary.per_k.iter().find(|x| x.k == k))
            );
        }
        let _ = writeln!(s, "{line} |");
    }
    let _ = writeln!(s);
}

/// Every k any of `variants` measured, ascending.
fn measured_ks(variants: &[&AlignedAnalysis]) -> Vec<u64> {
    let mut ks: Vec<u64> = variants
        .iter()
        .flat_map(|a| a.summary.per_k.iter().map(|k| k.k))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// Units moved by the alignment of `a`'s pairs at k: (moved, units, pairs).
fn moved_at(a: &AlignedAnalysis, k: u64) -> Option<(usize, usize, usize)> {
    let records: Vec<_> = a
        .summary
        .pairs
        .iter()
        .filter(|p| p.k == k)
        .filter_map(|p| p.result.alignment)
        .collect();
    (!records.is_empty()).then(|| {
        (
            records.iter().map(|r| r.moved).sum(),
            records.iter().map(|r| r.units).sum(),
            records.len(),
        )
    })
}

/// "stable", "unstable" or "undecided", by the report's stability rule (a single pair against
/// the replicate spread of its network at this scale).
fn stable_word(v: MeanStd, spread: Option<PooledSpread>) -> &'static str {
    match stability(v, spread) {
        Ok(true) => "stable",
        Ok(false) => "unstable",
        Err(_) => "undecided",
    }
}

/// Per analysis and k: each variant's change from the paper's instability, and to what it is
/// owed.
fn credits(m: &ModelResults) -> Vec<String> {
    let name = &m.setup.preset;
    let spread = m.instability_spread();
    let mut out = Vec::new();
    for sparse in [false, true] {
        let variants = ordered(m, sparse);
        let what = if sparse { "IMP subnetworks" } else { "dense" };
        for k in measured_ks(&variants) {
            let Some(base) = unaligned_at(m, sparse, k) else {
                continue;
            };
            let before = base.test_instability.mean;
            let find = |align: Alignment, reestimated: bool| {
                variants.iter().find(|a| {
                    a.align == align
                        && matches!(a.bn_policy, BnPolicy::Reestimate { .. }) == reestimated
                })
            };
            let at = |a: &AlignedAnalysis| a.summary.per_k.iter().find(|x| x.k == k).cloned();
            let mut parts = Vec::new();
            let base_pairs: &[PairRecord] = if sparse {
                m.sparse_at(k, Branch::Imp)
                    .map_or(&[], |a| &a.summary.pairs[..])
            } else {
                m.dense.as_ref().map_or(&[], |d| &d.pairs[..])
            };
            let control = find(Alignment::None, true);
            let bn_only = control.and_then(|a| at(a));
            if let (Some(a), Some(x)) = (control, &bn_only) {
                parts.push(format!(
                    "BN re-estimation alone: {before:.2} → {:.2} pp ({}; mean endpoint error \
                     {:.2}% → {:.2}%)",
                    x.test_instability.mean,
                    stable_word(x.test_instability, spread),
                    endpoint_errors(base_pairs, k).mean,
                    endpoint_errors(&a.summary.pairs, k).mean
                ));
            }
            for align in [Alignment::Weights, Alignment::Activations] {
                let Some(a) = find(align, false) else {
                    continue;
                };
                let Some(x) = at(a) else { continue };
                let moved = moved_at(a, k);
                let label = alignment_label(align, BnPolicy::Interpolate);
                let units = moved.map_or(String::new(), |(mv, u, n)| {
                    format!(
                        ", moved {mv} of {u} units{}",
                        if n > 1 {
                            format!(" over {n} pairs")
                        } else {
                            String::new()
                        }
                    )
                });
                parts.push(format!(
                    "{label} alone: {before:.2} → {:.2} pp{units}",
                    x.test_instability.mean
                ));
                if let Some(both) = find(align, true).and_then(|b| at(b)) {
                    let credit = match (moved, &bn_only) {
                        (Some((0, _, _)), _) => format!(
                            "{label} left every unit in place, so the aligned pair is the \
                             unaligned pair and the whole change is BN re-estimation's"
                        ),
                        (_, Some(b)) => {
                            // The 2 x 2 (alignment x BN re-estimation): main effects and
                            // their interaction add up to the total change.
                            let bn = b.test_instability.mean - before;
                            let al = x.test_instability.mean - before;
                            let total = both.test_instability.mean - before;
                            format!(
                                "as a 2 × 2 (alignment × BN re-estimation), the change of \
                                 {total:+.2} pp is BN re-estimation's {bn:+.2} plus \
                                 {label}'s {al:+.2} plus their interaction {:+.2}",
                                total - bn - al
                            )
                        }
                        (_, None) => "no BN-only control was run, so the change cannot be \
                                      split between alignment and BN re-estimation"
                            .to_string(),
                    };
                    parts.push(format!(
                        "{label} + BN re-estimated: {before:.2} → {:.2} pp ({}); {credit}",
                        both.test_instability.mean,
                        stable_word(both.test_instability, spread)
                    ));
                }
            }
            if parts.is_empty() {
                continue;
            }
            let n = base.test_instability.n;
            out.push(format!(
                "{name}, {what}, k = {k} ({}; the paper's measure {before:.2} pp, {}): {}.",
                if n == 1 {
                    "n = 1: a single pair".to_string()
                } else {
                    format!("n = {n} pairs")
                },
                stable_word(base.test_instability, spread),
                parts.join("; ")
            ));
        }
    }
    out
}

fn across_inits(s: &mut String, m: &ModelResults) {
    let Some(first) = m.across_inits.first() else {
        return;
    };
    let parts: Vec<String> = m
        .across_inits
        .iter()
        .map(|p| {
            let moved = p.result.alignment.map_or(String::new(), |r| {
                format!(" (moved {} of {} units)", r.moved, r.units)
            });
            format!(
                "{}{moved}: {:.2} pp, loss barrier {}, endpoint errors {:.1}% / {:.1}%",
                alignment_label(p.align, p.bn_policy),
                p.result.instability.test,
                p.result
                    .instability
                    .test_loss
                    .map_or("–".into(), |b| format!("{b:.3}")),
                p.result.endpoint_test_errors[0],
                p.result.endpoint_test_errors[1]
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "- {}, two initialisations (seeds {} and {}, the same data order, both trained to the \
         end; one pair, n = 1): {}.",
        m.setup.preset,
        first.init_seeds[0],
        first.init_seeds[1],
        parts.join("; ")
    );
}
