//! The pipeline end to end on the paper's networks and a synthetic task: IMP, instability
//! analysis, the executors, resumption and the store's integrity.

use std::collections::HashMap;
use std::sync::Arc;

use data::synthetic::Stripes;
use data::{Augmentation, DatasetName, ImageSource};
use lmc::BnPolicy;
use nets::ModelConfig;
use nets::params::tensor_values;
use results::{Branch, RunId};

use sparsity::PruneRule;
use train::{DataConfig, EvalConfig, LrSchedule, OptimizerConfig, Recipe, Steps};

use experiments::imp::{Baseline, ImpConfig, imp_results};
use experiments::instability::{InstabilityConfig, ParentRun, instability_summary};
use experiments::runs::{
    DataCache, MaskSource, OptimizerAtRewind, Plan, Runner, TrainResult, WeightSource,
};
use paper::PaperNetworks;
use store::{RunStatus, Store};

fn stripes() -> DataCache {
    let train: ImageSource = Arc::new(Stripes(48));
    let test: ImageSource = Arc::new(Stripes(16));
    DataCache::with_sources(vec![(DatasetName::Mnist, train, test)])
}

fn runner(dir: &std::path::Path) -> Runner<PaperNetworks> {
    let mut runner = paper::runner(
        Store::open(dir).expect("store"),
        stripes(),
        &train::default_device(),
    );
    runner.show_run_progress = false;
    runner
}

fn run_plan(runner: &Runner<PaperNetworks>, plan: &Plan) {
    use experiments::executor::{Executor, Local};
    Local::new(runner, 2)
        .execute(plan, &runner.store)
        .expect("plan");
}

fn resnet_recipe() -> Recipe {
    Recipe {
        name: "lmc-test".into(),
        model: ModelConfig::Resnet { depth: 8, width: 4 },
        data: DataConfig::new(DatasetName::Mnist, 8, Augmentation::CropFlip { padding: 1 }),
        training_steps: Steps::iterations(24),
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        schedule: LrSchedule::constant(0.05),
        bn_init: nets::BnInit::Uniform,
    }
}

fn eval() -> EvalConfig {
    EvalConfig {
        every: None,
        train_subset: Some(16),
        test_subset: None,
        batch_size: 16,
    }
}

fn instability(data_seeds: Vec<u64>) -> InstabilityConfig {
    InstabilityConfig {
        data_seeds,
        points: 5,
        bn_policy: BnPolicy::Interpolate,
        eval: eval(),
        throughout_every: Some(8),
        align: results::Alignment::None,
    }
}

/// A Resnet-8 on the stripes task, k in {0, 8}, one init, parent data seed 0.
fn dense_analysis(
    runner: &Runner<PaperNetworks>,
    data_seeds: Vec<u64>,
) -> (Plan, Vec<experiments::instability::PairRuns>) {
    let recipe = resnet_recipe();
    let mut plan = Plan::new();
    let parent = plan
        .train_from_init(&recipe, 1, 0, &eval(), &PruneRule::default())
        .expect("parent");
    let pairs = instability(data_seeds)
        .plan(
            &mut plan,
            &[ParentRun {
                init_seed: 1,
                run: parent,
                ks: vec![0, 8],
            }],
            24,
        )
        .expect("plan");
    run_plan(runner, &plan);
    (plan, pairs)
}

