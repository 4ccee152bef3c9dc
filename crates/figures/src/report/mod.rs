//! `REPORT.md`: the figures, the measured numbers beside the paper's with a verdict on each
//! finding, and what was run.

mod beyond;
mod findings;
mod layerwise;
mod levels;
mod rules;
#[cfg(test)]
mod tests;

use std::fmt::Write;

use results::{Branch, MeanStd, Results};

use crate::figs::{figure_name, model_label};

use findings::findings;
use findings::instability_at;
use rules::{matching, stable_bound};

pub use results::STABLE_PP;

/// A shortened scale's length counts as nearly trained when a run of a multiple of it gains
/// at most this many accuracy points.
pub const LENGTH_SHORTFALL_PP: f64 = 1.0;

/// A mean with its sample std, n and 95% interval, for tables: "4.37 (n = 1)",
/// "58.12 ± 0.30 [57.4, 58.9] (n = 3)".
fn pm(v: MeanStd) -> String {
    if v.n == 0 || !v.mean.is_finite() {
        "–".into()
    } else if let Some(ci) = v.ci95.filter(|_| v.n > 1) {
        format!(
            "{:.2} ± {:.2} [{:.2}, {:.2}] (n = {})",
            v.mean, v.std, ci.lo, ci.hi, v.n
        )
    } else {
        format!("{:.2} (n = {})", v.mean, v.n)
    }
}

/// A mean in running text with its unit, n, sample std and 95% interval; n = 1 is flagged as a
/// single `what` (pair, network): "4.37 pp (n = 1: a single pair)", "82.52 ± 0.57% (n = 2
/// networks, sample std; 95% t-interval [77.4, 87.6])".
pub(crate) fn with_n(v: MeanStd, unit: &str, what: &str) -> String {
    let space = if unit == "%" { "" } else { " " };
    if v.n == 0 || !v.mean.is_finite() {
        "–".into()
    } else if v.n == 1 {
        format!("{:.2}{space}{unit} (n = 1: a single {what})", v.mean)
    } else {
        let plural = if what == "child" {
            "children".to_string()
        } else {
            format!("{what}s")
        };
        let ci = v.ci95.map_or(String::new(), |ci| {
            format!("; 95% t-interval [{:.2}, {:.2}]", ci.lo, ci.hi)
        });
        format!(
            "{:.2} ± {:.2}{space}{unit} (n = {} {plural}, sample std{ci})",
            v.mean, v.std, v.n
        )
    }
}

fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The report as Markdown.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Reproduction report: Linear Mode Connectivity and the Lottery Ticket Hypothesis\n"
    );
    let _ = writeln!(s, "- **Scale: {}**", r.config.scale.description());
    let _ = writeln!(
        s,
        "- Backend: {}; git commit: `{}`; {} runs; training time of all runs: {}; wall time of this invocation (finished runs are reused): {}",
        r.backend,
        r.git_commit,
        r.runs,
        duration(r.compute_seconds),
        duration(r.wall_seconds)
    );
    let _ = writeln!(
        s,
        "- BN statistics along the interpolation path: {:?} (paper: interpolated)",
        r.config.bn_policy
    );
    if !r.time.is_empty() {
        let _ = writeln!(
            s,
            "\n## Where the time went\n\nCompute time recorded by each run (wall time while it \
             ran; runs of several workers overlap), by network and kind of run:\n"
        );
        let _ = writeln!(
            s,
            "| network | runs | count | time | share |\n|---|---|---|---|---|"
        );
        let total = r.compute_seconds.max(1e-9);
        for t in &r.time {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1}% |",
                t.network,
                t.kind,
                t.runs,
                duration(t.seconds),
                100.0 * t.seconds / total
            );
        }
    }
    let _ = writeln!(s, "\n## Data actually used\n");
    let _ = writeln!(s, "| network | paper's data | data used |\n|---|---|---|");
    for m in &r.models {
        let p = m.setup.network.paper.as_ref();
        let used = match m.setup.design.substituted_for {
            Some(_) => format!("**{} (substituted)**", m.setup.network.dataset.title()),
            None => m.setup.network.dataset.title().to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            model_label(m),
            p.map_or("– (not in the paper)", |p| p.dataset.title()),
            used
        );
    }
    let _ = writeln!(s, "\n## What differs from the paper at this scale\n");
    for m in &r.models {
        if m.setup.design.cuts.is_empty() {
            let _ = writeln!(s, "- {}: nothing (Table 1 as published)", m.setup.preset);
        } else {
            let _ = writeln!(
                s,
                "- **{}**: {}",
                m.setup.preset,
                m.setup.design.cuts.join("; ")
            );
        }
    }
    let _ = writeln!(s, "\n## Measured beside the paper\n");
    let _ = writeln!(
        s,
        "How verdicts are decided (SPEC §7). Every mean is over distinct networks (a child \
         trained with the parents' own data order is the parent continued and counts once) and \
         is given as mean ± sample std [95% Student-t interval] (n). Instability is in \
         percentage points of test error; \"stable\" means below {STABLE_PP} points, decided \
         only when the interval lies on one side of {STABLE_PP}; a single pair is decided only \
         when it lies farther from {STABLE_PP} than the 95% margin of the replicate spread \
         measured at this scale (pooled over every k with two or more pairs), else undecided. \
         \"Matching\" (the paper's rule, both at this scale's training length): a subnetwork's \
         mean test accuracy at least the dense reference's mean minus its std, decided when the \
         95% Welch interval of sparse − dense lies on one side of minus that std. The dense \
         reference pools every distinct full-length dense network of the recipe (the children \
         of every dense k). Both sides of a comparison are on one test set: the interpolation \
         endpoints when the subnetwork has sparse instability pairs, else the IMP level runs \
         against the dense IMP runs. Undecided verdicts give the n the observed spread would \
         need. Where one init has three or more children per k, every pair of them is a pair \
         (the paper's 3 x 3 convention); pairs that share a child are correlated, so their \
         interval is narrower than one over independent pairs would be. \"Onset\" is the bound the measured k give (after the last k decided unstable, \
         at or before the first k from which every k is decided stable), compared as an \
         interval with the paper's own grid bound.\n"
    );
    let _ = writeln!(
        s,
        "| network | accuracy (%) | paper | instability at k=0 | paper: stable at k=0 | onset of stability (measured bound) | paper | IMP k=0 at target density | matching | paper |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for m in &r.models {
        let p = m.setup.network.paper.as_ref();
        let imp0 = matching(m, 0, Branch::Imp);
        let bound = match stable_bound(m) {
            Some((None, Some(k))) => format!("≤ {k}"),
            Some((Some(a), Some(b))) => format!("in ({a}, {b}]"),
            Some((Some(a), None)) => format!("> {a}"),
            Some((None, None)) => "undecided at every k".into(),
            None => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.setup.preset,
            m.dense_accuracy.map_or("–".into(), pm),
            p.map_or("–".into(), |p| format!(
                "{} ± {}",
                p.accuracy.0, p.accuracy.1
            )),
            instability_at(m, 0).map_or("–".into(), pm),
            p.map_or("–", |p| yes(p.stable_at_init)),
            bound,
            p.map_or("–", |p| &p.stable_from),
            imp0.as_ref().map_or("–".into(), |c| {
                format!(
                    "{} at {:.1}%",
                    pm(c.comparison.subnetwork),
                    100.0 * m.setup.design.target_density()
                )
            }),
            imp0.as_ref().map_or("–".into(), |c| match c.decided {
                Ok(b) => yes(b).to_string(),
                Err(_) => "undecided".to_string(),
            }),
            p.map_or("–", |p| yes(p.imp_matching_at_init)),
        );
    }
    let _ = writeln!(s, "\n## Checks of the scale\n");
    let mut any = false;
    for m in &r.models {
        if let Some(c) = m.length_check {
            any = true;
            let gap = c.shortfall();
            let _ = writeln!(
                s,
                "- {}: the dense network reaches {:.2}% after {} iterations and {:.2}% after {} \
                 (same init and data order, n = 1 each, on the training runs' own test \
                 evaluation): {}.",
                m.setup.preset,
                c.test_accuracy,
                c.steps,
                c.long_test_accuracy,
                c.long_steps,
                if gap <= LENGTH_SHORTFALL_PP {
                    format!(
                        "within {LENGTH_SHORTFALL_PP} point of the longer run: nearly trained \
                         at this length"
                    )
                } else {
                    format!(
                        "{gap:.2} points short of the longer run. \"Matching\" is decided at \
                         this scale's length, dense and sparse alike (SPEC §7); whether \
                         subnetworks gain as much as the dense network from longer training \
                         is not measured here, so a verdict at this length need not hold at \
                         the longer one"
                    )
                }
            );
        }
    }
    if !any {
        let _ = writeln!(s, "- No length check was run at this scale.");
    }
    for m in &r.models {
        let pairs = |per_k: &[results::KSummary]| per_k.iter().map(|k| k.test_instability.n).max();
        let most = m
            .dense
            .iter()
            .filter_map(|d| pairs(&d.per_k))
            .chain(m.sparse.iter().filter_map(|a| pairs(&a.summary.per_k)))
            .max()
            .unwrap_or(0);
        let _ = match m.instability_spread() {
            Some(p) => writeln!(
                s,
                "- {}: replicate spread of test instability {:.2} pp (sample std pooled over \
                 every k with two or more pairs, {} df): a single pair is decided only farther \
                 than ± {:.2} pp from {STABLE_PP}.",
                m.setup.preset,
                p.std,
                p.df,
                p.margin()
            ),
            None => writeln!(
                s,
                "- {}: no replicate spread of test instability at this scale (at most {most} \
                 pair per k): no instability verdict of a single pair is decided.",
                m.setup.preset
            ),
        };
    }
    let _ = writeln!(
        s,
        "\n## Findings of the paper, checked\n\nEach line: what was measured (n, sample std, \
         95% interval), what the paper found for this network (from its registry entry), and a \
         verdict: agrees, differs, or undecided with the reason.\n"
    );
    for m in &r.models {
        for line in findings(m) {
            let _ = writeln!(s, "- {line}");
        }
    }
    let _ = writeln!(s, "\n### Per k\n");
    for m in &r.models {
        let _ = writeln!(s, "**{}**\n", model_label(m));
        if let Some(d) = &m.dense {
            let _ = writeln!(
                s,
                "| k | test instability | train instability | L2 (conv+linear) | child test accuracy (%) |\n|---|---|---|---|---|"
            );
            for k in &d.per_k {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    k.k,
                    pm(k.test_instability),
                    k.train_instability.map_or("–".into(), pm),
                    pm(k.l2_prunable),
                    pm(k.child_test_accuracy)
                );
            }
        }
        if !m.sparse.is_empty() {
            let _ = writeln!(
                s,
                "\n| rewind k | branch | density | test instability | child test accuracy (%) |\n|---|---|---|---|---|"
            );
            for a in &m.sparse {
                if let Some(k) = a.summary.per_k.first() {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.2}% | {} | {} |",
                        a.k,
                        a.branch,
                        100.0 * a.density,
                        pm(k.test_instability),
                        pm(k.child_test_accuracy)
                    );
                }
            }
        }
        for series in &m.imp {
            let _ = writeln!(
                s,
                "\nIMP, rewind k = {}: {}",
                series.k,
                series
                    .levels
                    .iter()
                    .map(|l| format!(
                        "{} {:.1}%: {}",
                        l.branch,
                        100.0 * l.density,
                        pm(l.test_accuracy)
                    ))
                    .collect::<Vec<_>>()
                    .join(" · ")
            );
        }
        let _ = writeln!(s);
    }
    beyond::section(&mut s, r);
    levels::section(&mut s, r);
    layerwise::section(&mut s, r);
    let _ = writeln!(s, "## Figures\n");
    for &f in &r.config.figures {
        let _ = writeln!(
            s,
            "### {}\n\n![{}]({}.png)\n",
            figure_name(f),
            f.as_str(),
            f.as_str()
        );
    }
    s
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
