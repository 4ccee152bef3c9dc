//! The per-run progress bar (hidden unless asked for).

use super::Trainer;

impl Trainer {
    pub(super) fn progress_bar(&self, from: u64, until: u64) -> indicatif::ProgressBar {
        if !self.show_progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(until);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(self.config.recipe.name.clone());
        bar.set_position(from);
        bar.reset_eta();
        bar
    }
}
