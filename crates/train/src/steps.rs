use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// A training length or position: some epochs plus some iterations (`2ep`, `500it`,
/// `120ep50it`). Epochs become iterations once the iterations per epoch are known
/// (`ceil(N / batch)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Steps {
    pub epochs: u64,
    pub iterations: u64,
}

impl Steps {
    pub const fn iterations(iterations: u64) -> Self {
        Steps {
            epochs: 0,
            iterations,
        }
    }

    pub const fn epochs(epochs: u64) -> Self {
        Steps {
            epochs,
            iterations: 0,
        }
    }

    /// The position in iterations (saturating: a length past `u64::MAX` is `u64::MAX`).
    pub fn resolve(self, iterations_per_epoch: u64) -> u64 {
        self.epochs
            .saturating_mul(iterations_per_epoch)
            .saturating_add(self.iterations)
    }

    /// Parses `500it`, `2ep`, `120ep50it` (or a bare number of iterations).
    pub fn parse(text: &str) -> Result<Steps> {
        let s = text.trim();
        let bad = || Error::Steps(text.to_string());
        if s.is_empty() {
            return Err(bad());
        }
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Steps::iterations(n));
        }
        let (epochs, rest) = match s.split_once("ep") {
            Some((e, rest)) => (e.parse::<u64>().map_err(|_| bad())?, rest),
            None => (0, s),
        };
        let iterations = if rest.is_empty() {
            0
        } else {
            rest.strip_suffix("it")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(bad)?
        };
        Ok(Steps { epochs, iterations })
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.epochs, self.iterations) {
            (0, it) => write!(f, "{it}it"),
            (ep, 0) => write!(f, "{ep}ep"),
            (ep, it) => write!(f, "{ep}ep{it}it"),
        }
    }
}

impl std::str::FromStr for Steps {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Steps::parse(s)
    }
}

impl Serialize for Steps {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Steps::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        for (text, steps, resolved) in [
            ("500it", Steps::iterations(500), 500),
            ("2ep", Steps::epochs(2), 2 * 391),
            (
                "120ep50it",
                Steps {
                    epochs: 120,
                    iterations: 50,
                },
                120 * 391 + 50,
            ),
            ("24000", Steps::iterations(24_000), 24_000),
        ] {
            let parsed = Steps::parse(text).expect(text);
            assert_eq!(parsed, steps);
            assert_eq!(parsed.resolve(391), resolved);
        }
        assert_eq!(
            Steps::parse("120ep50it").expect("valid").to_string(),
            "120ep50it"
        );
        for bad in ["", "ep", "5 it", "it", "3ep4", "-1it", "2.5ep"] {
            assert!(Steps::parse(bad).is_err(), "{bad}");
        }
    }
}

/// The parser against arbitrary text: no panic, and what it accepts prints back to itself.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::Steps;

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused(text in "\\PC{0,24}") {
            if let Ok(steps) = Steps::parse(&text) {
                prop_assert_eq!(Steps::parse(&steps.to_string()).ok(), Some(steps));
                let _ = steps.resolve(391);
            }
        }

        #[test]
        fn step_shaped_text_is_parsed_or_refused(
            epochs in "[-+0-9]{0,22}",
            iterations in "[-+0-9.e]{0,22}",
            form in 0..4u8,
        ) {
            let text = match form {
                0 => format!("{epochs}ep{iterations}it"),
                1 => format!("{epochs}ep"),
                2 => format!("{iterations}it"),
                _ => format!("{epochs}{iterations}"),
            };
            if let Ok(steps) = Steps::parse(&text) {
                prop_assert_eq!(Steps::parse(&steps.to_string()).ok(), Some(steps));
                prop_assert!(steps.resolve(u64::MAX) >= steps.iterations);
            }
        }
    }
}
