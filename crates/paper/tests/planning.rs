//! The registry of the paper's networks and planning without data.

use data::DatasetName;
use train::{Recipe, Steps};

use experiments::Error;
use experiments::runs::DataCache;

#[test]
fn the_registry_holds_table_1() {
    use paper::{ENTRIES, entry, recipe};
    let names = paper::names();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "one entry per name");
    for e in ENTRIES {
        let r = (e.recipe)();
        assert_eq!(r.name, e.name, "a recipe is named after its entry");
        r.validate().expect("valid");
        let text = toml::to_string(&r).expect("toml");
        assert_eq!(toml::from_str::<Recipe>(&text).expect("parse"), r, "{text}");
        // The pruning schedule reaches the paper's density (Table 1 rounds 1.5% to 1.4%).
        let paper = e
            .paper
            .expect("every registry entry is a network of the paper");
        assert!(
            (100.0 * e.pruning.density() - paper.density).abs() < 0.15,
            "{}: {:.2}% vs {}%",
            e.name,
            100.0 * e.pruning.density(),
            paper.density
        );
        assert_eq!(paper.dataset, r.data.dataset);
    }
    assert!(matches!(
        entry("resnet56"),
        Err(Error::UnknownNetwork { .. })
    ));
    let lenet = recipe("lenet").expect("lenet");
    assert_eq!(
        (lenet.data.batch_size, lenet.training_steps.resolve(1000)),
        (60, 24_000)
    );
    assert_eq!(lenet.schedule.lr_at(20_000, 24_000, 1000), 1.2e-3);
    let warm = recipe("resnet20-warmup").expect("warmup");
    assert!((warm.schedule.lr_at(15_000, 63_000, 391) - 0.015).abs() < 1e-12);
    assert!((warm.schedule.lr_at(50_000, 63_000, 391) - 0.0003).abs() < 1e-12);
    // ImageNet: 1,281,167 images in batches of 1024 are 1252 iterations per epoch.
    let r50 = recipe("resnet50").expect("resnet50");
    assert_eq!(r50.training_steps.resolve(1252), 90 * 1252);
    assert_eq!((r50.data.batch_size, r50.data.micro_batches), (1024, 4));
    assert!((r50.schedule.lr_at(0, 112_680, 1252) - 0.0).abs() < 1e-12);
    assert!((r50.schedule.lr_at(2 * 1252 + 626, 112_680, 1252) - 0.2).abs() < 1e-12);
    assert!((r50.schedule.lr_at(29 * 1252, 112_680, 1252) - 0.4).abs() < 1e-12);
    assert!((r50.schedule.lr_at(30 * 1252, 112_680, 1252) - 0.04).abs() < 1e-12);
    assert!((r50.schedule.lr_at(85 * 1252, 112_680, 1252) - 0.0004).abs() < 1e-9);
    let inc = recipe("inception-v3").expect("inception");
    let total = inc.training_steps.resolve(1252);
    assert_eq!(total, 171 * 1252);
    assert!((inc.schedule.lr_at(0, total, 1252) - 0.03).abs() < 1e-12);
    assert!((inc.schedule.lr_at(total / 2, total, 1252) - 0.0175).abs() < 1e-6);
    assert!((inc.schedule.lr_at(total, total, 1252) - 0.005).abs() < 1e-12);
    // Epoch-based positions such as the paper's k = 18 epochs.
    assert_eq!(Steps::parse("18ep").expect("18ep").resolve(1252), 22_536);
    let mut small = r50.clone();
    small.data.image_size = Some(16);
    assert!(matches!(small.validate(), Err(train::Error::Config(_))));
    small.data.image_size = Some(64);
    small.data.micro_batches = 2048;
    assert!(matches!(small.validate(), Err(train::Error::Config(_))));
    let short = recipe("resnet20")
        .expect("r")
        .with_length(Steps::iterations(630), 391);
    assert_eq!(
        short.schedule.milestones,
        vec![Steps::iterations(320), Steps::iterations(480)]
    );
}

