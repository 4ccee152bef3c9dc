//! The instability analysis experiment (Algorithm 1, repeated over k, inits and data orders).
//!
//! Layout of an analysis directory:
//!
//! ```text
//! analysis.toml                      the configuration (part of every run's identity)
//! init-<s>/parent/                   trained from the seeded init with the parent data
//!                                    seed, keeping its checkpoint at every k
//! init-<s>/k-<k>/order-<o>/          a child: the parent's state at k (weights, BN buffers,
//!                                    optimiser state, step) trained to T with data seed o
//! init-<s>/k-<k>/pair-<o1>-<o2>.json the interpolation of two children
//! summary.json                       mean and std per k over all pairs
//! ```
//!
//! With a sparse start (`start = { level_dir = ".." }`, an IMP level or baseline), the parent
//! is that run's kept checkpoint at its rewind step and the children keep its mask fixed.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use data::SeededBatches;
use nets::Network;
use serde::{Deserialize, Serialize};
use sparsity::{MaskHook, PruneRule, Sparse};
use train::{NoHooks, Steps, TrainConfig, TrainData, TrainState, Trainer};

use crate::interpolation::CurveData;
use crate::{
    BnPolicy, Error, ErrorCurve, Instability, L2Distance, Result, error_curve, l2_distance,
};

/// A sparse starting point: the run directory of an IMP level or baseline (its kept
/// checkpoint at the rewind step is the state the children start from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseStart {
    pub level_dir: PathBuf,
    pub rule: PruneRule,
}

/// The experiment on top of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisConfig {
    /// The iterations k at which the children are spawned.
    pub ks: Vec<Steps>,
    pub init_seeds: Vec<u64>,
    /// Data seeds of the children; every distinct pair is interpolated.
    pub data_seeds: Vec<u64>,
    /// Data seed of the parent run (W_0 -> W_k).
    pub parent_data_seed: u64,
    /// Points on the interpolation path (30 in the paper).
    pub points: usize,
    pub bn_policy: BnPolicy,
    /// Also measure instability every this many steps of the children (the paper's Figure 4,
    /// "instability throughout training"), from their checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_every: Option<Steps>,
    /// Start from a sparse network instead of the dense init (then `ks` must be the single
    /// rewind step of that run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<SparseStart>,
}

/// The interpolation of one pair of children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    pub init_seed: u64,
    pub k: u64,
    pub data_seeds: [u64; 2],
    /// Error (%) of the two endpoints, test and train.
    pub endpoint_test_errors: [f32; 2],
    pub curve: ErrorCurve,
    pub instability: Instability,
    pub l2: L2Distance,
    /// Test instability measured at intermediate steps of the children (Figure 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughout: Vec<(u64, f32)>,
}

/// Mean and standard deviation over pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> MeanStd {
        let n = values.len();
        if n == 0 {
            return MeanStd {
                mean: f64::NAN,
                std: f64::NAN,
                n,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        MeanStd {
            mean,
            std: var.sqrt(),
            n,
        }
    }
}

/// Aggregates at one k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KSummary {
    pub k: u64,
    pub test_instability: MeanStd,
    pub train_instability: Option<MeanStd>,
    pub l2_prunable: MeanStd,
    pub l2_all: MeanStd,
    /// Test accuracy (%) of the children at the end of training (each child once).
    pub child_test_accuracy: MeanStd,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub recipe: String,
    /// The configuration every run of the analysis shares (seeds aside): recipe, length
    /// (the scale of the experiment), evaluation subsets.
    pub config: TrainConfig,
    pub analysis: AnalysisConfig,
    /// FNV-1a of the TOML of `config` and `analysis`, to tell results of different setups apart.
    pub config_hash: String,
    pub total_steps: u64,
    pub bn_policy: BnPolicy,
    pub per_k: Vec<KSummary>,
    pub pairs: Vec<PairResult>,
}

type SparseNet = Sparse<Network>;

/// Runs (or resumes, or reuses) an instability analysis in `dir`.
pub struct Analysis {
    config: TrainConfig,
    data: TrainData,
    device: Device,
    analysis: AnalysisConfig,
    dir: PathBuf,
    show_progress: bool,
}

