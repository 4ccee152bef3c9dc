//! `REPORT.md`: the figures, the measured numbers beside the paper's, and what was run.

use std::fmt::Write;

use results::{Branch, KSummary, MeanStd, ModelResults, Results};

use crate::figs::{aligned_label, alignment_label, figure_name, model_label};

/// The paper's threshold for "stable": instability below 2 percentage points.
pub const STABLE_PP: f64 = 2.0;

/// A shortened scale's length counts as nearly trained when a run of a multiple of it gains
/// at most this many accuracy points.
pub const LENGTH_SHORTFALL_PP: f64 = 1.0;

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
    let level = m.imp_at(k)?.level(m.setup.design.levels, Branch::Imp)?;
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
            p.map_or("?", |p| p.dataset.title()),
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
        "Instability in percentage points of test error; \"stable\" means below {STABLE_PP} points; \
         \"matching\" means IMP's test accuracy at the target density is at least the dense \
         network's mean minus one standard deviation; the dense accuracy is over the networks \
         trained from k = 0 (every init and data order).\n"
    );
    let _ = writeln!(
        s,
        "| network | accuracy (%) | paper | instability at k=0 | paper: stable at k=0 | stable from k | paper | IMP k=0 at target density | matching | paper | matching from k | paper |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for m in &r.models {
        let p = m.setup.network.paper.as_ref();
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
            p.map_or("–", |p| &p.stable_from),
            imp0.map_or("–".into(), |(a, _)| {
                format!(
                    "{} at {:.1}%",
                    pm(a),
                    100.0 * m.setup.design.target_density()
                )
            }),
            imp0.map_or("–", |(_, ok)| yes(ok)),
            p.map_or("–", |p| yes(p.imp_matching_at_init)),
            matching_from(m).map_or("none measured".into(), |k| k.to_string()),
            p.map_or("–", |p| &p.matching_from),
        );
    }
    let _ = writeln!(s, "\n## Findings of the paper, checked\n");
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
    beyond(&mut s, r);
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

fn agrees(measured: bool, paper: bool) -> &'static str {
    if measured == paper {
        "agrees with the paper"
    } else {
        "**differs from the paper**"
    }
}