/// Planning needs epoch lengths, not data: the plans of every scale are made from the
/// datasets' published sizes, with the run counts of the reproduction before the registry
/// (smoke 87 runs, quick 124 + 2 length checks; paper: 8,148 for the seven CIFAR-size
/// networks), plus the aligned interpolations of "Beyond the paper": one per pair of the
/// dense and IMP analyses for weight matching and for activation matching, and where there
/// is BN three more (BN re-estimated without alignment, and with each alignment), and the
/// interpolation of two inits' dense runs under each of these and without alignment (one
/// more training per network where the scale has one init): smoke 153, quick 202.
#[test]
fn reproductions_are_planned_without_data() {
    use experiments::reproduce::{PublishedSizes, Scale};
    use paper::{config, plan};
    let sizes = |scale: Scale, models: Option<Vec<&str>>| {
        let mut c = config(scale);
        c.substitutes = vec![(DatasetName::Cifar10, DatasetName::FashionMnist)];
        if let Some(m) = models {
            c.models = m.into_iter().map(String::from).collect();
        }
        let (p, models) = plan(&c, &PublishedSizes).expect("plan");
        let trains = p.ids().iter().filter(|id| id.is_training()).count();
        (p.len(), trains, models.len())
    };
    assert_eq!(sizes(Scale::Smoke, None), (153, 60, 3));
    assert_eq!(sizes(Scale::Quick, None), (202, 66, 3));
    assert_eq!(sizes(Scale::Medium, None), (371, 89, 2));
    let cifar = paper::ENTRIES
        .iter()
        .filter(|e| (e.recipe)().data.dataset != DatasetName::Imagenet)
        .map(|e| e.name)
        .collect();
    assert_eq!(sizes(Scale::Paper, Some(cifar)), (11643, 4071, 7));
    let mut unknown = config(Scale::Smoke);
    unknown.models = vec!["resnet56".into()];
    assert!(matches!(
        plan(&unknown, &PublishedSizes),
        Err(Error::UnknownNetwork { .. })
    ));
    let mut nothing = config(Scale::Smoke);
    nothing.figures.clear();
    assert!(plan(&nothing, &PublishedSizes).is_err());
}

/// The quick and medium conv nets' length check is the same dense run (model, data, seeds,
/// evaluation) at 3x the length, its schedule scaled from Table 1's; Lenet (full length) and
/// the smoke scale have none.
#[test]
fn the_length_check_is_the_dense_run_at_three_times_the_length() {
    use experiments::reproduce::{PublishedSizes, Scale};
    use paper::{config, plan};
    for scale in [Scale::Quick, Scale::Medium] {
        let mut c = config(scale);
        c.substitutes = vec![(DatasetName::Cifar10, DatasetName::FashionMnist)];
        let (p, models) = plan(&c, &PublishedSizes).expect("plan");
        assert!(models.iter().any(|m| m.length_check.is_some()), "{scale}");
        check_length_checks(&p, &models);
    }
    let smoke = plan(&config(Scale::Smoke), &PublishedSizes)
        .expect("smoke")
        .1;
    assert!(smoke.iter().all(|m| m.length_check.is_none()));
}

