//! Linear mode connectivity (Frankle et al. 2020, section 1, Algorithm 1) for any burn
//! module, dense or sparse:
//!
//! * [`interpolate`]: `alpha * A + (1 - alpha) * B` for every parameter and every buffer (BN
//!   running statistics), tensors matched by path. At alpha 1 and 0 it returns exact copies of
//!   the endpoints.
//! * [`BnPolicy`]: keep the interpolated BN statistics (the paper) or re-estimate them on
//!   training batches (REPAIR-style follow-up work).
//! * [`error_curve`] / [`Instability`]: error along the path at evenly spaced alphas on the test
//!   and train sets, instability = max error minus the mean of the endpoint errors.
//! * [`l2_distance`]: over prunable weights and over all trained parameters.
//!
//! The instability analysis as an experiment (parents, children, pairs, aggregation over
//! seeds) lives in the `experiments` crate.

mod interpolation;

pub use interpolation::{
    BN_MOMENTUM, CurveData, error_curve, interpolate, l2_distance, reestimate_bn,
};
pub use results::{Alignment, BnPolicy, CurvePoint, ErrorCurve, Instability, L2Distance};

/// Errors of interpolation and instability analysis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Train(#[from] train::Error),
    #[error(transparent)]
    Data(#[from] data::Error),
    #[error("the two networks differ: {0}")]
    Mismatch(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
