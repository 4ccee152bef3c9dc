//! Step-for-step parity with PyTorch (the framework of the paper's code).
//!
//! A parity case trains a registry network for a few steps and records everything another
//! framework needs to repeat each step exactly: the state before every step (parameters and BN
//! buffers), the batch as training saw it (augmented and normalised), the learning rate, and
//! two endpoints of an interpolation with the test images they are evaluated on
//! ([`export`]). `bench/parity.py` loads *our* state before each step into the same network
//! in PyTorch, takes the step there (forward in train mode, backward, `torch.optim`), and
//! writes what it got into a golden file ([`Fixture`]): the loss, and per tensor the norm of
//! the change the step made (parameters through the optimiser, BN buffers through the
//! forward). It also evaluates the interpolation.
//!
//! Checking every step from our own state, rather than comparing two free-running
//! trajectories, is what makes a tight tolerance possible: training is chaotic at the level
//! of float32 rounding. Adam divides each gradient by its own magnitude, so a gradient of
//! 1e-8 (below epsilon's scale) moves its weight by a sizeable fraction of the learning rate
//! depending on its last bits, and a ReLU that later flips on one example changes whole
//! gradient rows. (Measured on Lenet: after one step, 5 of 266,610 weights differ from
//! PyTorch's by up to 2.7e-5 for exactly that reason; PyTorch in float64, given our 5 weights
//! and nothing else, then follows our losses to 1e-6 through step 20, where both are 0.6%
//! away from its own float64 run.) A one-step comparison has no such amplification, so a
//! wrong convention (weight decay on BN parameters, the LR drop one step late, biased BN
//! variance, Adam's epsilon) shows as a clear mismatch instead of drowning in divergence.
//!
//! The tolerances, measured with torch 2.15.0 (their derivation is in [`compare`]): the loss of
//! every step agrees to 6.4e-7 (Lenet), 2.6e-7 (Resnet-20) and 1.3e-7 (VGG-16) relative, and
//! every BN running statistic's update to 1.4e-6 beyond float32 rounding. Parameter updates
//! agree to 6e-6 on Lenet; on the conv nets to 3e-3, because there the gradients of the
//! layers at full resolution are ill-conditioned: in PyTorch's own float64 computation,
//! multiplying every BN output by `1 + 1e-7·noise` (float32's rounding) moves the stem's
//! gradient by 1.6e-4 to 2.4e-4 (measured on the Resnet-20 case's first step; Fashion-MNIST
//! padded to 32 pixels is 62% constant background). burn's own ops land 5e-4 from PyTorch's
//! there and this workspace's kernels 4e-3, on the same steps; the deeper layers, whose
//! gradients are well-conditioned, agree to 1e-4. So the conv cases allow 1e-2 on parameter
//! updates: that still catches a learning rate off by a step (10x), a lost momentum or a
//! wrong BN convention, and the buffer and loss checks are as tight as on Lenet.
//!
//! [`measure`] replays a case here and [`compare`] checks it against a fixture; the test
//! suite does both for every case in [`CASES`] (`cargo xtask parity` regenerates them).

use std::io::Write;
use std::path::Path;

use burn::tensor::Device;
use data::{DatasetName, eval_batches};
use nets::Network;
use nets::params::{TensorInfo, tensor_values};
use results::BnPolicy;
use serde::{Deserialize, Serialize};
use train::{Recipe, Steps, TrainConfig, TrainData, Trainer};

use crate::runs::DataCache;
use crate::{Error, Result};