fn check_length_checks(p: &experiments::runs::Plan, models: &[experiments::reproduce::ModelRuns]) {
    for m in models {
        let Some(experiments::reproduce::LengthCheckRuns {
            short: short_id,
            long,
        }) = &m.length_check
        else {
            assert_eq!(m.setup.preset, "lenet");
            assert!(m.setup.length_check.is_none());
            continue;
        };
        let (short, long) = (
            p.train_spec(short_id).expect("short"),
            p.train_spec(long).expect("long"),
        );
        let steps = m.setup.design.total_steps;
        assert_eq!(short.recipe, m.setup.recipe);
        assert_eq!(long.recipe.training_steps, Steps::iterations(3 * steps));
        assert_eq!(long.recipe.model, short.recipe.model);
        assert_eq!(long.recipe.data, short.recipe.data);
        assert_eq!(
            (long.init_seed, long.data_seed, &long.eval),
            (short.init_seed, short.data_seed, &short.eval)
        );
        // Table 1's drops at 32K and 48K of 63K iterations.
        let at =
            |of: u64| Steps::iterations((of as f64 * 3.0 * steps as f64 / 63_000.0).round() as u64);
        assert_eq!(
            long.recipe.schedule.milestones,
            vec![at(32_000), at(48_000)]
        );
        // The short run is the k = 0 child in the parents' data order: planned once.
        assert!(
            m.dense_pairs
                .iter()
                .any(|pair| pair.k == 0 && pair.children[0] == *short_id)
        );
    }
}

/// The medium scale: Resnet-20 with k at 0, 1, 3 and 10% of its length, IMP rewound to 0 and
/// 3%, trained networks scored on the whole test set and paths on 2,000 examples, no "Beyond
/// the paper" unless asked for; Lenet's runs are quick's (reused from a quick store); a
/// network without a medium cut is refused by name.
#[test]
fn the_medium_scale_measures_resnet20_at_its_ks_and_reuses_quicks_lenet() {
    use experiments::reproduce::{Figure, PublishedSizes, Scale};
    use paper::{config, plan};
    use results::Branch;
    let fashion = |scale| {
        let mut c = config(scale);
        c.substitutes = vec![(DatasetName::Cifar10, DatasetName::FashionMnist)];
        c
    };
    let medium = fashion(Scale::Medium);
    assert!(!medium.figures.contains(&Figure::Beyond));
    assert_eq!(medium.models, ["lenet", "resnet20"]);
    let (p, models) = plan(&medium, &PublishedSizes).expect("medium");
    let resnet = models
        .iter()
        .find(|m| m.setup.preset == "resnet20")
        .expect("resnet20");
    let design = &resnet.setup.design;
    let steps = design.total_steps;
    let at = |percent: u64| steps * percent / 100;
    assert_eq!(design.dense_ks, [0, at(1), at(3), at(10)]);
    assert_eq!(design.sparse_ks, [0, at(3)]);
    assert_eq!(resnet.setup.eval.test_subset, None, "the whole test set");
    // Fashion-MNIST in CIFAR-10's place trains as the paper trains MNIST; quick keeps the
    // recipe's crop-flip.
    assert_eq!(
        resnet.setup.recipe.data.augmentation,
        data::Augmentation::None
    );
    let quick_resnet = plan(&fashion(Scale::Quick), &PublishedSizes)
        .expect("quick")
        .1;
    let quick_resnet = quick_resnet
        .iter()
        .find(|m| m.setup.preset == "resnet20")
        .expect("r");
    assert_eq!(
        quick_resnet.setup.recipe.data.augmentation,
        data::Augmentation::CropFlip { padding: 4 }
    );
    // Every accuracy a verdict compares on the whole test set, the paper's 30 points, and a
    // replicate spread at every k (2 inits x 3 data orders).
    assert_eq!(
        (
            resnet.setup.curve_eval.test_subset,
            resnet.setup.curve_eval.train_subset
        ),
        (None, Some(2000))
    );
    assert_eq!(design.points, 30);
    assert_eq!((design.init_seeds.len(), design.data_seeds.len()), (2, 3));
    for k in &design.dense_ks {
        let pairs = resnet.dense_pairs.iter().filter(|p| p.k == *k).count();
        assert_eq!(pairs, 6, "k = {k}");
    }
    assert!(resnet.aligned.is_empty() && resnet.across_inits.is_empty());
    // Random pruning and reinitialisation at the rewind k only, IMP at both.
    assert_eq!(design.baseline_ks, Some(vec![at(3)]));
    for imp in &resnet.imp {
        let k = imp.k;
        assert_eq!(!imp.runs.baselines.is_empty(), k == at(3), "k = {k}");
    }
    // Sparse analyses only where the branch was trained: IMP at both k, the baselines at the
    // rewind k; none is empty (its density would be NaN, which results.json cannot hold).
    let analysed: Vec<(u64, Branch)> = resnet
        .sparse_pairs
        .iter()
        .map(|s| {
            assert!(!s.pairs.is_empty(), "{:?} at {}: no pairs", s.branch, s.k);
            (s.k, s.branch)
        })
        .collect();
    assert_eq!(
        analysed,
        vec![
            (0, Branch::Imp),
            (at(3), Branch::Imp),
            (at(3), Branch::RandomPrune),
            (at(3), Branch::Reinit)
        ]
    );
    let quick = plan(&fashion(Scale::Quick), &PublishedSizes)
        .expect("quick")
        .0;
    let mut lenet = fashion(Scale::Medium);
    lenet.models = vec!["lenet".into()];
    let lenet = plan(&lenet, &PublishedSizes).expect("lenet").0;
    let mut quick_lenet = fashion(Scale::Quick);
    quick_lenet.models = vec!["lenet".into()];
    quick_lenet.figures = medium.figures.clone();
    let quick_lenet = plan(&quick_lenet, &PublishedSizes).expect("quick lenet").0;
    assert!(!quick_lenet.is_empty());
    // Quick's Lenet for the same figures (init 1, orders 1 and 2) is part of medium's, reused
    // from a quick store.
    assert!(quick_lenet.ids().iter().all(|id| lenet.ids().contains(id)));
    assert!(p.ids().iter().any(|id| !quick.ids().contains(id)));
    let mut beyond = fashion(Scale::Medium);
    beyond.figures = vec![Figure::Beyond];
    let (_, with_beyond) = plan(&beyond, &PublishedSizes).expect("beyond");
    assert!(with_beyond.iter().all(|m| !m.aligned.is_empty()));
    let mut vgg = fashion(Scale::Medium);
    vgg.models = vec!["vgg16".into()];
    let err = plan(&vgg, &PublishedSizes).expect_err("no medium cut");
    assert!(matches!(err, Error::NoCut { .. }), "{err}");
    assert!(
        err.to_string().contains("`vgg16` has no medium cut"),
        "{err}"
    );
}

