//! The outcome of the trials: one row per kind of fault.

/// One kind of fault.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// What was done, in a few words.
    pub fault: String,
    pub trials: usize,
    /// Trials in which the fault really happened (a kill that came after the run ended, or a
    /// full disk with room enough, injected nothing).
    pub injected: usize,
    /// The same command again ended as the undisturbed run did.
    pub recovered: usize,
    /// Refused with one error line naming what is wrong, nothing finished lost.
    pub refused: usize,
    /// Anything else: each one is in `failures`.
    pub lost: usize,
    /// What each lost trial saw.
    pub failures: Vec<String>,
    /// The error lines of refusals, each once.
    pub messages: Vec<String>,
}

impl Row {
    pub fn new(fault: impl Into<String>) -> Row {
        Row {
            fault: fault.into(),
            ..Row::default()
        }
    }

    /// Counts one refusal and keeps its message.
    pub fn refuse(&mut self, line: &str) {
        self.refused += 1;
        self.keep(line);
    }

    /// Keeps an error line (once) without counting a refusal.
    pub fn keep(&mut self, line: &str) {
        if !self.messages.iter().any(|m| m == line) {
            self.messages.push(line.to_string());
        }
    }

    /// Counts one lost trial and says why.
    pub fn lose(&mut self, why: impl Into<String>) {
        self.lost += 1;
        self.failures.push(why.into());
    }
}

/// Every row, with what the trials ran.
#[derive(Debug, Clone)]
pub struct Report {
    pub rows: Vec<Row>,
    pub seconds: f64,
    pub steps: u64,
    pub checkpoint_every: u64,
}

impl Report {
    /// Trials lost over all rows.
    pub fn lost(&self) -> usize {
        self.rows.iter().map(|r| r.lost).sum()
    }

    /// The table of the README's reliability section.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| fault | trials | injected | recovered | refused with one message | lost |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.fault, r.trials, r.injected, r.recovered, r.refused, r.lost
            ));
        }
        out
    }

    /// A few of each row's refusal messages, as a list under the row's name.
    pub fn messages(&self, per_row: usize) -> String {
        let mut out = String::new();
        for r in self.rows.iter().filter(|r| !r.messages.is_empty()) {
            out.push_str(&format!(
                "- {} ({} distinct):
",
                r.fault,
                r.messages.len()
            ));
            for m in r.messages.iter().take(per_row) {
                out.push_str(&format!("  - `{}`\n", m.replace('`', "'")));
            }
        }
        out
    }

    /// Every failure, one per line (empty when nothing was lost).
    pub fn failures(&self) -> String {
        self.rows
            .iter()
            .flat_map(|r| {
                r.failures
                    .iter()
                    .map(move |f| format!("{}: {f}\n", r.fault))
            })
            .collect()
    }
}
