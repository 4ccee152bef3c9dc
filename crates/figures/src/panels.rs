//! From results to panels: one function per figure of the paper, over the helpers of
//! [`crate::figs`].

use results::{
    Alignment, BnPolicy, Branch, Figure, MeanStd, ModelResults, PairRecord, Results, TestSet,
};

use crate::figs::{
    aligned_label, curve_panel, dense_reference, density_axis, instability_panel, k_axis,
    k_position, level_densities, mean_curve, model_label, ms_series, sparse_ks,
};
use crate::plot::{PALETTE, Panel, Series};

/// The panels of `figure`, one or more per network that has its data.
pub fn panels(results: &Results, figure: Figure) -> Vec<Panel> {
    let draw: fn(&ModelResults, String) -> Vec<Panel> = match figure {
        Figure::Fig2 => |m, l| fig2(m, l).into_iter().collect(),
        Figure::Fig3 => |m, l| fig3(m, l).into_iter().collect(),
        Figure::Fig4 => |m, l| fig4(m, l).into_iter().collect(),
        Figure::Fig5 => |m, l| fig5(m, l).into_iter().collect(),
        Figure::Fig6 => |m, l| fig6(m, l).into_iter().collect(),
        Figure::Fig7 => fig7,
        Figure::Fig8 => |m, l| fig8(m, l).into_iter().collect(),
        Figure::AppB => |m, l| appb(m, l).into_iter().collect(),
        Figure::AppC => |m, l| appc(m, l).into_iter().collect(),
        Figure::AppD => |m, l| appd(m, l).into_iter().collect(),
        Figure::AppE => |m, l| appe(m, l).into_iter().collect(),
        Figure::Beyond => beyond,
        Figure::Levels => |m, l| levels(m, l).into_iter().collect(),
        Figure::Layerwise => |m, l| layerwise(m, l).into_iter().collect(),
    };
    results
        .models
        .iter()
        .flat_map(|m| draw(m, model_label(m)))
        .collect()
}

/// Beyond the paper (Paul et al. 2023): test instability between the trained networks of
/// consecutive IMP levels, at the density of the sparser, one line per rewind k.
fn levels(m: &ModelResults, label: String) -> Option<Panel> {
    let links = m.level_link_summaries();
    if links.is_empty() {
        return None;
    }
    let mut p = instability_panel(
        label,
        "% of weights remaining (the sparser level)",
        "test instability between levels (pp)",
    );
    let mut ks: Vec<u64> = links.iter().map(|l| l.k).collect();
    ks.dedup();
    for (i, k) in ks.iter().enumerate() {
        let values: Vec<(f64, MeanStd)> = links
            .iter()
            .filter(|l| l.k == *k)
            .map(|l| ((l.level + 1) as f64, l.test_instability))
            .collect();
        p.series
            .push(ms_series(&format!("rewind k = {k}"), i, &values));
    }
    density_axis(&mut p, &level_densities(m));
    Some(p)
}

/// Beyond the paper: test accuracy against density for layer-wise IMP beside the paper's
/// global IMP, rewound alike (each series starts from its own dense run, level 0).
fn layerwise(m: &ModelResults, label: String) -> Option<Panel> {
    let lw = m.layerwise.first()?;
    let mut p = Panel::new(label, "% of weights remaining", "test accuracy (%)");
    let series = |s: &results::ImpSeries| -> Vec<(f64, MeanStd)> {
        s.levels
            .iter()
            .filter(|l| l.branch == Branch::Imp)
            .map(|l| (l.level as f64, l.test_accuracy))
            .collect()
    };
    if let Some(global) = m.imp_at(lw.k) {
        p.series.push(ms_series(
            &format!("IMP, global (the paper), k = {}", lw.k),
            0,
            &series(global),
        ));
    }
    p.series.push(ms_series(
        &format!("IMP, layer-wise, k = {}", lw.k),
        1,
        &series(lw),
    ));
    density_axis(&mut p, &level_densities(m));
    Some(p)
}

