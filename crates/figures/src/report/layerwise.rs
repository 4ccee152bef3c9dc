//! Beyond the paper: layer-wise IMP beside the paper's global IMP, level by level. No claim of
//! the paper to check: the table gives both accuracies over inits and their difference with
//! Welch's 95% interval where both have a spread.

use std::fmt::Write;

use results::{Branch, Difference, Results};

use super::with_n;

pub(super) fn section(s: &mut String, r: &Results) {
    if r.models.iter().all(|m| m.layerwise.is_empty()) {
        return;
    }
    let _ = writeln!(
        s,
        "## Beyond the paper: layer-wise IMP\n\nIMP that prunes every layer by the round's \
         fraction within itself (each layer keeps the same density), beside the paper's global \
         pruning, rewound alike; test accuracy of each level's run at the end of its training \
         (its own evaluation), over inits.\n"
    );
    for m in r.models.iter().filter(|m| !m.layerwise.is_empty()) {
        let _ = writeln!(
            s,
            "**{}**\n\n| rewind k | level | density | global (the paper) | layer-wise | layer-wise − global (95% Welch) |\n|---|---|---|---|---|---|",
            m.setup.preset
        );
        for lw in &m.layerwise {
            let global = m.imp_at(lw.k);
            for l in lw.levels.iter().filter(|l| l.branch == Branch::Imp) {
                let g = global.and_then(|g| g.level(l.level, Branch::Imp));
                let difference = g
                    .and_then(|g| Difference::welch(&l.test_accuracy, &g.test_accuracy))
                    .map_or("–".to_string(), |d| {
                        format!("{:+.2} [{:.2}, {:.2}]", d.value, d.ci95.lo, d.ci95.hi)
                    });
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.1}% | {} | {} | {difference} |",
                    lw.k,
                    l.level,
                    100.0 * l.density,
                    g.map_or("–".to_string(), |g| with_n(
                        g.test_accuracy,
                        "%",
                        "network"
                    )),
                    with_n(l.test_accuracy, "%", "network"),
                );
            }
        }
        let _ = writeln!(s);
    }
}