/// One parity case: a registry network, shortened (and narrowed) so that its steps, LR drops
/// included, run in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    /// The registry entry whose recipe (optimiser, schedule, augmentation) is used.
    pub network: &'static str,
    pub model: fn() -> nets::ModelConfig,
    /// The data trained on (CIFAR-10 cannot be downloaded here; Fashion-MNIST stands in).
    pub dataset: DatasetName,
    /// The recipe is shortened to this many steps, its schedule scaled with it.
    pub steps: u64,
    /// The second endpoint of the interpolation is a child trained from this step with
    /// another data order.
    pub child_from: u64,
    /// The interpolation is evaluated on this many test examples (the first ones).
    pub test_examples: usize,
    pub points: usize,
    /// Largest relative difference allowed between our loss and PyTorch's at the same state.
    pub loss_tolerance: f64,
    /// Largest relative difference allowed between the norms of a step's change to a
    /// parameter, beyond float32's own rounding (see [`compare`]).
    pub update_tolerance: f64,
    /// The same for BN running statistics, which only the forward pass moves.
    pub buffer_tolerance: f64,
}

pub const INIT_SEED: u64 = 1;
pub const DATA_SEED: u64 = 1;
pub const CHILD_DATA_SEED: u64 = 2;

/// Lenet with Adam; Resnet-20 with BN, SGD momentum, weight decay and both LR drops; VGG-16
/// with BN and max pooling.
pub const CASES: &[Case] = &[
    Case {
        name: "lenet",
        network: "lenet",
        model: nets::ModelConfig::lenet_300_100,
        dataset: DatasetName::Mnist,
        steps: 100,
        child_from: 50,
        test_examples: 2000,
        points: 5,
        loss_tolerance: 1e-5,
        update_tolerance: 1e-4,
        buffer_tolerance: 1e-5,
    },
    Case {
        name: "resnet20",
        network: "resnet20",
        model: || nets::ModelConfig::Resnet {
            depth: 20,
            width: 4,
        },
        dataset: DatasetName::FashionMnist,
        steps: 60,
        child_from: 30,
        test_examples: 2000,
        points: 5,
        loss_tolerance: 1e-4,
        update_tolerance: 1e-2,
        buffer_tolerance: 1e-5,
    },
    Case {
        name: "vgg16",
        network: "vgg16",
        model: || nets::ModelConfig::Vgg16 { width_divisor: 16 },
        dataset: DatasetName::FashionMnist,
        steps: 40,
        child_from: 20,
        test_examples: 2000,
        points: 5,
        loss_tolerance: 1e-4,
        update_tolerance: 1e-2,
        buffer_tolerance: 1e-5,
    },
];

