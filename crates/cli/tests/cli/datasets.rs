//! `reproduce` and the datasets: substitution, dry runs, CIFAR-100, SVHN and your own folder.

use super::{rewind, run};

#[test]
fn reproduce_says_how_to_substitute_cifar_and_plans_without_running() {
    let store = tempfile::tempdir().expect("tmp");
    let data = integration::data_dir();
    let reproduce = |extra: &[&str]| {
        run(rewind()
            .arg("--data-dir")
            .arg(&data)
            .args(["--no-download", "reproduce", "--scale", "smoke", "--store"])
            .arg(store.path())
            .args(extra))
    };
    // Planning reads no data: the dry run works without CIFAR-10.
    let (ok, stdout, stderr) = reproduce(&["--dry-run"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("153 runs (60 trainings, 93 interpolations)"),
        "{stdout}"
    );
    // A network without the scale's cut: the library says why, the binary in its own flags.
    let (ok, _, stderr) = run(rewind()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "reproduce",
            "--scale",
            "medium",
            "--models",
            "lenet,vgg16",
            "--dry-run",
        ])
        .args(["--substitute", "cifar10=fashion-mnist", "--store"])
        .arg(store.path()));
    assert!(
        !ok && stderr.contains("`vgg16` has no medium cut")
            && stderr.contains("Networks with a medium cut: lenet, resnet20.")
            && stderr.contains("Pass --models lenet to run the others."),
        "{stderr}"
    );
    // Running needs the data: a missing CIFAR-10 is one message with what to do, before
    // anything is trained.
    let (ok, _, stderr) = reproduce(&["--quiet"]);
    assert!(!ok, "CIFAR-10 is not in the shared data");
    assert!(
        stderr.contains("--substitute cifar10=fashion-mnist") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        !std::fs::read_dir(store.path())
            .expect("store")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("train-")),
        "nothing was trained or planned into the store"
    );
    let (ok, stdout, stderr) = run(rewind()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--no-download",
            "reproduce",
            "--scale",
            "paper",
            "--models",
            "lenet,resnet20",
            "--substitute",
            "cifar10=fashion-mnist",
            "--dry-run",
            "--store",
        ])
        .arg(store.path()));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("lenet: lenet-300-100 for 24000 steps, 3 inits x 3 data orders")
            && stdout.contains("15 pruning rounds of 20.0%")
            && stdout.contains("0 already finished"),
        "{stdout}"
    );
    let (ok, _, stderr) = run(rewind().args(["reproduce", "--substitute", "cifar10", "--dry-run"]));
    assert!(!ok && stderr.contains("PAPER=USED"), "{stderr}");

    // The Slurm executor: the dry run names the job arrays; a bad limit and a missing sbatch
    // are one clear message each, and nothing is submitted.
    let slurm = |extra: &[&str]| {
        run(rewind()
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--no-download",
                "reproduce",
                "--scale",
                "smoke",
                "--models",
                "lenet",
                "--executor",
                "slurm",
                "--store",
            ])
            .arg(store.path())
            .args(extra)
            .env("PATH", "/nonexistent"))
    };
    let (ok, stdout, stderr) = slurm(&["--dry-run"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Slurm: 5 job arrays: stage-00 (3), stage-01 (12)")
            && stdout.contains("then the report job"),
        "{stdout}"
    );
    let (ok, _, stderr) = slurm(&["--time", "2 hours"]);
    assert!(
        !ok && stderr.contains("HH:MM:SS") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let (ok, _, stderr) = slurm(&[]);
    assert!(
        !ok && stderr.contains("needs Slurm's sbatch on PATH") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// CIFAR-100 in its official binary layout (`cifar-100-binary/train.bin`, `test.bin`: a coarse
/// and a fine label byte, then 3072 pixel bytes), fine labels spread over all 100 classes.
fn tiny_cifar100(dir: &std::path::Path) {
    let bin = dir.join("cifar-100-binary");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for (name, n) in [("train.bin", 24usize), ("test.bin", 8)] {
        let mut bytes = Vec::new();
        for i in 0..n {
            let fine = (i * 37 + n) % 100;
            bytes.extend([(fine / 5) as u8, fine as u8]);
            bytes.extend((0..3072).map(|p| ((p * (fine + 1)) % 256) as u8));
        }
        std::fs::write(bin.join(name), bytes).expect("write");
    }
}

#[test]
fn a_cifar10_preset_trains_on_cifar100_and_svhn_files_with_their_classes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    tiny_cifar100(&data.join("cifar100"));
    let svhn = data.join("svhn");
    std::fs::create_dir_all(&svhn).expect("mkdir");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/fixtures/svhn");
    for file in ["train_32x32.mat", "test_32x32.mat"] {
        std::fs::copy(fixtures.join(file), svhn.join(file)).expect("copy");
    }
    for (dataset, classes) in [("cifar100", 100.0f64), ("svhn", 10.0)] {
        let out = tmp.path().join(dataset);
        let (ok, stdout, stderr) = run(rewind()
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--no-download",
                "train",
                "--preset",
                "resnet20",
                "--dataset",
                dataset,
                "--steps",
                "2it",
                "--batch-size",
                "4",
                "--eval-every",
                "2it",
                "--train-eval-subset",
                "4",
                "--quiet",
                "--out",
            ])
            .arg(&out));
        assert!(ok, "{dataset}: {stderr}");
        assert!(stdout.starts_with("trained"), "{stdout}");
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("metrics.json")).expect("metrics"))
                .expect("json");
        // Two steps from initialisation: the loss is about that of guessing among the
        // dataset's classes, ln 100 = 4.6 for CIFAR-100, ln 10 = 2.3 for SVHN.
        let loss = metrics[0]["test_loss"].as_f64().expect("loss");
        assert!(
            (loss - classes.ln()).abs() < 0.5 * classes.ln(),
            "{dataset}: test loss {loss} after 2 steps, expected about ln {classes}"
        );
    }
}