#[test]
fn a_missing_dataset_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = DataCache::new(dir.path(), false);
    let recipe = paper::recipe("lenet").expect("lenet");
    let err = data.for_recipe(&recipe).err().expect("no MNIST here");
    assert_eq!(err.missing_dataset(), Some(DatasetName::Mnist));
    assert!(err.to_string().contains("mnist"), "{err}");
}

/// Every run a committed reproduction names (its IMP level runs) is a run that today's code
/// plans for the same config: run ids are stable, so a store made then is reused now. The
/// committed runs were planned from the data on disk; these from the published sizes.
#[test]
fn the_runs_of_the_committed_reproductions_are_planned_today() {
    use experiments::reproduce::{PublishedSizes, ReproduceConfig};
    use paper::plan;
    fn ids(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if s.parse::<results::RunId>().is_ok() => {
                out.push(s.clone())
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| ids(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| ids(x, out)),
            _ => {}
        }
    }
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/results");
    for scale in ["quick", "medium"] {
        let read = |file: &str| {
            std::fs::read_to_string(format!("{docs}/{scale}/{file}")).expect("committed file")
        };
        let config: ReproduceConfig = toml::from_str(&read("reproduce.toml")).expect("config");
        let results: serde_json::Value = serde_json::from_str(&read("results.json")).expect("json");
        let mut named = Vec::new();
        ids(&results, &mut named);
        assert!(named.len() >= 10, "{scale}: {} run ids", named.len());
        let (p, _) = plan(&config, &PublishedSizes).expect("plan");
        let planned: Vec<String> = p.ids().iter().map(|id| id.to_string()).collect();
        for id in &named {
            assert!(planned.contains(id), "{scale}: {id} is no longer planned");
        }
    }
}