impl Analysis {
    pub fn new(
        config: TrainConfig,
        data: TrainData,
        device: &Device,
        analysis: AnalysisConfig,
        dir: &Path,
    ) -> Result<Analysis> {
        if analysis.data_seeds.len() < 2 {
            return Err(Error::Invalid(
                "instability needs at least two data orders".into(),
            ));
        }
        if analysis.ks.is_empty() || analysis.init_seeds.is_empty() {
            return Err(Error::Invalid(
                "give at least one k and one init seed".into(),
            ));
        }
        if analysis.start.is_some() && analysis.ks.len() != 1 {
            return Err(Error::Invalid(
                "a sparse start has a single k: its rewind step".into(),
            ));
        }
        train::claim_toml(&dir.join("analysis.toml"), &analysis)?;
        Ok(Analysis {
            config,
            data,
            device: device.clone(),
            analysis,
            dir: dir.to_path_buf(),
            show_progress: true,
        })
    }

    pub fn with_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }

    fn rule(&self) -> PruneRule {
        match &self.analysis.start {
            Some(s) => s.rule.clone(),
            None => PruneRule {
                unpruned_layers: self.config.recipe.model.default_unpruned_layers(),
            },
        }
    }

    fn trainer(&self, init_seed: u64, data_seed: u64, keep: Vec<Steps>) -> Result<Trainer> {
        let mut config = self.config.clone();
        config.init_seed = init_seed;
        config.data_seed = data_seed;
        config.keep_checkpoints = keep;
        Ok(
            Trainer::new(config, self.data.clone(), &self.device)?
                .with_progress(self.show_progress),
        )
    }

    fn template(&self, trainer: &Trainer) -> train::Result<SparseNet> {
        Ok(Sparse::dense(trainer.build_model()?, &self.rule()))
    }

    fn origin(&self, fields: &[(&str, toml::Value)]) -> toml::Value {
        let mut t = toml::Table::new();
        t.insert("experiment".into(), "instability".into());
        for (k, v) in fields {
            t.insert((*k).into(), v.clone());
        }
        if let Some(s) = &self.analysis.start {
            t.insert(
                "sparse_start".into(),
                s.level_dir.display().to_string().into(),
            );
        }
        toml::Value::Table(t)
    }

    /// The run holding the state at k that the children of `init_seed` start from.
    fn parent(&self, init_seed: u64) -> Result<(PathBuf, Trainer)> {
        if let Some(start) = &self.analysis.start {
            let stored: toml::Table = toml::from_str(
                &std::fs::read_to_string(start.level_dir.join("config.toml"))
                    .map_err(|e| Error::Invalid(format!("{}: {e}", start.level_dir.display())))?,
            )
            .map_err(|e| Error::Invalid(format!("{}: {e}", start.level_dir.display())))?;
            let config: TrainConfig = stored
                .try_into()
                .map_err(|e| Error::Invalid(format!("{}: {e}", start.level_dir.display())))?;
            let trainer = Trainer::new(config, self.data.clone(), &self.device)?;
            return Ok((start.level_dir.clone(), trainer));
        }
        let dir = self.dir.join(format!("init-{init_seed}")).join("parent");
        let trainer = self.trainer(
            init_seed,
            self.analysis.parent_data_seed,
            self.analysis.ks.clone(),
        )?;
        let last_k = self
            .analysis
            .ks
            .iter()
            .map(|k| trainer.resolve(*k))
            .max()
            .unwrap_or(0);
        let start = || {
            let s = trainer.initial_state()?;
            Ok(TrainState {
                model: Sparse::dense(s.model, &self.rule()),
                optimizer: s.optimizer,
                step: 0,
                metrics: vec![],
            })
        };
        let origin = self.origin(&[("role", "parent".into())]);
        trainer.run_until(
            &dir,
            Some(origin),
            start,
            || self.template(&trainer),
            last_k,
            &mut NoHooks,
        )?;
        Ok((dir, trainer))
    }

    fn child_dir(&self, init_seed: u64, k: u64, order: u64) -> PathBuf {
        self.dir
            .join(format!("init-{init_seed}"))
            .join(format!("k-{k}"))
            .join(format!("order-{order}"))
    }

    fn run_child(
        &self,
        init_seed: u64,
        k: u64,
        order: u64,
        parent: &(PathBuf, Trainer),
    ) -> Result<Trainer> {
        let keep = self.analysis.curve_every.map(|every| {
            let probe = parent.1.resolve(every).max(1);
            let total = parent.1.total_steps();
            (1..)
                .map(|i| i * probe)
                .take_while(|&s| s < total)
                .filter(|&s| s > k)
                .map(Steps::iterations)
                .collect::<Vec<_>>()
        });
        let trainer = self.trainer(parent.1.config.init_seed, order, keep.unwrap_or_default())?;
        let dir = self.child_dir(init_seed, k, order);
        let start = || {
            let s = parent
                .1
                .load_state_into(&parent.0, k, self.template(&parent.1)?)?;
            Ok(TrainState {
                model: s.model.apply(),
                optimizer: s.optimizer,
                step: k,
                metrics: vec![],
            })
        };
        let origin = self.origin(&[
            ("role", "child".into()),
            ("k", (k as i64).into()),
            ("parent", parent.0.display().to_string().into()),
        ]);
        let sparse = self.analysis.start.is_some();
        if sparse {
            trainer.run_from(
                &dir,
                Some(origin),
                start,
                || self.template(&trainer),
                &mut MaskHook,
            )?;
        } else {
            trainer.run_from(
                &dir,
                Some(origin),
                start,
                || self.template(&trainer),
                &mut NoHooks,
            )?;
        }
        Ok(trainer)
    }

    fn pair(
        &self,
        init_seed: u64,
        k: u64,
        orders: [u64; 2],
        trainers: [&Trainer; 2],
    ) -> Result<PairResult> {
        let path = self
            .dir
            .join(format!("init-{init_seed}"))
            .join(format!("k-{k}"))
            .join(format!("pair-{}-{}.json", orders[0], orders[1]));
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(result) = serde_json::from_slice::<PairResult>(&bytes)
        {
            return Ok(result);
        }
        let total = trainers[0].total_steps();
        let load = |i: usize, step: u64| -> Result<SparseNet> {
            let t = trainers[i];
            Ok(t.load_state_into(
                &self.child_dir(init_seed, k, orders[i]),
                step,
                self.template(t)?,
            )?
            .model
            .apply())
        };
        let (a, b) = (load(0, total)?, load(1, total)?);
        let eval = &self.config.eval;
        let bn_batches = SeededBatches::new(
            self.data.train.clone(),
            self.data.transform.clone(),
            self.config.recipe.data.batch_size,
            self.analysis.parent_data_seed,
        )?;
        let curve_data = CurveData {
            test: &self.data.test,
            train: &self.data.train,
            transform: &self.data.transform,
            train_subset: eval.train_subset,
            test_subset: eval.test_subset,
            batch_size: eval.batch_size,
            bn_batches: Some(&bn_batches),
        };
        let plain = self.device.clone();
        let finish = |m: SparseNet| m.apply();
        let curve = error_curve(
            &a,
            &b,
            self.analysis.points,
            self.analysis.bn_policy,
            &curve_data,
            &plain,
            finish,
        )?;
        let rule = self.rule();
        let l2 = l2_distance(&a.model, &b.model, |i| rule.is_prunable(i))?;
        let mut throughout = Vec::new();
        if let Some(every) = self.analysis.curve_every {
            let every = trainers[0].resolve(every).max(1);
            let test_only = CurveData {
                train_subset: Some(0),
                ..curve_data
            };
            for step in (1..)
                .map(|i| i * every)
                .take_while(|&s| s < total)
                .filter(|&s| s > k)
            {
                let (x, y) = (load(0, step)?, load(1, step)?);
                let c = error_curve(
                    &x,
                    &y,
                    self.analysis.points,
                    self.analysis.bn_policy,
                    &test_only,
                    &plain,
                    finish,
                )?;
                throughout.push((step, c.instability().test));
            }
            throughout.push((total, curve.instability().test));
        }
        let result = PairResult {
            init_seed,
            k,
            data_seeds: orders,
            endpoint_test_errors: [
                curve.points.last().map_or(0.0, |p| p.test_error),
                curve.points[0].test_error,
            ],
            instability: curve.instability(),
            curve,
            l2,
            throughout,
        };
        let json = serde_json::to_vec_pretty(&result).map_err(|e| Error::Invalid(e.to_string()))?;
        train::write_atomic(&path, &json)?;
        Ok(result)
    }

    /// Runs every parent, child and pair, and writes `summary.json`.
    pub fn run(&self) -> Result<Summary> {
        let mut pairs = Vec::new();
        let mut total_steps = 0;
        for &init in &self.analysis.init_seeds {
            let parent = self.parent(init)?;
            total_steps = parent.1.total_steps();
            for k in &self.analysis.ks {
                let k = parent.1.resolve(*k);
                let children: Vec<Trainer> = self
                    .analysis
                    .data_seeds
                    .iter()
                    .map(|&o| self.run_child(init, k, o, &parent))
                    .collect::<Result<_>>()?;
                let seeds = &self.analysis.data_seeds;
                for i in 0..seeds.len() {
                    for j in i + 1..seeds.len() {
                        let pair =
                            self.pair(init, k, [seeds[i], seeds[j]], [&children[i], &children[j]])?;
                        tracing::info!(
                            "init {init}, k {k}, orders {}-{}: test instability {:.2}",
                            seeds[i],
                            seeds[j],
                            pair.instability.test
                        );
                        pairs.push(pair);
                    }
                }
            }
        }
        let mut ks: Vec<u64> = pairs.iter().map(|p| p.k).collect();
        ks.sort_unstable();
        ks.dedup();
        let per_k = ks
            .into_iter()
            .map(|k| {
                let at: Vec<&PairResult> = pairs.iter().filter(|p| p.k == k).collect();
                let train: Option<Vec<f64>> = at
                    .iter()
                    .map(|p| p.instability.train.map(f64::from))
                    .collect();
                KSummary {
                    k,
                    test_instability: MeanStd::of(
                        &at.iter()
                            .map(|p| f64::from(p.instability.test))
                            .collect::<Vec<_>>(),
                    ),
                    train_instability: train.map(|v| MeanStd::of(&v)),
                    l2_prunable: MeanStd::of(&at.iter().map(|p| p.l2.prunable).collect::<Vec<_>>()),
                    l2_all: MeanStd::of(
                        &at.iter().map(|p| p.l2.all_parameters).collect::<Vec<_>>(),
                    ),
                    child_test_accuracy: {
                        // Each child once, though it ends several pairs.
                        let children: std::collections::BTreeMap<(u64, u64), f32> = at
                            .iter()
                            .flat_map(|p| {
                                (0..2).map(|i| {
                                    ((p.init_seed, p.data_seeds[i]), p.endpoint_test_errors[i])
                                })
                            })
                            .collect();
                        MeanStd::of(
                            &children
                                .values()
                                .map(|e| 100.0 - f64::from(*e))
                                .collect::<Vec<_>>(),
                        )
                    },
                }
            })
            .collect();
        let identity = format!(
            "{}\n{}",
            toml::to_string(&self.config).map_err(|e| Error::Invalid(e.to_string()))?,
            toml::to_string(&self.analysis).map_err(|e| Error::Invalid(e.to_string()))?
        );
        let hash = nets::fnv1a(identity.as_bytes());
        let summary = Summary {
            recipe: self.config.recipe.name.clone(),
            config: self.config.clone(),
            analysis: self.analysis.clone(),
            config_hash: format!("{hash:016x}"),
            total_steps,
            bn_policy: self.analysis.bn_policy,
            per_k,
            pairs,
        };
        let json =
            serde_json::to_vec_pretty(&summary).map_err(|e| Error::Invalid(e.to_string()))?;
        train::write_atomic(&self.dir.join("summary.json"), &json)?;
        Ok(summary)
    }
}