/// README.md's "Your own dataset", step by step: a folder of PNGs (here the first 1,000 MNIST
/// test digits written out by class) with its `dataset.toml`, then a reproduction of Lenet's
/// experiments on it in place of MNIST.
#[test]
fn a_folder_of_your_own_images_goes_through_reproduce() {
    use data::Dataset;
    let tmp = tempfile::tempdir().expect("tmp");
    let digits = tmp.path().join("data/digits");
    let mnist = data::mnist::load(
        data::DatasetName::Mnist,
        &integration::data_dir().join("mnist"),
        data::Split::Test,
        false,
    )
    .expect("MNIST");
    for i in 0..1000 {
        let item = mnist.get(i).expect("digit");
        let split = if i < 800 { "train" } else { "test" };
        let folder = digits.join(split).join(format!("digit-{}", item.label));
        std::fs::create_dir_all(&folder).expect("mkdir");
        image::GrayImage::from_raw(28, 28, item.pixels)
            .expect("28x28")
            .save(folder.join(format!("{i:04}.png")))
            .expect("png");
    }
    std::fs::write(
        digits.join("dataset.toml"),
        "title = \"Digits\"\nchannels = 1\nmean = [0.1307]\nstd = [0.3081]\n",
    )
    .expect("toml");
    let out = tmp.path().join("report");
    let (ok, stdout, stderr) = run(rewind()
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args([
            "--no-download",
            "reproduce",
            "--scale",
            "smoke",
            "--models",
            "lenet",
        ])
        .args(["--substitute", "mnist=digits", "--quiet", "--store"])
        .arg(tmp.path().join("store"))
        .arg("--out")
        .arg(&out));
    assert!(ok, "{stdout}\n{stderr}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results"))
            .expect("json");
    let setup = &results["models"][0]["setup"];
    // Named with the fingerprint of its description and files (new data, new runs).
    let used = setup["network"]["dataset"].as_str().expect("dataset");
    assert!(
        used.starts_with("digits@") && used.len() == 7 + 16,
        "{setup}"
    );
    assert_eq!(setup["substituted_for"], "mnist", "{setup}");
    let report = std::fs::read_to_string(out.join("REPORT.md")).expect("report");
    // Reports and figures write it as its dataset.toml's title says.
    assert!(report.contains("**Digits (substituted)**"), "{report}");
    // results.json read where the folder is not (this process never registered it): its
    // record of the dataset's spec is enough to draw the report again.
    assert!("digits".parse::<data::DatasetName>().is_err());
    let again = figures::read_results(&out.join("results.json")).expect("read back");
    let dataset = again.models[0].setup.network.dataset;
    assert_eq!((dataset.title(), dataset.num_classes()), ("Digits", 10));
    figures::write_report(&again, &tmp.path().join("again")).expect("rendered again");
}
