//! Measured values as `lmc` (interpolation) and `sparsity` (masks) produce them.

use serde::{Deserialize, Serialize};

/// What happens to BN running statistics of an interpolated network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum BnPolicy {
    /// Interpolate them like every other tensor (what the paper did).
    #[default]
    Interpolate,
    /// Reset them and re-estimate them from `batches` training batches in train mode, without
    /// touching the weights (REPAIR-style, Jordan et al. 2022).
    Reestimate { batches: usize },
}

/// What is done to the second network of a pair before the two are interpolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alignment {
    /// Nothing (the paper).
    #[default]
    None,
    /// Its hidden units permuted to match the first network's by weight matching (Ainsworth
    /// et al. 2023): instability modulo permutation.
    Weights,
    /// Its hidden units permuted to match the first network's by the correlation of their
    /// activations on training images (activation matching, Ainsworth et al. 2023, §3.1).
    Activations,
}

impl Alignment {
    pub fn is_none(&self) -> bool {
        *self == Alignment::None
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alignment::None => "none",
            Alignment::Weights => "weights",
            Alignment::Activations => "activations",
        }
    }
}

impl std::str::FromStr for Alignment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Alignment::None),
            "weights" => Ok(Alignment::Weights),
            "activations" => Ok(Alignment::Activations),
            other => Err(format!(
                "unknown alignment `{other}`: use none, weights or activations"
            )),
        }
    }
}

/// One point of an error curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub alpha: f32,
    /// Test error in percent.
    pub test_error: f32,
    /// Train error in percent (on the evaluated train subset), if evaluated.
    pub train_error: Option<f32>,
    /// Mean cross-entropy on the test set (absent from curves recorded before losses were).
    #[serde(default)]
    pub test_loss: Option<f32>,
    /// Mean cross-entropy on the evaluated train subset.
    #[serde(default)]
    pub train_loss: Option<f32>,
}

/// Errors along the linear path between two networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorCurve {
    pub points: Vec<CurvePoint>,
    pub bn_policy: BnPolicy,
}

/// Instability: the rise of the error along the path above the mean of the endpoints' (the
/// paper), in percentage points; and the same rise of the loss (the loss barrier of later
/// work), where the curve has losses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Instability {
    pub test: f32,
    pub train: Option<f32>,
    #[serde(default)]
    pub test_loss: Option<f32>,
    #[serde(default)]
    pub train_loss: Option<f32>,
}

impl ErrorCurve {
    pub fn instability(&self) -> Instability {
        let rise = |f: &dyn Fn(&CurvePoint) -> Option<f32>| -> Option<f32> {
            let values: Vec<f32> = self.points.iter().map(f).collect::<Option<Vec<f32>>>()?;
            let first = *values.first()?;
            let last = *values.last()?;
            let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            Some(max - (first + last) / 2.0)
        };
        Instability {
            test: rise(&|p| Some(p.test_error)).unwrap_or(0.0),
            train: rise(&|p| p.train_error),
            test_loss: rise(&|p| p.test_loss),
            train_loss: rise(&|p| p.train_loss),
        }
    }

    /// The highest test error on the path.
    pub fn worst_test_error(&self) -> Option<f32> {
        self.points.iter().map(|p| p.test_error).reduce(f32::max)
    }
}

/// Euclidean distance between two networks' weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct L2Distance {
    /// Over conv and linear weights that `prunable` accepts.
    pub prunable: f64,
    /// Over all trained parameters (weights, biases, BN scale and shift; no buffers).
    pub all_parameters: f64,
}

/// Kept / total weights of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerDensity {
    pub path: String,
    pub kept: usize,
    pub total: usize,
}