#[test]
fn the_same_seeds_give_bit_identical_children_and_a_pair_of_them_has_instability_zero() {
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let (ra, rb) = (runner(a.path()), runner(b.path()));
    let (_, pairs) = dense_analysis(&ra, vec![3, 4]);
    dense_analysis(&rb, vec![3, 4]);
    for p in &pairs {
        for child in &p.children {
            let wa = tensor_values(&ra.state_at(child, 24).expect("a").model.model);
            let wb = tensor_values(&rb.state_at(child, 24).expect("b").model.model);
            assert_eq!(wa, wb, "{child} differs between two stores");
        }
    }
    let summary = instability_summary(&ra.store, &pairs).expect("summary");
    assert_eq!(summary.per_k.len(), 2);
    assert_eq!(summary.pairs.len(), 2);
    for pair in &summary.pairs {
        assert_eq!(pair.result.curve.points.len(), 5);
        assert!(pair.result.l2.all_parameters > 0.0);
        assert_eq!(
            pair.throughout.iter().map(|t| t.0).collect::<Vec<_>>(),
            if pair.k == 0 {
                vec![8, 16, 24]
            } else {
                vec![16, 24]
            }
        );
    }
    // Same data order: the plan holds one child, and its pair with itself is flat.
    let dir = tempfile::tempdir().expect("tmp");
    let same = runner(dir.path());
    let (plan, pairs) = dense_analysis(&same, vec![3, 3]);
    assert_eq!(pairs[0].children[0], pairs[0].children[1]);
    // parent + one child per k (k = 0 and 8) + 1 + 2 + 1 + 1 interpolations (end, throughout)
    assert_eq!(plan.len(), 1 + 2 + 2 + 1 + 2);
    for pair in instability_summary(&same.store, &pairs)
        .expect("summary")
        .pairs
    {
        assert_eq!(pair.result.instability.test, 0.0);
        assert_eq!(pair.result.instability.train, Some(0.0));
        assert_eq!(pair.result.l2.all_parameters, 0.0);
        let first = pair.result.curve.points[0].test_error;
        assert!(
            pair.result
                .curve
                .points
                .iter()
                .all(|p| p.test_error == first)
        );
    }
}

