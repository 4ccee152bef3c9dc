//! The helpers the per-figure panels share ([`crate::panels`]) and the names of figures,
//! networks and alignments (for the panels and the report).

use results::{
    AlignedAnalysis, Alignment, BnPolicy, Branch, Figure, InstabilitySummary, KUnit, MeanStd,
    ModelResults, PairRecord, STABLE_PP, TestSet,
};

use crate::plot::{PALETTE, Panel, Reference, Series};

/// Title of a network's panel: what was trained, on what.
pub fn model_label(m: &ModelResults) -> String {
    let s = &m.setup;
    let n = &s.network;
    let data = match s.design.substituted_for {
        Some(paper) => format!("{} for {}", n.dataset.title(), paper.title()),
        None => n.dataset.title().to_string(),
    };
    format!(
        "{} ({}, {data}, {} it)",
        n.title, n.model, s.design.total_steps
    )
}

pub(crate) fn mean_curve(pairs: &[&PairRecord], train: bool) -> (Vec<(f64, f64)>, Vec<f64>) {
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
        std.push(ms.ci95.map_or(0.0, |ci| ci.half_width()));
    }
    (points, std)
}

pub(crate) fn curve_panel(title: String, summary: &InstabilitySummary, k: u64) -> Panel {
    let mut panel = Panel::new(title, "interpolation α", "error (%)");
    panel.y_from_zero = true;
    let pairs: Vec<&PairRecord> = summary.pairs.iter().filter(|p| p.k == k).collect();
    for (i, (train, name)) in [(false, "test"), (true, "train")].into_iter().enumerate() {
        let (points, std) = mean_curve(&pairs, train);
        if !points.is_empty() {
            panel
                .series
                .push(Series::new(name, PALETTE[i], points).with_band(std));
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
pub(crate) fn k_position(k: u64, m: &ModelResults) -> f64 {
    if m.setup.network.k_unit == KUnit::Epochs {
        k as f64 / m.setup.design.iterations_per_epoch.max(1) as f64
    } else {
        (1.0 + k as f64).log10()
    }
}

/// The k axis: proportional (see [`k_position`]), ticks at the measured k.
pub(crate) fn k_axis(panel: &mut Panel, ks: &[u64], m: &ModelResults) {
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

/// An instability panel: its axis from 0 on a `log(1 + y)` scale (the decisive values are a
/// few points, the unstable ones up to 100) and the paper's 2-pp threshold.
pub(crate) fn instability_panel(title: String, x: &str, y: &str) -> Panel {
    let mut p = Panel::new(title, x, y);
    p.y_from_zero = true;
    p.y_scale = crate::scale::YScale::Log1p;
    p.threshold = Some((STABLE_PP, format!("stable below {STABLE_PP} pp")));
    p
}

pub(crate) fn ms_series(label: &str, color: usize, values: &[(f64, MeanStd)]) -> Series {
    Series::new(
        label,
        PALETTE[color % PALETTE.len()],
        values.iter().map(|(x, v)| (*x, v.mean)).collect(),
    )
    .with_band(
        values
            .iter()
            .map(|(_, v)| v.ci95.map_or(0.0, |ci| ci.half_width()))
            .collect(),
    )
    .markers()
}

/// The dense reference measured on `test_set`, so that a panel never sets accuracies of two
/// test sets side by side: the pooled dense children for the interpolation endpoints, the
/// dense IMP runs for the level runs.
pub(crate) fn dense_reference(m: &ModelResults, test_set: TestSet) -> Option<Reference> {
    let (a, label) = match test_set {
        TestSet::CurveEndpoints => (
            m.dense_reference()
                .filter(|r| r.test_set == TestSet::CurveEndpoints)?
                .value,
            "dense networks",
        ),
        TestSet::RunEvaluation => (m.dense_imp_runs()?, "dense IMP runs"),
    };
    Some(Reference {
        label: format!("{label} (n = {})", a.n),
        value: a.mean,
        band: a.ci95.map_or(0.0, |ci| ci.half_width()),
    })
}

/// Density axis: one position per pruning level, labelled with the % of weights remaining.
/// Levels are geometric in density, so this is the paper's log-density axis with its ticks at
/// the measured densities.
pub(crate) fn density_axis(panel: &mut Panel, densities: &[f64]) {
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
pub(crate) fn level_densities(m: &ModelResults) -> Vec<f64> {
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

pub(crate) fn sparse_ks(m: &ModelResults) -> Vec<u64> {
    let mut ks: Vec<u64> = m.sparse.iter().map(|s| s.k).collect();
    ks.sort_unstable();
    ks.dedup();
    ks
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

/// "Figure 3: Instability ..." / "Appendix B: ...".
pub fn figure_name(figure: Figure) -> String {
    format!("{}: {}", figure.number(), figure.title())
}
