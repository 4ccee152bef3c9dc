//! The length check, as one unit: the dense run at the scale's length and the same run at a
//! multiple of it, evaluated alike, to say how far from trained a shortened scale leaves the
//! network (the report states it as a caveat of "matching").

use results::{LengthCheck, ReproduceConfig, RunId};
use serde::{Deserialize, Serialize};
use store::Store;

use super::ModelSetup;
use crate::Result;
use crate::runs::{Plan, TrainResult};

/// The dense run at the scale's length (`short`) and the same run at a multiple of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthCheckRuns {
    pub short: RunId,
    pub long: RunId,
}

/// The two runs, where the scale cuts the length and a requested figure shows dense or IMP
/// accuracies: the first init, the parents' data order.
pub fn plan(
    config: &ReproduceConfig,
    setup: &ModelSetup,
    plan: &mut Plan,
) -> Result<Option<LengthCheckRuns>> {
    let Some(long) = &setup.length_check else {
        return Ok(None);
    };
    if !config.wants(|f| f.needs_dense() || f.needs_imp()) {
        return Ok(None);
    }
    let init = setup.design.init_seeds.first().copied().unwrap_or(1);
    let data = setup.design.parent_data_seed;
    let mut train =
        |recipe: &train::Recipe| plan.train_from_init(recipe, init, data, &setup.eval, &setup.rule);
    Ok(Some(LengthCheckRuns {
        short: train(&setup.recipe)?,
        long: train(long)?,
    }))
}

/// Both runs' final test accuracy, from the store.
pub fn collect(store: &Store, runs: &Option<LengthCheckRuns>) -> Result<Option<LengthCheck>> {
    let Some(LengthCheckRuns { short, long }) = runs else {
        return Ok(None);
    };
    let short: TrainResult = store.finished(short)?;
    let long: TrainResult = store.finished(long)?;
    Ok(Some(LengthCheck {
        steps: short.total_steps,
        test_accuracy: 100.0 * f64::from(short.last.test_accuracy),
        long_steps: long.total_steps,
        long_test_accuracy: 100.0 * f64::from(long.last.test_accuracy),
    }))
}
