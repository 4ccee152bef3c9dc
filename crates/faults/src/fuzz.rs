//! Malformed configuration files and command lines, generated at random: a valid config
//! mutated (bytes, lines, values), and command lines drawn from `rewind`'s own vocabulary with
//! bad values. Each must be accepted (and run until a time limit) or refused with one error
//! line; never a panic or a signal.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::process::{Invocation, train_runs};
use crate::{Harness, Reference, Result, Row, io};

/// Time a case may run before it counts as accepted and is stopped.
const LIMIT: Duration = Duration::from_secs(15);

const BAD_VALUES: [&str; 16] = [
    "0",
    "-1",
    "1e999",
    "nan",
    "inf",
    "18446744073709551616",
    "-0.0",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "true",
    "0.5",
    "1e-40",
    "\"12ep-3it\"",
    "\"999999999999999999999it\"",
];

const ARG_VALUES: [&str; 18] = [
    "",
    "0",
    "-1",
    "1e99",
    "abc",
    "nan",
    "3it",
    "0it",
    "1ep",
    "12ep3it",
    "-5it",
    "99999999999999999999it",
    "1.5",
    "lenet",
    "resnet20",
    "x,y",
    "∞",
    "--",
];

const FLAGS: [&str; 18] = [
    "--preset",
    "--steps",
    "--lr",
    "--batch-size",
    "--init-seed",
    "--data-seed",
    "--dataset",
    "--eval-every",
    "--keep",
    "--image-size",
    "--micro-batches",
    "--test-eval-subset",
    "--augmentation",
    "--scale",
    "--models",
    "--jobs",
    "--substitute",
    "--devices",
];

const COMMANDS: [&[&str]; 7] = [
    &["train"],
    &["imp"],
    &["instability"],
    &["reproduce", "--dry-run"],
    &["runs", "show"],
    &["runs", "export"],
    &["presets"],
];

pub fn malformed(h: &Harness, reference: &Reference, n: usize, rng: &mut StdRng) -> Result<Row> {
    let mut row = Row::new(
        "malformed config files (a valid one mutated) and command lines (rewind's flags with \
         bad values), at random",
    );
    if n == 0 {
        return Ok(row);
    }
    let template = config_template(reference)?;
    let dir = h.fresh("malformed")?;
    for i in 0..n {
        row.trials += 1;
        row.injected += 1;
        let store = dir.join(format!("store-{i}"));
        let (invocation, what) = if i % 2 == 0 {
            let (text, how) = mutate_config(&template, rng);
            let file = dir.join(format!("config-{i}.toml"));
            std::fs::write(&file, &text).map_err(|e| io(&file, e))?;
            let args = vec![
                "--no-download".into(),
                "train".into(),
                "--config".into(),
                file.display().to_string(),
                "--store".into(),
                store.display().to_string(),
            ];
            (
                Invocation::new(&h.rewind, &h.data_dir, args).within(&dir),
                format!("config {i} ({how})"),
            )
        } else {
            let args = command_line(rng, &store);
            let what = format!("command line `rewind {}`", args.join(" "));
            (
                Invocation::new(&h.rewind, &h.data_dir, args).within(&dir),
                what,
            )
        };
        let exit = invocation.timeout(LIMIT).run()?;
        if exit.panicked() || (exit.signal.is_some() && !exit.timed_out) {
            row.lose(format!("{what}: {}", exit.summary()));
        } else if exit.success() || exit.timed_out {
            row.recovered += 1;
        } else if exit.clear_refusal() {
            row.refuse(exit.error_lines()[0]);
        } else {
            row.lose(format!("{what}: not one error line: {}", exit.summary()));
        }
    }
    Ok(row)
}

/// The `config.toml` the undisturbed run wrote.
fn config_template(reference: &Reference) -> Result<String> {
    let run = train_runs(&reference.store)
        .into_iter()
        .next()
        .ok_or_else(|| crate::Error::Reference("no run in the reference store".into()))?;
    let path = run.join("config.toml");
    std::fs::read_to_string(&path).map_err(|e| io(&path, e))
}

fn mutate_config(template: &str, rng: &mut StdRng) -> (String, String) {
    let lines: Vec<&str> = template.lines().collect();
    let pick = rng.random_range(0..lines.len().max(1));
    match rng.random_range(0..5) {
        0 => {
            let mut bytes = template.as_bytes().to_vec();
            let at = rng.random_range(0..bytes.len().max(1));
            if let Some(b) = bytes.get_mut(at) {
                *b ^= rng.random_range(1..=255u8);
            }
            (
                String::from_utf8_lossy(&bytes).into_owned(),
                format!("byte {at} flipped"),
            )
        }
        1 => {
            let at = rng.random_range(0..template.len().max(1));
            let cut: String = template.chars().take(at).collect();
            (cut, format!("cut at {at}"))
        }
        2 => {
            let mut out = lines.clone();
            if !out.is_empty() {
                out.remove(pick);
            }
            (out.join("\n"), format!("line {pick} removed"))
        }
        3 => {
            let mut out = lines.clone();
            if let Some(l) = lines.get(pick) {
                out.insert(pick, l);
            }
            (out.join("\n"), format!("line {pick} twice"))
        }
        _ => {
            let value = *BAD_VALUES.choose(rng).expect("values");
            let out: Vec<String> = lines
                .iter()
                .enumerate()
                .map(|(j, l)| match l.split_once(" = ") {
                    Some((key, _)) if j == pick => format!("{key} = {value}"),
                    _ => l.to_string(),
                })
                .collect();
            (out.join("\n"), format!("line {pick} set to {value}"))
        }
    }
}

fn command_line(rng: &mut StdRng, store: &std::path::Path) -> Vec<String> {
    let command = COMMANDS.choose(rng).expect("commands");
    let mut args: Vec<String> = vec!["--no-download".into()];
    args.extend(command.iter().map(|s| s.to_string()));
    for _ in 0..rng.random_range(0..4) {
        args.push(FLAGS.choose(rng).expect("flags").to_string());
        args.push(ARG_VALUES.choose(rng).expect("values").to_string());
    }
    // Every command that takes a store gets one of its own (they run inside the work
    // directory too, so a default `runs/` would land there).
    if command[0] != "presets" {
        let at = if command[0] == "runs" { 2 } else { args.len() };
        args.insert(at, "--store".into());
        args.insert(at + 1, store.display().to_string());
    }
    args
}
