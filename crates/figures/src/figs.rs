//! From results to panels: one function per figure of the paper.

use std::path::Path;

use results::{
    AlignedAnalysis, Alignment, BnPolicy, Branch, Figure, InstabilitySummary, KUnit, MeanStd,
    ModelResults, PairRecord, Results,
};

use crate::Result;
use crate::plot::{PALETTE, Panel, Reference, Series, TitleLayout, render};
use crate::report::STABLE_PP;

/// Title of a network's panel: what was trained, on what.
pub fn model_label(m: &ModelResults) -> String {
    let s = &m.setup;
    let n = &s.network;
    let data = match s.design.substituted_for {
        Some(paper) => format!("{} for {paper}", n.dataset),
        None => n.dataset.to_string(),
    };
    format!(
        "{} ({}, {data}, {} it)",
        n.title, n.model, s.design.total_steps
    )
}

fn mean_curve(pairs: &[&PairRecord], train: bool) -> (Vec<(f64, f64)>, Vec<f64>) {
    let Some(first) = pairs.first() else {
        return (vec![], vec![]);
    };
    let n = first.result.curve.points.len();
    let mut points = Vec::new();
    let mut std = Vec::new();
    for i in 0..n {
        let values: Option<Vec<f64>> = pairs
            .iter()
            .map(|p| {
                let pt = p.result.curve.points.get(i)?;
                if train {
                    pt.train_error.map(f64::from)
                } else {
                    Some(f64::from(pt.test_error))
                }
            })
            .collect();
        let Some(values) = values else {
            return (vec![], vec![]);
        };
        let ms = MeanStd::of(&values);
        points.push((f64::from(first.result.curve.points[i].alpha), ms.mean));
        std.push(ms.std);
    }
    (points, std)
}

fn curve_panel(title: String, summary: &InstabilitySummary, k: u64) -> Panel {
    let mut panel = Panel::new(title, "interpolation α", "error (%)");
    panel.y_from_zero = true;
    let pairs: Vec<&PairRecord> = summary.pairs.iter().filter(|p| p.k == k).collect();
    for (i, (train, name)) in [(false, "test"), (true, "train")].into_iter().enumerate() {
        let (points, std) = mean_curve(&pairs, train);
        if !points.is_empty() {
            panel
                .series
                .push(Series::new(name, PALETTE[i], points).with_std(std));
        }
    }
    panel.x_range = Some((0.0, 1.0));
    panel
}

/// Ticks at positions 0, 1, 2, ... labelled in order (pruning levels, evenly spaced in log
/// density).
fn indexed_ticks(panel: &mut Panel, labels: Vec<String>) {
    let n = labels.len();
    panel.x_ticks = Some(
        labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as f64, l))
            .collect(),
    );
    panel.x_range = Some((-0.3, n as f64 - 0.7));
}

/// Where k sits on a k axis: `log10(1 + k)` in iterations (the paper's log axis, with k = 0
/// at its left end), or k in epochs on a linear axis for the ImageNet networks (as the paper).
fn k_position(k: u64, m: &ModelResults) -> f64 {
    if m.setup.network.k_unit == KUnit::Epochs {
        k as f64 / m.setup.design.iterations_per_epoch.max(1) as f64
    } else {
        (1.0 + k as f64).log10()
    }
}

/// The k axis: proportional (see [`k_position`]), ticks at the measured k.
fn k_axis(panel: &mut Panel, ks: &[u64], m: &ModelResults) {
    let ipe = m.setup.design.iterations_per_epoch.max(1);
    let epochs = m.setup.network.k_unit == KUnit::Epochs;
    panel.x_desc = if epochs {
        panel
            .x_desc
            .replace("iterations", "epochs")
            .replace("iteration", "epoch")
    } else if let Some(open) = panel.x_desc.strip_suffix(')') {
        format!("{open}, log scale of 1 + k)")
    } else {
        format!("{} (log scale of 1 + k)", panel.x_desc)
    };
    let label = |k: u64| {
        if epochs {
            let e = k as f64 / ipe as f64;
            if e.fract() == 0.0 {
                format!("{e}")
            } else {
                format!("{e:.2}")
            }
        } else {
            k.to_string()
        }
    };
    panel.x_ticks = Some(ks.iter().map(|&k| (k_position(k, m), label(k))).collect());
}

/// An instability panel: its axis from 0 and the paper's 2-pp threshold.
fn instability_panel(title: String, x: &str, y: &str) -> Panel {
    let mut p = Panel::new(title, x, y);
    p.y_from_zero = true;
    p.threshold = Some((STABLE_PP, format!("stable below {STABLE_PP} pp")));
    p
}

