//! `REPORT.md`: the figures, the measured numbers beside the paper's with a verdict on each
//! finding, and what was run.

mod beyond;
mod findings;
#[cfg(test)]
mod tests;

use std::fmt::Write;

use results::{Branch, MeanStd, Results};

use crate::figs::{figure_name, model_label};

use findings::findings;
use findings::{instability_at, matching, stable_bound, subnetwork_accuracy};

/// The paper's threshold for "stable": instability below 2 percentage points.
pub const STABLE_PP: f64 = 2.0;

/// A shortened scale's length counts as nearly trained when a run of a multiple of it gains
/// at most this many accuracy points.
pub const LENGTH_SHORTFALL_PP: f64 = 1.0;

/// A mean with its spread and n, for tables: "4.37 (n = 1)", "58.12 ± 0.30 (n = 3)".
fn pm(v: MeanStd) -> String {
    if v.n == 0 || !v.mean.is_finite() {
        "–".into()
    } else if v.n == 1 {
        format!("{:.2} (n = 1)", v.mean)
    } else {
        format!("{:.2} ± {:.2} (n = {})", v.mean, v.std, v.n)
    }
}

/// A mean in running text with its unit and n; n = 1 is flagged as a single `what` (pair,
/// child): "4.37 pp (n = 1: a single pair)", "82.52 ± 0.57% (n = 2 children)".
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
        format!(
            "{:.2} ± {:.2}{space}{unit} (n = {} {plural})",
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
            Some(_) => format!("**{} (substituted)**", m.setup.network.dataset),
            None => m.setup.network.dataset.to_string(),
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
        "Instability in percentage points of test error; \"stable\" means below {STABLE_PP} \
         points. \"Matching\" means a subnetwork's mean test accuracy is at least the dense \
         network's mean minus one standard deviation. The dense accuracy is the mean over the \
         children trained from k = 0 (every init and data order); a subnetwork's accuracy is the \
         mean of the children of its sparse instability pairs (the very runs whose instability \
         is reported; the IMP curves of Figures 5 and 8 use the IMP level runs). Every mean \
         gives its n; n = 1 is a single pair or child, with no spread to judge noise by. \
         \"Stable from\" is the bound the measured k give: the onset lies after the last \
         unstable and at or before the first stable k.\n"
    );
    let _ = writeln!(
        s,
        "| network | accuracy (%) | paper | instability at k=0 | paper: stable at k=0 | onset of stability (measured bound) | paper | IMP k=0 at target density | matching | paper |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for m in &r.models {
        let p = m.setup.network.paper.as_ref();
        let imp0 = subnetwork_accuracy(m, 0, Branch::Imp);
        let bound = match stable_bound(m) {
            Some((None, Some(k))) => format!("{k} (stable at every measured k)"),
            Some((Some(a), Some(b))) => format!("in ({a}, {b}]"),
            Some((Some(a), None)) => format!("> {a} (never stable)"),
            _ => "–".into(),
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
            imp0.map_or("–".into(), |a| {
                format!(
                    "{} at {:.1}%",
                    pm(a),
                    100.0 * m.setup.design.target_density()
                )
            }),
            imp0.map_or("–".into(), |a| match matching(m, a) {
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
                 (same init and data order, n = 1 each): {}.",
                m.setup.preset,
                c.test_accuracy,
                c.steps,
                c.long_test_accuracy,
                c.long_steps,
                if gap <= LENGTH_SHORTFALL_PP {
                    format!(
                        "within {LENGTH_SHORTFALL_PP} point of the longer run, so \"matching\" \
                         compares with a nearly trained network"
                    )
                } else {
                    format!(
                        "{gap:.2} points short of the longer run: the dense network is not \
                         trained, so a subnetwork below it is \"not matching\" (assuming \
                         longer training lifts a subnetwork no more than the dense network, \
                         which no run here measures), and one above it is \"matching\" only \
                         if it also reaches the dense mean plus those {gap:.2} points (else \
                         undecided)"
                    )
                }
            );
        }
    }
    if !any {
        let _ = writeln!(s, "- No length check was run at this scale.");
    }
    let _ = writeln!(
        s,
        "\n## Findings of the paper, checked\n\nEach line: what was measured (with n), what the \
         paper found for this network (from its registry entry), and a verdict: agrees, \
         differs, or undecided with the reason.\n"
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