/// One sentence per claim of SPEC section 5 that this network's results can speak to.
fn findings(m: &ModelResults) -> Vec<String> {
    let name = &m.setup.preset;
    let Some(p) = &m.setup.network.paper else {
        return vec![];
    };
    let mut out = Vec::new();
    if let Some(i0) = instability_at(m, 0) {
        let stable = i0.mean < STABLE_PP;
        out.push(format!(
            "{name}: test instability at k = 0 is {:.2} pp, {} ({}: {}).",
            i0.mean,
            if stable { "stable" } else { "unstable" },
            agrees(stable, p.stable_at_init),
            if p.stable_at_init {
                "stable"
            } else {
                "unstable"
            }
        ));
        if let Some(d) = &m.dense {
            let midpoint_worst = d
                .pairs
                .iter()
                .filter(|x| x.k == 0)
                .filter_map(|x| x.result.curve.worst_test_error())
                .fold(f32::NAN, f32::max);
            if !stable && midpoint_worst.is_finite() {
                out.push(format!(
                    "{name}: the worst test error on the path at k = 0 is {midpoint_worst:.1}% (the paper: close to random guessing, 90% on 10 classes, for its unstable networks)."
                ));
            }
        }
    }
    if let Some(k) = stable_from(m) {
        out.push(format!(
            "{name}: stable (< {STABLE_PP} pp) from k = {k} of {} iterations ({:.1}% of training); the paper: from {}.",
            m.setup.design.total_steps,
            100.0 * k as f64 / m.setup.design.total_steps.max(1) as f64,
            p.stable_from
        ));
    } else if m.dense.is_some() {
        out.push(format!(
            "{name}: not stable at any measured k; the paper: stable from {}.",
            p.stable_from
        ));
    }
    if let Some(c) = m.length_check {
        let gap = c.shortfall();
        out.push(format!(
            "{name}: the dense network reaches {:.2}% after {} iterations and {:.2}% after {} (same init and data order): {}.",
            c.test_accuracy,
            c.steps,
            c.long_test_accuracy,
            c.long_steps,
            if gap <= LENGTH_SHORTFALL_PP {
                format!(
                    "within {LENGTH_SHORTFALL_PP} point of the longer run, so \"matching\" below compares with a nearly trained network"
                )
            } else {
                format!(
                    "{gap:.2} points short of the longer run: the dense network is not yet trained, and \"matching\" below says less than in the paper"
                )
            }
        ));
    }
    if let Some((acc, ok)) = imp_at_target(m, 0) {
        out.push(format!(
            "{name}: IMP without rewinding at {:.1}% density reaches {:.2}% (dense {:.2}%): {} ({}: {}).",
            100.0 * m.setup.design.target_density(),
            acc.mean,
            m.dense_accuracy.map_or(f64::NAN, |d| d.mean),
            if ok { "matching" } else { "not matching" },
            agrees(ok, p.imp_matching_at_init),
            if p.imp_matching_at_init { "matching" } else { "not matching" }
        ));
    }
    let sparse_ks: Vec<u64> = m.imp.iter().map(|s| s.k).filter(|&k| k > 0).collect();
    for k in sparse_ks {
        if let Some((acc, ok)) = imp_at_target(m, k) {
            let inst = m
                .sparse_at(k, Branch::Imp)
                .and_then(|a| a.summary.per_k.first())
                .map(|x| x.test_instability.mean);
            out.push(format!(
                "{name}: IMP rewound to k = {k}: {:.2}%, {}{} (the paper: matching from {}).",
                acc.mean,
                if ok { "matching" } else { "not matching" },
                inst.map_or(String::new(), |i| format!(", sparse instability {i:.2} pp")),
                p.matching_from
            ));
        }
    }
    for a in m.sparse.iter().filter(|a| a.branch != Branch::Imp) {
        if let (Some(k), Some(dense)) = (a.summary.per_k.first(), m.dense_accuracy) {
            let matching = k.child_test_accuracy.mean >= dense.mean - dense.std.max(0.0);
            out.push(format!(
                "{name}: {} at k = {} ({:.1}% density): instability {:.2} pp, accuracy {:.2}%, {} (the paper: neither stable nor matching, Lenet shows a small rise only).",
                a.branch,
                a.k,
                100.0 * a.density,
                k.test_instability.mean,
                k.child_test_accuracy.mean,
                if matching { "matching" } else { "not matching" }
            ));
        }
    }
    out
}

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