/// The ids of every run each scale plans (every network, every figure, CIFAR-10 substituted
/// by Fashion-MNIST, as the committed reproductions ran), as one SHA-256 per scale. A change
/// here means stores made before it are no longer reused: update the digests only when that
/// is intended, and say so. (The ids are hashed sorted since the IMP and sparse analyses
/// became units, which plan the same ids in another order; the sorted digests were taken
/// from the code before and after that move, equal at every scale.)
#[test]
fn every_scale_plans_the_same_run_ids() {
    use experiments::reproduce::{Figure, PublishedSizes, Scale};
    use paper::{config, plan};
    // Every figure that existed when the ids were pinned; the opt-in ones (added later) only
    // add runs: the IMP levels' interpolations, layer-wise IMP's trainings.
    let ids = |scale: Scale, figures: Vec<Figure>| {
        let mut c = config(scale);
        c.figures = figures;
        c.substitutes = vec![(DatasetName::Cifar10, DatasetName::FashionMnist)];
        let (p, _) = plan(&c, &PublishedSizes).expect("plan");
        p.ids().to_vec()
    };
    let pinned = || Figure::ALL.into_iter().filter(|f| !f.is_opt_in()).collect();
    // Sorted: the set of ids is what stores are reused by, not the order planning adds them.
    let digest = |scale: Scale| {
        let mut ids: Vec<String> = ids(scale, pinned())
            .iter()
            .map(|id| id.to_string())
            .collect();
        ids.sort();
        (ids.len(), results::sha256_hex(ids.join("\n").as_bytes()))
    };
    for scale in [Scale::Smoke, Scale::Quick] {
        let before = ids(scale, pinned());
        for (extra, trains) in [(Figure::Levels, false), (Figure::Layerwise, true)] {
            let mut figures: Vec<Figure> = pinned();
            figures.push(extra);
            let with = ids(scale, figures);
            assert!(before.iter().all(|id| with.contains(id)), "{scale} {extra}");
            let added: Vec<_> = with.iter().filter(|id| !before.contains(id)).collect();
            assert!(!added.is_empty(), "{scale} {extra}");
            assert_eq!(
                added.iter().any(|id| id.is_training()),
                trains,
                "{scale} {extra}"
            );
        }
    }
    let got: Vec<(Scale, usize, String)> =
        [Scale::Smoke, Scale::Quick, Scale::Medium, Scale::Paper]
            .into_iter()
            .map(|s| {
                let (n, d) = digest(s);
                (s, n, d)
            })
            .collect();
    for (scale, n, d) in &got {
        println!("{scale}: {n} runs, {d}");
    }
    let expected: [(Scale, usize, &str); 4] = [
        (
            Scale::Smoke,
            153,
            "ef12e7ea5ec23a60c97f3aed6875cecc59a68ab0c90ae2a6d06357711bf2efaa",
        ),
        (
            Scale::Quick,
            202,
            "8717c7d6f7adfdefe28673498f3efb15e2456d76895541428cc0e07b5812f1ea",
        ),
        (
            Scale::Medium,
            608,
            "6fc8ff8cbcba34f97837d178d37763b159678ac47c714770bf29748a605e4418",
        ),
        (
            Scale::Paper,
            14982,
            "09bc9142f7294d5cb67c23af4a4b86700f37f90a6e29b3e9b0c83443fe8c5bac",
        ),
    ];
    for ((scale, n, d), (_, en, ed)) in got.iter().zip(expected) {
        assert_eq!(
            (*n, d.as_str()),
            (en, ed),
            "{scale}: the planned run ids changed"
        );
    }
}
