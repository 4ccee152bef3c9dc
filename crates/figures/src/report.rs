//! `REPORT.md`: the figures, the measured numbers beside the paper's, and what was run.

use std::fmt::Write;

use experiments::instability::MeanStd;
use experiments::reproduce::{ModelResults, Results, Scale};

use crate::figs::{figure_name, model_label};
use crate::paper;

/// The paper's threshold for "stable": instability below 2 percentage points.
pub const STABLE_PP: f64 = 2.0;

fn pm(v: MeanStd) -> String {
    if v.n == 0 || !v.mean.is_finite() {
        "–".into()
    } else if v.n == 1 {
        format!("{:.2}", v.mean)
    } else {
        format!("{:.2} ± {:.2}", v.mean, v.std)
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

/// Test instability at k (dense analysis).
fn instability_at(m: &ModelResults, k: u64) -> Option<MeanStd> {
    m.dense
        .as_ref()?
        .per_k
        .iter()
        .find(|x| x.k == k)
        .map(|x| x.test_instability)
}

/// The first k from which every measured k is stable.
fn stable_from(m: &ModelResults) -> Option<u64> {
    let d = m.dense.as_ref()?;
    let mut first = None;
    for k in d.per_k.iter().rev() {
        if k.test_instability.mean < STABLE_PP {
            first = Some(k.k);
        } else {
            break;
        }
    }
    first
}

/// IMP accuracy at the target density for rewind k, and whether it is matching.
fn imp_at_target(m: &ModelResults, k: u64) -> Option<(MeanStd, bool)> {
    let series = m.imp.iter().find(|s| s.k == k)?;
    let level = series
        .levels
        .iter()
        .find(|l| l.level == m.setup.levels && l.branch == "imp")?;
    let dense = m.dense_accuracy?;
    let tolerance = if dense.std.is_finite() {
        dense.std
    } else {
        0.0
    };
    Some((
        level.test_accuracy,
        level.test_accuracy.mean >= dense.mean - tolerance,
    ))
}

fn matching_from(m: &ModelResults) -> Option<u64> {
    let mut ks: Vec<u64> = m.imp.iter().map(|s| s.k).collect();
    ks.sort_unstable();
    ks.into_iter()
        .find(|&k| imp_at_target(m, k).is_some_and(|(_, ok)| ok))
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn scale_words(scale: Scale) -> &'static str {
    match scale {
        Scale::Smoke => {
            "smoke: a pipeline check in minutes; the numbers say nothing about the paper's claims"
        }
        Scale::Quick => {
            "quick: a few hours on a 2-core CPU; Lenet at full length, the conv nets shortened and narrowed (cuts below)"
        }
        Scale::Paper => "paper: Table 1 exactly (3 inits x 3 data orders, every k)",
    }
}

/// The report as Markdown.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Reproduction report: Linear Mode Connectivity and the Lottery Ticket Hypothesis\n"
    );
    let _ = writeln!(s, "- **Scale: {}**", scale_words(r.config.scale));
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
    let _ = writeln!(s, "\n## Data actually used\n");
    let _ = writeln!(s, "| network | paper's data | data used |\n|---|---|---|");
    for m in &r.models {
        let p = paper::row(&m.setup.preset);
        let used = match m.setup.substituted_for {
            Some(_) => format!("**{} (substituted)**", m.setup.recipe.data.dataset),
            None => m.setup.recipe.data.dataset.to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            model_label(m),
            p.map_or("?", |p| p.dataset),
            used
        );
    }
    let _ = writeln!(s, "\n## What differs from the paper at this scale\n");
    for m in &r.models {
        if m.setup.cuts.is_empty() {
            let _ = writeln!(s, "- {}: nothing (Table 1 as published)", m.setup.preset);
        } else {
            let _ = writeln!(s, "- **{}**: {}", m.setup.preset, m.setup.cuts.join("; "));
        }
    }
    let _ = writeln!(s, "\n## Measured beside the paper\n");
    let _ = writeln!(
        s,
        "Instability in percentage points of test error; \"stable\" means below {STABLE_PP} points; \
         \"matching\" means IMP's test accuracy at the target density is at least the dense \
         network's mean minus one standard deviation (with one init the deviation is 0).\n"
    );
    let _ = writeln!(
        s,
        "| network | accuracy (%) | paper | instability at k=0 | paper: stable at k=0 | stable from k | paper | IMP k=0 at target density | matching | paper | matching from k | paper |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for m in &r.models {
        let p = paper::row(&m.setup.preset);
        let imp0 = imp_at_target(m, 0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.setup.preset,
            m.dense_accuracy.map_or("–".into(), pm),
            p.map_or("–".into(), |p| format!(
                "{} ± {}",
                p.accuracy.0, p.accuracy.1
            )),
            instability_at(m, 0).map_or("–".into(), pm),
            p.map_or("–", |p| yes(p.stable_at_init)),
            stable_from(m).map_or("none measured".into(), |k| k.to_string()),
            p.map_or("–", |p| p.stable_from),
            imp0.map_or("–".into(), |(a, _)| {
                format!("{} at {:.1}%", pm(a), 100.0 * m.setup.target_density())
            }),
            imp0.map_or("–", |(_, ok)| yes(ok)),
            p.map_or("–", |p| yes(p.imp_matching_at_init)),
            matching_from(m).map_or("none measured".into(), |k| k.to_string()),
            p.map_or("–", |p| p.matching_from),
        );
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