fn ms_series(label: &str, color: usize, values: &[(f64, MeanStd)]) -> Series {
    Series::new(
        label,
        PALETTE[color % PALETTE.len()],
        values.iter().map(|(x, v)| (*x, v.mean)).collect(),
    )
    .with_std(values.iter().map(|(_, v)| v.std).collect())
    .markers()
}

fn dense_reference(m: &ModelResults) -> Option<Reference> {
    m.dense_accuracy.map(|a| Reference {
        label: "dense network".into(),
        value: a.mean,
        std: if a.std.is_finite() { a.std } else { 0.0 },
    })
}

/// Density axis: one position per pruning level, labelled with the % of weights remaining.
/// Levels are geometric in density, so this is the paper's log-density axis with its ticks at
/// the measured densities.
fn density_axis(panel: &mut Panel, densities: &[f64]) {
    let labels = densities
        .iter()
        .map(|d| {
            let pct = 100.0 * d;
            if pct >= 10.0 {
                format!("{pct:.0}")
            } else {
                format!("{pct:.1}")
            }
        })
        .collect();
    indexed_ticks(panel, labels);
}

/// Density of each IMP level (index = level) of a network.
fn level_densities(m: &ModelResults) -> Vec<f64> {
    let mut out: Vec<(usize, f64)> = m
        .imp
        .iter()
        .flat_map(|s| s.levels.iter().filter(|l| l.branch == Branch::Imp))
        .map(|l| (l.level, l.density))
        .collect();
    out.sort_by_key(|x| x.0);
    out.dedup_by_key(|x| x.0);
    out.into_iter().map(|x| x.1).collect()
}