pub fn case(name: &str) -> Result<&'static Case> {
    CASES.iter().find(|c| c.name == name).ok_or_else(|| {
        Error::Invalid(format!(
            "no parity case `{name}`; there are: {}",
            CASES.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

impl Case {
    /// The registry recipe with this case's network and data, at its full length.
    pub fn full_recipe(&self) -> Result<Recipe> {
        let mut recipe = crate::registry::recipe(self.network)?;
        recipe.model = (self.model)();
        recipe.data.dataset = self.dataset;
        Ok(recipe)
    }

    /// [`Case::full_recipe`] shortened to `steps`.
    pub fn recipe(&self, data: &TrainData) -> Result<Recipe> {
        let recipe = self.full_recipe()?;
        let ipe = (data.train.len() as u64).div_ceil(recipe.data.batch_size as u64);
        Ok(recipe.with_length(Steps::iterations(self.steps), ipe))
    }

    /// The case's data (the split sizes and transform do not depend on the length).
    pub fn data(&self, cache: &DataCache) -> Result<TrainData> {
        cache.for_recipe(&self.full_recipe()?)
    }

    fn trainer(&self, data: &TrainData, data_seed: u64, device: &Device) -> Result<Trainer> {
        let config = TrainConfig::new(self.recipe(data)?, INIT_SEED, data_seed);
        Ok(Trainer::new(config, data.clone(), device)?)
    }
}

/// What a case measured here, in the form the fixture holds PyTorch's.
#[derive(Debug, Clone)]
pub struct Measured {
    pub paths: Vec<String>,
    /// Which tensors are BN running statistics.
    pub buffers: Vec<bool>,
    /// The loss of every step.
    pub losses: Vec<f32>,
    /// Per step, per tensor: the L2 norm of the step's change.
    pub update_norms: Vec<Vec<f64>>,
    /// Per step, per tensor: the L2 norm of the tensor before the step.
    pub state_norms: Vec<Vec<f64>>,
    /// Test errors (examples) of the interpolation, alpha ascending.
    pub interpolation_errors: Vec<usize>,
}

/// A golden file written by `bench/parity.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    pub case: String,
    pub steps: u64,
    pub torch: String,
    pub paths: Vec<String>,
    /// PyTorch's loss of every step, computed from our state before the step.
    pub losses: Vec<f64>,
    /// Per step, per tensor: the norm of the change PyTorch's step made from our state.
    pub update_norms: Vec<Vec<f64>>,
    /// The same in float64: how far float32's rounding alone moves each norm.
    pub update_norms_float64: Vec<Vec<f64>>,
    pub interpolation: InterpolationFixture,
    /// PyTorch trained freely from our initial state on our batches (float32, float64): not
    /// compared (see the module docs), kept as the evidence of how far free runs drift.
    pub free_run: FreeRun,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterpolationFixture {
    pub alphas: Vec<f64>,
    pub examples: usize,
    /// Misclassified test examples at each alpha.
    pub errors: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FreeRun {
    pub float32: Vec<f64>,
    pub float64: Vec<f64>,
}

impl Fixture {
    pub fn load(path: &Path) -> Result<Fixture> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: not a parity fixture: {e}", path.display())))
    }
}

/// How far a measurement is from a fixture, and what is outside the case's tolerances.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub worst_loss: (usize, f64),
    /// Step, parameter and the difference of the change's norm as a fraction of the allowed
    /// one.
    pub worst_update: (usize, String, f64),
    /// The same for BN running statistics.
    pub worst_buffer: (usize, String, f64),
    pub interpolation_errors: (Vec<usize>, Vec<usize>),
    pub failures: Vec<String>,
}

/// Norms below this are a tensor the step did not change (a dead unit's weights, a buffer of
/// a layer not in the forward): compared absolutely.
const UNCHANGED: f64 = 1e-12;

pub fn compare(case: &Case, fixture: &Fixture, ours: &Measured) -> Comparison {
    let mut failures = Vec::new();
    if fixture.paths != ours.paths || fixture.losses.len() != ours.losses.len() {
        failures.push(format!(
            "the fixture is of another run ({} tensors, {} steps; here {} and {}): regenerate \
             it with `cargo xtask parity`",
            fixture.paths.len(),
            fixture.losses.len(),
            ours.paths.len(),
            ours.losses.len()
        ));
    }
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
    let mut worst_loss = (0, 0.0);
    for (step, (&ours, &torch)) in ours.losses.iter().zip(&fixture.losses).enumerate() {
        let r = rel(f64::from(ours), torch);
        if exceeds(r, worst_loss.1) {
            worst_loss = (step, r);
        }
    }
    if exceeds(worst_loss.1, case.loss_tolerance) {
        failures.push(format!(
            "loss of step {} differs from PyTorch's by {:.2e} (relative; tolerance {:.0e})",
            worst_loss.0, worst_loss.1, case.loss_tolerance
        ));
    }
    // A step's change to a tensor, measured as the difference of two float32 states, carries
    // the rounding of those states (about one ulp per element: EPSILON times the tensor's
    // norm), and a gradient that is zero in exact arithmetic (a conv bias before BN) is all
    // float32 noise: PyTorch's own float32-vs-float64 spread gives its scale. Beyond those the
    // norms must agree to the case's relative tolerance.
    let mut worst_update = (0, String::new(), 0.0);
    let mut worst_buffer = (0, String::new(), 0.0);
    let steps = ours.update_norms.iter().zip(&ours.state_norms).zip(
        fixture
            .update_norms
            .iter()
            .zip(&fixture.update_norms_float64),
    );
    for (step, ((mine, sizes), (torch, exact))) in steps.enumerate() {
        let tensors = ours
            .paths
            .iter()
            .zip(&ours.buffers)
            .zip(mine.iter().zip(sizes))
            .zip(torch.iter().zip(exact));
        for (((path, &buffer), (&a, &size)), (&b, &b64)) in tensors {
            let tolerance = if buffer {
                case.buffer_tolerance
            } else {
                case.update_tolerance
            };
            let allowed = tolerance * b.abs()
                + 4.0 * (b - b64).abs()
                + 4.0 * f64::from(f32::EPSILON) * size
                + UNCHANGED;
            let r = (a - b).abs() / allowed;
            let worst = if buffer {
                &mut worst_buffer
            } else {
                &mut worst_update
            };
            if exceeds(r, worst.2) {
                *worst = (step, path.clone(), r);
            }
        }
    }
    for (worst, tolerance) in [
        (&worst_update, case.update_tolerance),
        (&worst_buffer, case.buffer_tolerance),
    ] {
        if exceeds(worst.2, 1.0) {
            failures.push(format!(
                "step {} changes {} by a norm {:.1}x the allowed distance from PyTorch's \
                 ({tolerance:.0e} relative beyond float32 rounding)",
                worst.0, worst.1, worst.2
            ));
        }
    }
    let torch_errors = &fixture.interpolation.errors;
    let off_by_more_than_one = ours.interpolation_errors.len() != torch_errors.len()
        || ours
            .interpolation_errors
            .iter()
            .zip(torch_errors)
            .any(|(&a, &b)| a.abs_diff(b) > 1);
    if off_by_more_than_one {
        failures.push(format!(
            "interpolation test errors {:?} vs PyTorch's {:?} (more than one example apart)",
            ours.interpolation_errors, torch_errors
        ));
    }
    Comparison {
        worst_loss,
        worst_update,
        worst_buffer,
        interpolation_errors: (ours.interpolation_errors.clone(), torch_errors.clone()),
        failures,
    }
}

/// Replays `case` here. With `out`, also writes what `bench/parity.py` reads there:
/// `export.json` (case, recipe, per-step learning rates, losses and labels, tensor paths and
/// shapes) and raw little-endian float32 files `trajectory.f32` (the state before each step
/// and after the last), `batches.f32` (each step's images), `endpoints.f32` (the two ends of
/// the interpolation) and `test.f32` (the test images it is evaluated on).
pub fn measure(case: &Case, data: &TrainData, out: Option<&Path>) -> Result<Measured> {
    let device = train::default_device();
    let trainer = case.trainer(data, DATA_SEED, &device)?;
    let mut files = out.map(ExportFiles::create).transpose()?;
    let loss_fn = trainer.loss_fn();
    let mut state = trainer.initial_state()?;
    let mut before = tensor_values(&state.model);
    let infos: Vec<TensorInfo> = before.iter().map(|(i, _)| i.clone()).collect();
    let (mut losses, mut lrs, mut labels) = (vec![], vec![], vec![]);
    let (mut update_norms, mut state_norms) = (vec![], vec![]);
    for step in 0..case.steps {
        let lr = trainer.lr_at(step);
        if let Some(files) = files.as_mut() {
            files.trajectory.write_tensors(&before)?;
            let batch = trainer.batch(step)?;
            files.batches.write_values(&batch.images)?;
            labels.push(batch.labels);
        }
        let (next, loss) = trainer.step(state, &loss_fn, lr, true)?;
        state = next;
        let after = tensor_values(&state.model);
        update_norms.push(
            before
                .iter()
                .zip(&after)
                .map(|((_, a), (_, b))| difference_norm(a, b))
                .collect(),
        );
        state_norms.push(before.iter().map(|(_, v)| norm(v)).collect());
        losses.push(loss.unwrap_or(f32::NAN));
        lrs.push(lr);
        before = after;
    }
    if let Some(files) = files.as_mut() {
        files.trajectory.write_tensors(&before)?;
    }
    // The child: the same network from step `child_from` (a fresh replay to that step, so it
    // shares no BN buffers with the parent), then another data order.
    let child_trainer = case.trainer(data, CHILD_DATA_SEED, &device)?;
    let mut child = trainer.initial_state()?;
    child = trainer.step_losses(child, case.child_from)?.0;
    child = child_trainer
        .step_losses(child, case.steps - case.child_from)?
        .0;
    let curve = lmc::error_curve(
        &state.model,
        &child.model,
        case.points,
        BnPolicy::Interpolate,
        &lmc::CurveData {
            test: &data.test,
            train: &data.train,
            transform: &data.transform,
            train_subset: Some(0),
            test_subset: Some(case.test_examples),
            batch_size: 500,
            bn_batches: None,
        },
        &train::default_device(),
        |m: Network| m,
    )?;
    let examples = case.test_examples.min(data.test.len());
    let interpolation_errors: Vec<usize> = curve
        .points
        .iter()
        .map(|p| (f64::from(p.test_error) * examples as f64 / 100.0).round() as usize)
        .collect();
    if let (Some(files), Some(dir)) = (files.as_mut(), out) {
        files
            .endpoints
            .write_tensors(&tensor_values(&state.model))?;
        files
            .endpoints
            .write_tensors(&tensor_values(&child.model))?;
        let mut test_labels = Vec::with_capacity(examples);
        for batch in eval_batches(&data.test, &data.transform, 500, Some(examples)) {
            let batch = batch?;
            files.test.write_values(&batch.images)?;
            test_labels.extend(batch.labels);
        }
        files.finish()?;
        let export = Export {
            case: case.name,
            network: case.network,
            recipe: &trainer.config.recipe,
            init_seed: INIT_SEED,
            data_seed: DATA_SEED,
            child_data_seed: CHILD_DATA_SEED,
            steps: case.steps,
            child_from: case.child_from,
            image_shape: [
                data.transform.channels(),
                data.transform.size,
                data.transform.size,
            ],
            tensors: infos
                .iter()
                .map(|i| ExportTensor {
                    path: &i.path,
                    shape: &i.shape,
                    buffer: i.role.is_buffer(),
                })
                .collect(),
            lrs,
            losses: &losses,
            labels,
            test_labels,
            alphas: curve.points.iter().map(|p| f64::from(p.alpha)).collect(),
            interpolation_errors: &interpolation_errors,
        };
        let json = serde_json::to_vec(&export)
            .map_err(|e| Error::Invalid(format!("could not encode the parity export: {e}")))?;
        results::write_atomic(&dir.join("export.json"), &json)?;
    }
    Ok(Measured {
        buffers: infos.iter().map(|i| i.role.is_buffer()).collect(),
        paths: infos.into_iter().map(|i| i.path).collect(),
        losses,
        update_norms,
        state_norms,
        interpolation_errors,
    })
}

/// `value > limit`, NaN counting as beyond every limit.
fn exceeds(value: f64, limit: f64) -> bool {
    value.is_nan() || value > limit
}

/// What a full-length run of the case's recipe (not shortened) needs in another framework, for
/// recipes without augmentation: `export.json` (recipe, seeds, steps, tensor paths and
/// shapes), `initial.f32` (the initial state, raw little-endian float32) and `indices.u32`
/// (every step's examples, as indices into the training split, raw little-endian u32).
/// `bench/parity.py --full-length` trains it in PyTorch and reports the final test accuracy.
pub fn export_full_length(
    case: &Case,
    data: &TrainData,
    init_seed: u64,
    data_seed: u64,
    out: &Path,
) -> Result<u64> {
    let recipe = case.full_recipe()?;
    if recipe.data.augmentation != data::Augmentation::None {
        return Err(Error::Invalid(format!(
            "{} trains with augmentation, which example indices do not capture; full-length \
             exports exist for recipes without it (lenet)",
            case.name
        )));
    }
    let config = TrainConfig::new(recipe, init_seed, data_seed);
    let trainer = Trainer::new(config, data.clone(), &train::default_device())?;
    let steps = trainer.total_steps();
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let initial = tensor_values(&trainer.initial_state()?.model);
    let mut state = RawFile::create(&out.join("initial.f32"))?;
    state.write_tensors(&initial)?;
    state.flush()?;
    let mut indices = RawFile::create(&out.join("indices.u32"))?;
    for step in 0..steps {
        let batch: Vec<u8> = trainer
            .batch_indices(step)
            .into_iter()
            .flat_map(|i| (i as u32).to_le_bytes())
            .collect();
        indices.write_bytes(&batch)?;
    }
    indices.flush()?;
    let export = serde_json::json!({
        "case": case.name,
        "recipe": trainer.config.recipe,
        "init_seed": init_seed,
        "data_seed": data_seed,
        "steps": steps,
        "tensors": initial.iter().map(|(i, _)| serde_json::json!({
            "path": i.path, "shape": i.shape, "buffer": i.role.is_buffer(),
        })).collect::<Vec<_>>(),
    });
    results::write_atomic(&out.join("export.json"), export.to_string().as_bytes())?;
    Ok(steps)
}

fn norm(a: &[f32]) -> f64 {
    a.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

fn difference_norm(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(y) - f64::from(x);
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

#[derive(Serialize)]
struct ExportTensor<'a> {
    path: &'a str,
    shape: &'a [usize],
    buffer: bool,
}

#[derive(Serialize)]
struct Export<'a> {
    case: &'a str,
    network: &'a str,
    recipe: &'a Recipe,
    init_seed: u64,
    data_seed: u64,
    child_data_seed: u64,
    steps: u64,
    child_from: u64,
    /// `[C, H, W]` of one image in `batches.f32` and `test.f32`.
    image_shape: [usize; 3],
    /// In the order of every state in the `.f32` files (burn's layout: linear weights are
    /// `[in, out]`).
    tensors: Vec<ExportTensor<'a>>,
    lrs: Vec<f64>,
    losses: &'a [f32],
    /// Per step, the labels of its batch (its images are in `batches.f32`).
    labels: Vec<Vec<i64>>,
    test_labels: Vec<i64>,
    alphas: Vec<f64>,
    interpolation_errors: &'a [usize],
}

/// The raw float32 files of an export.
struct ExportFiles {
    trajectory: RawFile,
    batches: RawFile,
    endpoints: RawFile,
    test: RawFile,
}

impl ExportFiles {
    fn create(dir: &Path) -> Result<ExportFiles> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(ExportFiles {
            trajectory: RawFile::create(&dir.join("trajectory.f32"))?,
            batches: RawFile::create(&dir.join("batches.f32"))?,
            endpoints: RawFile::create(&dir.join("endpoints.f32"))?,
            test: RawFile::create(&dir.join("test.f32"))?,
        })
    }

    fn finish(&mut self) -> Result<()> {
        for file in [
            &mut self.trajectory,
            &mut self.batches,
            &mut self.endpoints,
            &mut self.test,
        ] {
            file.flush()?;
        }
        Ok(())
    }
}

struct RawFile {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl RawFile {
    fn create(path: &Path) -> Result<RawFile> {
        let file = std::fs::File::create(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(RawFile {
            path: path.to_path_buf(),
            out: std::io::BufWriter::new(file),
        })
    }

    fn write_values(&mut self, values: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write_bytes(&bytes)
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn write_tensors(&mut self, tensors: &[(TensorInfo, Vec<f32>)]) -> Result<()> {
        tensors.iter().try_for_each(|(_, v)| self.write_values(v))
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}