/// Figure 2: the error along the path between two dense children trained from k = 0.
fn fig2(m: &ModelResults, label: String) -> Option<Panel> {
    let d = m.dense.as_ref()?;
    Some(curve_panel(label, d, 0))
}

/// Figure 3: test and train instability against k.
fn fig3(m: &ModelResults, label: String) -> Option<Panel> {
    let d = m.dense.as_ref()?;
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
    Some(p)
}

/// Figure 4: test instability throughout training, one line per k.
fn fig4(m: &ModelResults, label: String) -> Option<Panel> {
    let d = m.dense.as_ref()?;
    let mut p = instability_panel(label, "training iteration", "test instability (pp)");
    for (i, k) in d.per_k.iter().enumerate() {
        let values: Vec<(f64, MeanStd)> =
            k.throughout.iter().map(|(s, v)| (*s as f64, *v)).collect();
        p.series
            .push(ms_series(&format!("k = {}", k.k), i, &values));
    }
    Some(p)
}

/// Figure 5: accuracy against density for IMP and its baselines, rewound to k = 0.
fn fig5(m: &ModelResults, label: String) -> Option<Panel> {
    let series = m.imp_at(0)?;
    let mut p = Panel::new(label, "% of weights remaining", "test accuracy (%)");
    for (i, branch) in Branch::ALL.into_iter().enumerate() {
        // Every branch starts from the dense network (IMP's level 0).
        let mut values: Vec<(f64, MeanStd)> = series
            .levels
            .iter()
            .filter(|l| l.branch == branch || (l.level == 0 && l.branch == Branch::Imp))
            .map(|l| (l.level as f64, l.test_accuracy))
            .collect();
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        if values.len() > 1 || branch == Branch::Imp {
            p.series.push(ms_series(branch.label(), i, &values));
        }
    }
    p.reference = dense_reference(m, TestSet::RunEvaluation);
    density_axis(&mut p, &level_densities(m));
    Some(p)
}

/// Figure 6: the error along the path of sparse IMP subnetworks at k = 0.
fn fig6(m: &ModelResults, label: String) -> Option<Panel> {
    let s = m.sparse_at(0, Branch::Imp)?;
    Some(curve_panel(
        format!("{label}, {:.1}% weights", 100.0 * s.density),
        &s.summary,
        0,
    ))
}

/// Figure 7: sparse instability and accuracy against the rewind k, one panel each.
fn fig7(m: &ModelResults, label: String) -> Vec<Panel> {
    let ks = sparse_ks(m);
    if ks.is_empty() {
        return vec![];
    }
    let mut inst = instability_panel(label.clone(), "rewind iteration k", "test instability (pp)");
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
    acc.reference = dense_reference(m, TestSet::CurveEndpoints);
    k_axis(&mut inst, &ks, m);
    k_axis(&mut acc, &ks, m);
    vec![inst, acc]
}

