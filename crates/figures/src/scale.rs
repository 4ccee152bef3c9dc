//! Where a panel puts its y values: linearly, or on `log(1 + y)`, which keeps 0 at 0 and gives
//! the 0-5 pp that decide stability as much room as 5-100 pp.

/// How a panel's y values are placed on its axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YScale {
    #[default]
    Linear,
    /// `ln(1 + y)`: for instabilities in percentage points, whose decisive values are small.
    Log1p,
}

impl YScale {
    /// The axis position of value `y`.
    pub fn place(self, y: f64) -> f64 {
        match self {
            YScale::Linear => y,
            // Instabilities a little below 0 (noise) stay drawable.
            YScale::Log1p => y.max(-0.5).ln_1p(),
        }
    }

    /// Tick positions over the placed range `[p0, p1]`, with the values they show.
    pub fn ticks(self, p0: f64, p1: f64) -> Vec<(f64, String)> {
        match self {
            YScale::Linear => crate::plot::even_ticks(p0, p1, 8)
                .into_iter()
                .map(|y| (y, crate::plot::trim(y)))
                .collect(),
            YScale::Log1p => {
                // A short axis (all below 10) also gets 0.2, which a long one would crowd.
                let short = p1 < self.place(10.0);
                [0.0, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
                    .into_iter()
                    .filter(|&v| short || v != 0.2)
                    .map(|v| (self.place(v), crate::plot::trim(v)))
                    .filter(|(p, _)| (p0..=p1).contains(p))
                    .collect()
            }
        }
    }

    /// What the axis caption adds.
    pub fn caption(self) -> &'static str {
        match self {
            YScale::Linear => "",
            YScale::Log1p => ", log(1 + y) scale",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::YScale;

    #[test]
    fn log1p_keeps_zero_and_order_and_spreads_small_values() {
        let s = YScale::Log1p;
        assert_eq!(s.place(0.0), 0.0);
        assert!(s.place(1.0) < s.place(2.0) && s.place(2.0) < s.place(100.0));
        // 0-5 pp take at least a third of a 0-100 axis (a linear one gives them 5%).
        assert!(s.place(5.0) / s.place(100.0) > 0.38);
        let labels = |top: f64| -> Vec<String> {
            s.ticks(0.0, s.place(top))
                .into_iter()
                .map(|t| t.1)
                .collect()
        };
        assert_eq!(labels(30.0), ["0", "0.5", "1", "2", "5", "10", "20"]);
        assert_eq!(labels(3.0), ["0", "0.2", "0.5", "1", "2"]);
        assert_eq!(YScale::Linear.place(7.5), 7.5);
    }
}