#[test]
fn curves_end_at_the_childrens_own_errors_and_rerunning_reuses_everything() {
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(dir.path());
    let (_, pairs) = dense_analysis(&runner, vec![1, 2, 3]);
    let summary = instability_summary(&runner.store, &pairs).expect("summary");
    assert_eq!(summary.pairs.len(), 6, "3 pairs at each of 2 values of k");
    assert_eq!(summary.per_k[0].test_instability.n, 3);
    assert_eq!(summary.per_k[0].child_test_accuracy.n, 3, "each child once");
    for (runs, pair) in pairs.iter().zip(&summary.pairs) {
        let error = |id: &RunId| {
            let r: TrainResult = runner.store.result(id).expect("read").expect("done");
            100.0 * (1.0 - r.last.test_accuracy)
        };
        let points = &pair.result.curve.points;
        // Alpha 1 is the first child, alpha 0 the second: their own errors, exactly.
        assert!((points[points.len() - 1].test_error - error(&runs.children[0])).abs() < 1e-4);
        assert!((points[0].test_error - error(&runs.children[1])).abs() < 1e-4);
        assert!(pair.result.instability.test >= 0.0);
    }
    let listed = runner.store.list().expect("list");
    assert!(listed.iter().all(|e| e.status == RunStatus::Done));
    let before: Vec<_> = listed.iter().map(|e| e.id.clone()).collect();
    // Re-running trains nothing and gives the same summary.
    let again = dense_analysis(&runner, vec![1, 2, 3]).1;
    assert_eq!(
        instability_summary(&runner.store, &again).expect("again"),
        summary
    );
    let after: Vec<_> = runner
        .store
        .list()
        .expect("list")
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_missing_checkpoint_of_a_finished_run_is_recomputed_bit_identically() {
    let recipe = resnet_recipe();
    let rule = PruneRule::default();
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    // Store a: the run finishes first without keeping step 12; a later plan branches there.
    let ra = runner(a.path());
    let mut plan = Plan::new();
    let dense = plan
        .train_from_init(&recipe, 1, 1, &eval(), &rule)
        .expect("dense");
    run_plan(&ra, &plan);
    assert!(!train::CheckpointStore::new(&ra.store.dir(&dense)).has(12));
    plan.branch(
        &dense,
        12,
        2,
        MaskSource::Parent,
        WeightSource::Parent,
        OptimizerAtRewind::Rewound,
    )
    .expect("branch");
    run_plan(&ra, &plan);
    // Store b: the same run, asked for step 12 from the start.
    let rb = runner(b.path());
    let mut plan_b = Plan::new();
    let dense_b = plan_b
        .train_from_init(&recipe, 1, 1, &eval(), &rule)
        .expect("dense");
    plan_b.keep(&dense_b, 12);
    run_plan(&rb, &plan_b);
    assert_eq!(dense, dense_b);
    let wa = tensor_values(&ra.state_at(&dense, 12).expect("a").model.model);
    let wb = tensor_values(&rb.state_at(&dense, 12).expect("b").model.model);
    assert_eq!(wa, wb);
}

#[test]
fn imp_levels_rewind_nest_and_are_reused() {
    let recipe = Recipe {
        model: ModelConfig::Lenet { hidden: vec![32] },
        data: DataConfig::new(DatasetName::Mnist, 8, Augmentation::None),
        optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
        training_steps: Steps::iterations(30),
        ..resnet_recipe()
    };
    let imp = ImpConfig {
        recipe,
        eval: eval(),
        init_seed: 1,
        data_seed: 1,
        rewind: 5,
        levels: 2,
        fraction: 0.2,
        rule: PruneRule {
            unpruned_layers: vec!["Lenet.output".into()],
            layer_rates: vec![],
            layerwise: false,
        },
        optimizer_at_rewind: OptimizerAtRewind::Fresh,
        baselines: vec![Baseline::RandomPrune, Baseline::Reinit],
        baseline_levels: vec![2],
        baseline_seed: 9,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(dir.path());
    let mut plan = Plan::new();
    let runs = imp.plan(&mut plan).expect("plan");
    run_plan(&runner, &plan);
    let results = imp_results(&runner.store, &runs).expect("results");
    let branches: Vec<(usize, &str)> = results
        .iter()
        .map(|r| (r.level, r.branch.as_str()))
        .collect();
    assert_eq!(
        branches,
        vec![
            (0, "imp"),
            (1, "imp"),
            (2, "imp"),
            (2, "random-prune"),
            (2, "reinit")
        ]
    );
    assert!((results[1].density - 0.8).abs() < 1e-3 && (results[2].density - 0.64).abs() < 1e-3);
    assert!((results[3].density - results[2].density).abs() < 1e-9);
    let final_model = |id: &RunId| runner.state_at(id, 30).expect("final").model;
    let (m1, m2) = (final_model(&runs.levels[1]), final_model(&runs.levels[2]));
    assert!(m2.mask.is_subset_of(&m1.mask));
    // Level 2 started from W_5 of the dense run, masked.
    let dense5 = runner.state_at(&runs.levels[0], 5).expect("W5").model;
    let child5 = runner.state_at(&runs.levels[2], 5).expect("start").model;
    let mask: HashMap<String, Vec<f32>> = child5.mask.to_host().into_iter().collect();
    for ((info, d), (_, c)) in tensor_values(&dense5.model)
        .iter()
        .zip(&tensor_values(&child5.model))
    {
        let expected: Vec<f32> = match mask.get(&info.path) {
            Some(m) => d.iter().zip(m).map(|(x, m)| x * m).collect(),
            None => d.clone(),
        };
        assert_eq!(c, &expected, "{}", info.path);
    }
    // Pruned weights are exactly zero at the end.
    let values: HashMap<String, Vec<f32>> = tensor_values(&m2.model)
        .into_iter()
        .map(|(i, v)| (i.path, v))
        .collect();
    for (path, m) in m2.mask.to_host() {
        assert!(
            values[&path]
                .iter()
                .zip(&m)
                .all(|(w, m)| *m == 1.0 || *w == 0.0)
        );
    }
    let reinit = final_model(runs.run(2, Branch::Reinit).expect("reinit"));
    let random = final_model(runs.run(2, Branch::RandomPrune).expect("random"));
    assert_eq!(reinit.mask.to_host(), m2.mask.to_host());
    assert_ne!(random.mask.to_host(), m2.mask.to_host());
    // A second plan of the same experiment trains nothing new.
    let mut again = Plan::new();
    let runs_again = imp.plan(&mut again).expect("plan");
    assert_eq!(runs_again, runs);
    run_plan(&runner, &again);
    assert_eq!(imp_results(&runner.store, &runs).expect("again"), results);
}

#[test]
fn a_child_with_its_parents_data_order_is_the_parent_itself() {
    let recipe = resnet_recipe();
    let rule = PruneRule::default();
    let mut plan = Plan::new();
    let parent = plan
        .train_from_init(&recipe, 1, 1, &eval(), &rule)
        .expect("parent");
    let other = plan
        .train_from_init(&recipe, 1, 2, &eval(), &rule)
        .expect("other");
    let branch = |plan: &mut Plan, step, seed, opt| {
        plan.branch(
            &parent,
            step,
            seed,
            MaskSource::Parent,
            WeightSource::Parent,
            opt,
        )
        .expect("branch")
    };
    assert_eq!(branch(&mut plan, 8, 1, OptimizerAtRewind::Rewound), parent);
    // At step 0 a fresh optimiser is the initial one: the run with that data seed.
    assert_eq!(branch(&mut plan, 0, 1, OptimizerAtRewind::Fresh), parent);
    assert_ne!(branch(&mut plan, 8, 1, OptimizerAtRewind::Fresh), parent);
    // At step 0 with another data order: the run from the init with that order.
    assert_eq!(branch(&mut plan, 0, 2, OptimizerAtRewind::Rewound), other);
    assert_eq!(plan.kept_steps(&parent), vec![0, 8]);
}

#[test]
fn a_plan_becomes_job_arrays_by_stage_with_afterok_on_every_parent() {
    use experiments::slurm::{
        ARRAY_TASK_ID, JobArray, JobCommands, JobInvocation, SlurmConfig, job_arrays, submit, task,
    };
    let recipe = resnet_recipe();
    let mut plan = Plan::new();
    let parent = plan
        .train_from_init(&recipe, 1, 0, &eval(), &PruneRule::default())
        .expect("parent");
    instability(vec![3, 4])
        .plan(
            &mut plan,
            &[ParentRun {
                init_seed: 1,
                run: parent.clone(),
                ks: vec![0, 8],
            }],
            24,
        )
        .expect("plan");
    let check = |arrays: &[JobArray], skipped: &[&RunId]| {
        let array_of = |id: &RunId| {
            arrays
                .iter()
                .position(|a| a.tasks.iter().any(|t| t.id == *id))
        };
        let listed: usize = arrays.iter().map(|a| a.tasks.len()).sum();
        assert_eq!(listed, plan.len() - skipped.len());
        for (i, array) in arrays.iter().enumerate() {
            for t in &array.tasks {
                assert_eq!(t.keep, plan.kept_steps(&t.id));
                for dep in plan.job(&t.id).expect("job").dependencies() {
                    match array_of(&dep) {
                        Some(j) => {
                            assert!(j < i, "{dep} is submitted after its child");
                            assert!(array.after.contains(&j), "{} waits for {dep}", t.id);
                        }
                        None => assert!(skipped.contains(&&dep)),
                    }
                }
            }
        }
    };
    let arrays = job_arrays(&plan, |_| false, 1000);
    // Parent and the k = 0 children (from the init) / the k = 8 children and the k = 0 pairs
    // / the k = 8 pairs.
    assert_eq!(arrays.len(), 3);
    assert_eq!(arrays[0].tasks[0].id, parent);
    assert!(arrays[0].after.is_empty());
    check(&arrays, &[]);
    // A finished parent is not submitted, and nothing waits for it.
    let without_parent = job_arrays(&plan, |id| *id == parent, 1000);
    check(&without_parent, &[&parent]);
    // Arrays larger than the cluster allows are split; dependencies follow the parts.
    let small = job_arrays(&plan, |_| false, 1);
    assert_eq!(small.len(), plan.len());
    assert!(small[0].name.ends_with("part-0"));
    check(&small, &[]);

    // Submission through a stand-in `sbatch` that records its arguments.
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("sbatch");
    let calls = dir.path().join("calls.txt");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo slurm 0; exit 0; }}\n\
             echo \"$@\" >> {0}\nn=$(wc -l < {0})\necho $((100 + n))\n",
            calls.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let fake_rewind = dir.path().join("rewind-binary");
    std::fs::write(&fake_rewind, "binary").expect("write");
    let config = SlurmConfig {
        partition: Some("gpu".into()),
        gpus_per_job: 1,
        time: Some("02:00:00".into()),
        sbatch: bin,
        ..SlurmConfig::default()
    };
    // A binary with its own grammar: the library writes only what it is told.
    struct Grammar;
    impl JobInvocation for Grammar {
        fn run_task(&self, store: &std::path::Path, manifest: &std::path::Path) -> Vec<String> {
            let words = ["--data-dir", "/data with space", "exec", "--manifest"];
            let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            words.extend([manifest.display().to_string(), "--in".into()]);
            words.extend([store.display().to_string(), "--task".into()]);
            words.extend([ARRAY_TASK_ID.into(), "--devices".into(), "1".into()]);
            words
        }
        fn render_report(&self, store: &std::path::Path, config: &std::path::Path) -> Vec<String> {
            let words = ["report", "--config"];
            let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            words.push(config.display().to_string());
            words.extend(["--in".into(), store.display().to_string()]);
            words
        }
    }
    let commands = JobCommands {
        binary: fake_rewind,
        invocation: &Grammar,
        report: Some(paper::config(experiments::reproduce::Scale::Smoke)),
    };
    let store = dir.path().join("store");
    let submission = submit(&store, &arrays, &commands, &config).expect("submit");
    let ids: Vec<&str> = submission.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, vec!["101", "102", "103"]);
    assert_eq!(submission.runs(), plan.len());
    for (job, array) in submission.jobs.iter().zip(&arrays) {
        let after: Vec<String> = array.after.iter().map(|i| format!("{}", 101 + i)).collect();
        assert_eq!(job.after, after, "{}", job.name);
    }
    assert_eq!(submission.final_job.as_deref(), Some("104"));
    let calls = std::fs::read_to_string(&calls).expect("calls");
    let lines: Vec<&str> = calls.lines().collect();
    assert!(lines[0].starts_with("--parsable ") && !lines[0].contains("dependency"));
    for (line, array) in lines[1..3].iter().zip(&arrays[1..]) {
        let after: Vec<String> = array.after.iter().map(|i| format!("{}", 101 + i)).collect();
        assert!(
            line.contains(&format!("--dependency=afterok:{}", after.join(":"))),
            "{line}"
        );
    }
    assert!(lines[3].contains("--dependency=afterok:101:102:103"));
    let script = std::fs::read_to_string(submission.dir.join("stage-01.sbatch")).expect("script");
    for expected in [
        format!("#SBATCH --array=0-{}", arrays[1].tasks.len() - 1),
        "#SBATCH --partition=gpu".into(),
        "#SBATCH --gres=gpu:1".into(),
        "#SBATCH --time=02:00:00".into(),
        "#SBATCH --kill-on-invalid-dep=yes".into(),
        "'/data with space'".into(),
        "exec --manifest".into(),
        format!(
            "--in {} --task",
            std::path::absolute(&store).expect("abs").display()
        ),
        "--task \"$SLURM_ARRAY_TASK_ID\" --devices 1".into(),
    ] {
        assert!(script.contains(&expected), "{expected} not in\n{script}");
    }
    assert_eq!(
        std::fs::read(submission.dir.join("rewind-binary")).expect("copy"),
        b"binary"
    );
    // The report job reproduces the serialised config, not a command line rebuilt by hand.
    let report = std::fs::read_to_string(submission.dir.join("report.sbatch")).expect("report");
    let file = submission.dir.join("reproduce.toml");
    assert!(
        report.contains(&format!(
            "report --config {} --in {}",
            file.display(),
            std::path::absolute(&store).expect("abs").display()
        )),
        "{report}"
    );
    let written: experiments::reproduce::ReproduceConfig =
        toml::from_str(&std::fs::read_to_string(&file).expect("config")).expect("toml");
    assert_eq!(written, paper::config(experiments::reproduce::Scale::Smoke));
    let manifest = submission.dir.join("stage-01.json");
    assert_eq!(task(&manifest, 0).expect("task"), arrays[1].tasks[0]);
    assert!(task(&manifest, 99).is_err());
    // Bad limits are refused before anything is submitted.
    let bad = SlurmConfig {
        time: Some("2 hours".into()),
        ..SlurmConfig::default()
    };
    assert!(submit(&store, &arrays, &commands, &bad).is_err());
    // Without sbatch nothing is written.
    let missing = SlurmConfig {
        sbatch: dir.path().join("no-sbatch-here"),
        ..SlurmConfig::default()
    };
    let submissions = || std::fs::read_dir(store.join("slurm")).expect("dir").count();
    let before = submissions();
    let err = submit(&store, &arrays, &commands, &missing).expect_err("no sbatch");
    assert!(err.to_string().contains("sbatch on PATH"), "{err}");
    assert_eq!(submissions(), before);
}

mod imp_levels;
mod integrity;