/// Figure 8: the best accuracy under rewinding against density, beside k = 0.
fn fig8(m: &ModelResults, label: String) -> Option<Panel> {
    if m.imp.is_empty() {
        return None;
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
    p.series
        .push(ms_series("IMP, best rewind k (highest mean)", 0, &best));
    if let Some(s0) = m.imp_at(0) {
        let v: Vec<(f64, MeanStd)> = s0
            .levels
            .iter()
            .filter(|l| l.branch == Branch::Imp)
            .map(|l| (l.level as f64, l.test_accuracy))
            .collect();
        p.series.push(ms_series("IMP, k = 0", 1, &v).dashed());
    }
    p.reference = dense_reference(m, TestSet::RunEvaluation);
    density_axis(&mut p, &level_densities(m));
    Some(p)
}

/// Appendix B: the error along the path of dense children, one line per k.
fn appb(m: &ModelResults, label: String) -> Option<Panel> {
    let d = m.dense.as_ref()?;
    let lines = d.per_k.iter().enumerate().map(|(i, k)| {
        let pairs = d.pairs.iter().filter(|p| p.k == k.k).collect();
        (i, format!("k = {}", k.k), pairs)
    });
    Some(path_panel(label, lines))
}

/// Appendix C: the error along the path of sparse IMP subnetworks, one line per k.
fn appc(m: &ModelResults, label: String) -> Option<Panel> {
    let ks = sparse_ks(m);
    if ks.is_empty() {
        return None;
    }
    let lines = ks.iter().enumerate().filter_map(|(i, k)| {
        let s = m.sparse_at(*k, Branch::Imp)?;
        Some((i, format!("IMP, k = {k}"), s.summary.pairs.iter().collect()))
    });
    Some(path_panel(label, lines))
}

/// Test error along the interpolation path, one mean line (with its std band) per
/// `(colour index, name, pairs)`.
fn path_panel<'a>(
    label: String,
    lines: impl Iterator<Item = (usize, String, Vec<&'a PairRecord>)>,
) -> Panel {
    let mut p = Panel::new(label, "interpolation α", "test error (%)");
    p.y_from_zero = true;
    for (i, name, pairs) in lines {
        let (points, std) = mean_curve(&pairs, false);
        p.series
            .push(Series::new(name, PALETTE[i % PALETTE.len()], points).with_band(std));
    }
    p.x_range = Some((0.0, 1.0));
    p
}

/// Appendix D: the L2 distance between dense children against k.
fn appd(m: &ModelResults, label: String) -> Option<Panel> {
    let d = m.dense.as_ref()?;
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
    Some(p)
}

/// Appendix E: the L2 distance between sparse children against the rewind k.
fn appe(m: &ModelResults, label: String) -> Option<Panel> {
    let ks = sparse_ks(m);
    if ks.is_empty() {
        return None;
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
    Some(p)
}

/// One line of a `beyond` panel: the alignment, whether BN statistics are re-estimated, its
/// label and its instabilities by k.
type BeyondRow = (Alignment, bool, String, Vec<(u64, MeanStd)>);

/// Beyond the paper: instability with and without alignment, dense and sparse. One colour per
/// alignment in every panel, dashed where BN statistics are re-estimated; wider lines first,
/// so a line that lies on another still shows around it.
fn beyond(m: &ModelResults, label: String) -> Vec<Panel> {
    let mut out = Vec::new();
    if m.aligned.is_empty() {
        return out;
    }
    for sparse in [false, true] {
        let paper: Vec<(u64, MeanStd)> = if sparse {
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
        };
        let mut rows: Vec<BeyondRow> = vec![(
            Alignment::None,
            false,
            "no alignment (the paper)".into(),
            paper,
        )];
        for a in m.aligned.iter().filter(|a| a.sparse == sparse) {
            rows.push((
                a.align,
                matches!(a.bn_policy, BnPolicy::Reestimate { .. }),
                aligned_label(a),
                a.summary
                    .per_k
                    .iter()
                    .map(|k| (k.k, k.test_instability))
                    .collect(),
            ));
        }
        rows.sort_by_key(|r| (alignment_order(r.0), r.1));
        let mut ks: Vec<u64> = rows.iter().flat_map(|r| r.3.iter().map(|x| x.0)).collect();
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
        let count = rows.len() as u32;
        for (i, (align, reestimated, name, values)) in rows.into_iter().enumerate() {
            let v: Vec<(f64, MeanStd)> = values
                .into_iter()
                .map(|(k, v)| (k_position(k, m), v))
                .collect();
            let series = ms_series(&name, alignment_order(align), &v).width(2 + count - i as u32);
            p.series
                .push(if reestimated { series.dashed() } else { series });
        }
        k_axis(&mut p, &ks, m);
        out.push(p);
    }
    out
}

/// The colour index of an alignment, the same in every panel.
fn alignment_order(a: Alignment) -> usize {
    match a {
        Alignment::None => 0,
        Alignment::Weights => 1,
        Alignment::Activations => 2,
    }
}