/// "Beyond the paper": the instability analyses again with the second child of each pair
/// aligned to the first, in error and in loss.
fn beyond(s: &mut String, r: &Results) {
    if r.models.iter().all(|m| m.aligned.is_empty()) {
        return;
    }
    let _ = writeln!(
        s,
        "## Beyond the paper: instability modulo permutation\n\n\
         The same pairs of children, the second aligned to the first by weight matching \
         (Ainsworth et al. 2023: coordinate descent over each layer's hidden units, every \
         step an exact assignment; BN statistics and pruning masks move with their units) \
         before interpolating, and also with BN statistics re-estimated along the path \
         (REPAIR-style) where the network has BN. Test instability in percentage points of \
         error (the paper's measure) and the test loss barrier (the rise of the mean \
         cross-entropy above the endpoints', the measure of later work).\n"
    );
    for m in r.models.iter().filter(|m| !m.aligned.is_empty()) {
        let _ = writeln!(s, "**{}**\n", model_label(m));
        let variants: Vec<&results::AlignedAnalysis> = m.aligned.iter().collect();
        let mut header = "| analysis | k | no alignment: instability / loss barrier".to_string();
        for a in variants.iter().filter(|a| !a.sparse) {
            let _ = write!(header, " | {}", aligned_label(a));
        }
        let _ = writeln!(s, "{header} |");
        let columns = 3 + variants.iter().filter(|a| !a.sparse).count();
        let _ = writeln!(s, "{}|", "|---".repeat(columns));
        for sparse in [false, true] {
            let mut ks: Vec<u64> = variants
                .iter()
                .filter(|a| a.sparse == sparse)
                .flat_map(|a| a.summary.per_k.iter().map(|k| k.k))
                .collect();
            ks.sort_unstable();
            ks.dedup();
            for k in ks {
                let base = unaligned_at(m, sparse, k);
                let mut line = format!(
                    "| {} | {k} | {}",
                    if sparse { "IMP subnetworks" } else { "dense" },
                    base.map_or("–".into(), |b| format!(
                        "{} / {}",
                        pm(b.test_instability),
                        barrier(b)
                    ))
                );
                for a in variants.iter().filter(|a| a.sparse == sparse) {
                    let at = a.summary.per_k.iter().find(|x| x.k == k);
                    let _ = write!(
                        line,
                        " | {}",
                        at.map_or("–".into(), |x| format!(
                            "{} / {}",
                            pm(x.test_instability),
                            barrier(x)
                        ))
                    );
                }
                let _ = writeln!(s, "{line} |");
            }
        }
        let _ = writeln!(s);
        for line in beyond_findings(m) {
            let _ = writeln!(s, "- {line}");
        }
        if let Some(first) = m.across_inits.first() {
            let parts: Vec<String> = m
                .across_inits
                .iter()
                .map(|p| {
                    let label = alignment_label(p.align, p.bn_policy);
                    format!(
                        "{label}{}: {:.2} pp, loss barrier {}",
                        moved(p.result.alignment),
                        p.result.instability.test,
                        p.result
                            .instability
                            .test_loss
                            .map_or("–".into(), |b| format!("{b:.3}"))
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "- {}, two initialisations (seeds {} and {}, the same data order, both trained to the end; endpoint test errors {:.1}% and {:.1}%): {}.",
                m.setup.preset,
                first.init_seeds[0],
                first.init_seeds[1],
                first.result.endpoint_test_errors[0],
                first.result.endpoint_test_errors[1],
                parts.join("; ")
            );
        }
        let _ = writeln!(s);
    }
}

/// " (moved 12 of 168 units)" for an aligned pair.
fn moved(record: Option<results::AlignmentRecord>) -> String {
    record.map_or(String::new(), |r| {
        format!(" (moved {} of {} units)", r.moved, r.units)
    })
}

/// What alignment does at k = 0 and at the smallest k where the paper's analysis is stable.
fn beyond_findings(m: &ModelResults) -> Vec<String> {
    let name = &m.setup.preset;
    let mut out = Vec::new();
    for a in &m.aligned {
        let what = if a.sparse { "IMP subnetworks" } else { "dense" };
        for x in &a.summary.per_k {
            let Some(base) = unaligned_at(m, a.sparse, x.k) else {
                continue;
            };
            let (before, after) = (base.test_instability.mean, x.test_instability.mean);
            let verdict = match (before < STABLE_PP, after < STABLE_PP) {
                (false, true) => "unstable without alignment, stable with it",
                (false, false) => "unstable with and without alignment",
                (true, true) => "stable with and without alignment",
                (true, false) => "stable without alignment, **not** with it",
            };
            let records = a
                .summary
                .pairs
                .iter()
                .filter(|p| p.k == x.k)
                .filter_map(|p| p.result.alignment);
            let (mut units, mut count) = (0usize, 0usize);
            let mut moved_units = 0usize;
            for r in records {
                units += r.units;
                moved_units += r.moved;
                count += 1;
            }
            let how = if count == 0 {
                String::new()
            } else {
                format!(
                    " (moved {moved_units} of {units} units{})",
                    if count > 1 {
                        format!(" over {count} pairs")
                    } else {
                        String::new()
                    }
                )
            };
            out.push(format!(
                "{name}, {what}, k = {}: {}{how}: {before:.2} → {after:.2} pp, loss barrier {} → {}; {verdict}.",
                x.k,
                aligned_label(a),
                barrier(base),
                barrier(x),
            ));
        }
    }
    out
}