fn sparse_ks(m: &ModelResults) -> Vec<u64> {
    let mut ks: Vec<u64> = m.sparse.iter().map(|s| s.k).collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

fn panels(results: &Results, figure: Figure) -> Vec<Panel> {
    let mut out = Vec::new();
    for m in &results.models {
        let label = model_label(m);
        match figure {
            Figure::Fig2 => {
                if let Some(d) = &m.dense {
                    out.push(curve_panel(label, d, 0));
                }
            }
            Figure::Fig3 => {
                if let Some(d) = &m.dense {
                    let ks: Vec<u64> = d.per_k.iter().map(|k| k.k).collect();
                    let mut p = instability_panel(label, "k (iterations)", "instability (pp)");
                    let test: Vec<(f64, MeanStd)> = d
                        .per_k
                        .iter()
                        .map(|k| (k_position(k.k, m), k.test_instability))
                        .collect();
                    p.series.push(ms_series("test", 0, &test));
                    let train: Vec<(f64, MeanStd)> = d
                        .per_k
                        .iter()
                        .filter_map(|k| k.train_instability.map(|t| (k_position(k.k, m), t)))
                        .collect();
                    p.series.push(ms_series("train", 1, &train));
                    k_axis(&mut p, &ks, m);
                    out.push(p);
                }
            }
            Figure::Fig4 => {
                if let Some(d) = &m.dense {
                    let mut p =
                        instability_panel(label, "training iteration", "test instability (pp)");
                    for (i, k) in d.per_k.iter().enumerate() {
                        let values: Vec<(f64, MeanStd)> =
                            k.throughout.iter().map(|(s, v)| (*s as f64, *v)).collect();
                        p.series
                            .push(ms_series(&format!("k = {}", k.k), i, &values));
                    }
                    out.push(p);
                }
            }
            Figure::Fig5 => {
                if let Some(series) = m.imp_at(0) {
                    let mut p = Panel::new(label, "% of weights remaining", "test accuracy (%)");
                    for (i, branch) in Branch::ALL.into_iter().enumerate() {
                        // Every branch starts from the dense network (IMP's level 0).
                        let mut values: Vec<(f64, MeanStd)> = series
                            .levels
                            .iter()
                            .filter(|l| {
                                l.branch == branch || (l.level == 0 && l.branch == Branch::Imp)
                            })
                            .map(|l| (l.level as f64, l.test_accuracy))
                            .collect();
                        values.sort_by(|a, b| a.0.total_cmp(&b.0));
                        if values.len() > 1 || branch == Branch::Imp {
                            p.series.push(ms_series(branch.label(), i, &values));
                        }
                    }
                    p.reference = dense_reference(m);
                    density_axis(&mut p, &level_densities(m));
                    out.push(p);
                }
            }
            Figure::Fig6 => {
                if let Some(s) = m.sparse_at(0, Branch::Imp) {
                    out.push(curve_panel(
                        format!("{label}, {:.1}% weights", 100.0 * s.density),
                        &s.summary,
                        0,
                    ));
                }
            }
            Figure::Fig7 => {
                let ks = sparse_ks(m);
                if ks.is_empty() {
                    continue;
                }
                let mut inst =
                    instability_panel(label.clone(), "rewind iteration k", "test instability (pp)");
                let mut acc = Panel::new(label, "rewind iteration k", "test accuracy (%)");
                for (i, branch) in Branch::ALL.into_iter().enumerate() {
                    let name = branch.label();
                    let at: Vec<(f64, MeanStd, MeanStd)> = ks
                        .iter()
                        .filter_map(|k| {
                            let s = m.sparse_at(*k, branch)?;
                            let ks = s.summary.per_k.first()?;
                            Some((
                                k_position(*k, m),
                                ks.test_instability,
                                ks.child_test_accuracy,
                            ))
                        })
                        .collect();
                    let ins: Vec<(f64, MeanStd)> = at.iter().map(|a| (a.0, a.1)).collect();
                    let ac: Vec<(f64, MeanStd)> = at.iter().map(|a| (a.0, a.2)).collect();
                    inst.series.push(ms_series(name, i, &ins));
                    acc.series.push(ms_series(name, i, &ac));
                }
                acc.reference = dense_reference(m);
                k_axis(&mut inst, &ks, m);
                k_axis(&mut acc, &ks, m);
                out.push(inst);
                out.push(acc);
            }
            Figure::Fig8 => {
                if m.imp.is_empty() {
                    continue;
                }
                let mut p = Panel::new(label, "% of weights remaining", "test accuracy (%)");
                let mut levels: Vec<usize> = m
                    .imp
                    .iter()
                    .flat_map(|s| {
                        s.levels
                            .iter()
                            .filter(|l| l.branch == Branch::Imp)
                            .map(|l| l.level)
                    })
                    .collect();
                levels.sort_unstable();
                levels.dedup();
                let best: Vec<(f64, MeanStd)> = levels
                    .iter()
                    .filter_map(|&level| {
                        m.imp
                            .iter()
                            .filter_map(|s| s.level(level, Branch::Imp))
                            .max_by(|a, b| a.test_accuracy.mean.total_cmp(&b.test_accuracy.mean))
                            .map(|l| (l.level as f64, l.test_accuracy))
                    })
                    .collect();
                p.series.push(ms_series("IMP, best rewind k", 0, &best));
                if let Some(s0) = m.imp_at(0) {
                    let v: Vec<(f64, MeanStd)> = s0
                        .levels
                        .iter()
                        .filter(|l| l.branch == Branch::Imp)
                        .map(|l| (l.level as f64, l.test_accuracy))
                        .collect();
                    p.series.push(ms_series("IMP, k = 0", 1, &v).dashed());
                }
                p.reference = dense_reference(m);
                density_axis(&mut p, &level_densities(m));
                out.push(p);
            }
            Figure::AppB => {
                if let Some(d) = &m.dense {
                    let mut p = Panel::new(label, "interpolation α", "test error (%)");
                    p.y_from_zero = true;
                    for (i, k) in d.per_k.iter().enumerate() {
                        let pairs: Vec<&PairRecord> =
                            d.pairs.iter().filter(|p| p.k == k.k).collect();
                        let (points, std) = mean_curve(&pairs, false);
                        p.series.push(
                            Series::new(format!("k = {}", k.k), PALETTE[i % PALETTE.len()], points)
                                .with_std(std),
                        );
                    }
                    p.x_range = Some((0.0, 1.0));
                    out.push(p);
                }
            }
            Figure::AppC => {
                let ks = sparse_ks(m);
                if ks.is_empty() {
                    continue;
                }
                let mut p = Panel::new(label, "interpolation α", "test error (%)");
                p.y_from_zero = true;
                for (i, k) in ks.iter().enumerate() {
                    if let Some(s) = m.sparse_at(*k, Branch::Imp) {
                        let pairs: Vec<&PairRecord> = s.summary.pairs.iter().collect();
                        let (points, std) = mean_curve(&pairs, false);
                        p.series.push(
                            Series::new(
                                format!("IMP, k = {k}"),
                                PALETTE[i % PALETTE.len()],
                                points,
                            )
                            .with_std(std),
                        );
                    }
                }
                p.x_range = Some((0.0, 1.0));
                out.push(p);
            }
            Figure::AppD => {
                if let Some(d) = &m.dense {
                    let ks: Vec<u64> = d.per_k.iter().map(|k| k.k).collect();
                    let mut p = Panel::new(label, "k (iterations)", "L2 distance");
                    p.y_from_zero = true;
                    let v: Vec<(f64, MeanStd)> = d
                        .per_k
                        .iter()
                        .map(|k| (k_position(k.k, m), k.l2_prunable))
                        .collect();
                    p.series.push(ms_series("conv and linear weights", 0, &v));
                    let all: Vec<(f64, MeanStd)> = d
                        .per_k
                        .iter()
                        .map(|k| (k_position(k.k, m), k.l2_all))
                        .collect();
                    p.series.push(ms_series("all parameters", 1, &all).dashed());
                    k_axis(&mut p, &ks, m);
                    out.push(p);
                }
            }
            Figure::AppE => {
                let ks = sparse_ks(m);
                if ks.is_empty() {
                    continue;
                }
                let mut p = Panel::new(label, "rewind iteration k", "L2 distance");
                p.y_from_zero = true;
                for (i, branch) in Branch::ALL.into_iter().enumerate() {
                    let v: Vec<(f64, MeanStd)> = ks
                        .iter()
                        .filter_map(|k| {
                            let s = m.sparse_at(*k, branch)?;
                            Some((k_position(*k, m), s.summary.per_k.first()?.l2_prunable))
                        })
                        .collect();
                    p.series.push(ms_series(branch.label(), i, &v));
                }
                k_axis(&mut p, &ks, m);
                out.push(p);
            }
            Figure::Beyond => {
                if m.aligned.is_empty() {
                    continue;
                }
                for sparse in [false, true] {
                    let mut rows: Vec<(String, Vec<(u64, MeanStd)>)> = vec![(
                        "no alignment (the paper)".into(),
                        if sparse {
                            sparse_ks(m)
                                .into_iter()
                                .filter_map(|k| {
                                    let s = m.sparse_at(k, Branch::Imp)?;
                                    Some((k, s.summary.per_k.first()?.test_instability))
                                })
                                .collect()
                        } else {
                            m.dense.as_ref().map_or(vec![], |d| {
                                d.per_k.iter().map(|k| (k.k, k.test_instability)).collect()
                            })
                        },
                    )];
                    for a in m.aligned.iter().filter(|a| a.sparse == sparse) {
                        rows.push((
                            aligned_label(a),
                            a.summary
                                .per_k
                                .iter()
                                .map(|k| (k.k, k.test_instability))
                                .collect(),
                        ));
                    }
                    let mut ks: Vec<u64> =
                        rows.iter().flat_map(|r| r.1.iter().map(|x| x.0)).collect();
                    ks.sort_unstable();
                    ks.dedup();
                    if ks.is_empty() {
                        continue;
                    }
                    let (title, x) = if sparse {
                        (format!("{label}, IMP subnetworks"), "rewind iteration k")
                    } else {
                        (format!("{label}, dense"), "k (iterations)")
                    };
                    let mut p = instability_panel(title, x, "test instability (pp)");
                    for (i, (name, values)) in rows.into_iter().enumerate() {
                        let v: Vec<(f64, MeanStd)> = values
                            .into_iter()
                            .map(|(k, v)| (k_position(k, m), v))
                            .collect();
                        // Aligned lines dashed: where alignment changes nothing they lie on
                        // the paper's.
                        let series = ms_series(&name, i, &v);
                        p.series.push(if i == 0 { series } else { series.dashed() });
                    }
                    k_axis(&mut p, &ks, m);
                    out.push(p);
                }
            }
        }
    }
    out
}

/// How a figure or the report names an aligned analysis.
pub fn aligned_label(a: &AlignedAnalysis) -> String {
    alignment_label(a.align, a.bn_policy)
}

/// "weight matching + BN re-estimated", "no alignment", ...
pub fn alignment_label(align: Alignment, bn_policy: BnPolicy) -> String {
    let align = match align {
        Alignment::None => "no alignment",
        Alignment::Weights => "weight matching",
        Alignment::Activations => "activation matching",
    };
    match bn_policy {
        BnPolicy::Interpolate => align.to_string(),
        BnPolicy::Reestimate { .. } => format!("{align} + BN re-estimated"),
    }
}

/// Renders one figure of `results` to `path` (PNG); returns how its titles were laid out.
pub fn render_figure(results: &Results, figure: Figure, path: &Path) -> Result<Vec<TitleLayout>> {
    let mut panels = panels(results, figure);
    if panels.is_empty() {
        let mut p = Panel::new(
            "no network of this reproduction has data for this figure",
            "",
            "",
        );
        p.series.clear();
        panels.push(p);
    }
    let columns = if figure == Figure::Fig7 { 2 } else { 3 };
    let title = format!(
        "{} (scale: {})",
        figure_name(figure),
        results.config.scale.as_str()
    );
    render(path, &title, &panels, columns)
}

/// "Figure 3: Instability ..." / "Appendix B: ...".
pub fn figure_name(figure: Figure) -> String {
    format!("{}: {}", figure.number(), figure.title())
}

/// The series a figure holds, by panel (for tests and the report).
pub fn series_names(results: &Results, figure: Figure) -> Vec<(String, Vec<String>)> {
    panels(results, figure)
        .into_iter()
        .map(|p| {
            (
                p.title.clone(),
                p.series
                    .iter()
                    .filter(|s| !s.points.is_empty())
                    .map(|s| s.label.clone())
                    .collect(),
            )
        })
        .collect()
}
