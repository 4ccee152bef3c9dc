//! `imp`, `instability` and the store's commands, per-layer rates and one-shot ImageNet pruning.

use std::process::Command;

use super::{rewind, run};

#[test]
fn imp_then_sparse_instability_share_one_store_that_runs_lists_and_cleans() {
    let store = tempfile::tempdir().expect("tmp");
    let data = integration::data_dir();
    let on = |cmd: &mut Command, store: &std::path::Path| {
        cmd.arg("--data-dir")
            .arg(&data)
            .args(["--no-download", "--quiet", "--store"])
            .arg(store);
    };
    let common = |cmd: &mut Command| on(cmd, store.path());
    let mut imp = rewind();
    imp.args([
        "imp",
        "--steps",
        "60it",
        "--eval-every",
        "60it",
        "--train-eval-subset",
        "0",
        "--test-eval-subset",
        "500",
        "--levels",
        "1",
        "--baselines",
        "random-prune",
    ]);
    common(&mut imp);
    let (ok, stdout, stderr) = run(&mut imp);
    assert!(ok, "{stderr}");
    let level1 = stdout
        .lines()
        .find(|l| l.starts_with("1 ") && l.contains(" imp "))
        .and_then(|l| l.split_whitespace().last())
        .expect("level 1 run id")
        .to_string();
    assert!(
        stdout.contains("random-prune") && stdout.contains("80.00%"),
        "{stdout}"
    );
    // A plain `train` of the dense run lands on the same store entry as IMP's level 0.
    let mut train = rewind();
    train.args([
        "train",
        "--steps",
        "60it",
        "--eval-every",
        "60it",
        "--train-eval-subset",
        "0",
        "--test-eval-subset",
        "500",
    ]);
    common(&mut train);
    let (ok, stdout, stderr) = run(&mut train);
    assert!(ok && stdout.starts_with("reused"), "{stdout} {stderr}");
    let instability_in = |align: &str, store: &std::path::Path| {
        let mut inst = rewind();
        inst.args([
            "instability",
            "--sparse-start",
            &level1,
            "--orders",
            "2",
            "--points",
            "3",
            "--align",
            align,
        ]);
        on(&mut inst, store);
        run(&mut inst)
    };
    let instability = |align: &str| instability_in(align, store.path());
    let (ok, stdout, stderr) = instability("none");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("test instability") && stdout.contains("test loss barrier"),
        "{stdout}"
    );
    // The same children aligned by weight matching: one more interpolation, nothing trained.
    let (ok, stdout, stderr) = instability("weights");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("test instability"), "{stdout}");
    // And by activation matching: one more interpolation.
    let (ok, stdout, stderr) = instability("activations");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("test instability"), "{stdout}");
    // 3 IMP runs + 1 new child (the other is the level run itself) + 3 interpolations.
    let (ok, stdout, _) = run(rewind().args(["runs", "list", "--store"]).arg(store.path()));
    assert!(ok);
    assert!(stdout.contains("7 runs (7 done)"), "{stdout}");
    let (ok, stdout, _) = run(rewind()
        .args(["runs", "show", &level1, "--store"])
        .arg(store.path()));
    assert!(
        ok && stdout.contains("\"mask\": \"prune\"") && stdout.contains("result"),
        "{stdout}"
    );
    let (ok, stdout, _) = run(rewind().args(["runs", "gc", "--store"]).arg(store.path()));
    assert!(ok && stdout.contains("0 unfinished runs"), "{stdout}");
    let (ok, _, stderr) = run(rewind()
        .args(["runs", "show", "train-0000", "--store"])
        .arg(store.path()));
    assert!(!ok && stderr.contains("no run train-0000") && !stderr.contains("panicked"));
    // Carried to a store on another machine in one archive: the interpolation asked again
    // there reuses everything.
    let elsewhere = tempfile::tempdir().expect("tmp");
    let archive = elsewhere.path().join("runs.tar.gz");
    let (ok, stdout, stderr) = run(rewind()
        .args(["runs", "export"])
        .arg(&archive)
        .arg("--store")
        .arg(store.path()));
    assert!(
        ok && stdout.contains("exported 7 finished runs"),
        "{stdout} {stderr}"
    );
    let moved = elsewhere.path().join("store");
    std::fs::create_dir_all(&moved).expect("store");
    let (ok, stdout, stderr) = run(rewind()
        .args(["runs", "import"])
        .arg(&archive)
        .arg("--store")
        .arg(&moved));
    assert!(
        ok && stdout.contains("imported 7 runs"),
        "{stdout} {stderr}"
    );
    let (ok, _, stderr) = instability_in("none", &moved);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = run(rewind().args(["runs", "list", "--store"]).arg(&moved));
    assert!(ok && stdout.contains("7 runs (7 done)"), "{stdout}");
}

#[test]
fn imp_prunes_a_layer_at_its_own_rate_and_refuses_a_layer_it_does_not_prune() {
    let store = tempfile::tempdir().expect("tmp");
    let imp = |rates: &str| {
        run(rewind()
            .arg("--data-dir")
            .arg(integration::data_dir())
            .args([
                "imp", "--preset", "lenet", "--steps", "20it", "--levels", "1",
            ])
            .args([
                "--eval-every",
                "20it",
                "--train-eval-subset",
                "100",
                "--quiet",
            ])
            .args(["--layer-rates", rates, "--store"])
            .arg(store.path()))
    };
    // Lenet's output layer is not pruned (the paper's framework): refused before training.
    let (ok, _, stderr) = imp("Lenet.output=0.1");
    assert!(
        !ok && stderr.contains("the pruned layers are Lenet.hidden.0, Lenet.hidden.1"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(store.path())
            .expect("store")
            .next()
            .is_none()
    );
    // hidden.1 (30,000 weights) loses half, hidden.0 (235,200) a fifth: 203,160 of 265,200.
    let (ok, stdout, stderr) = imp("Lenet.hidden.1=0.5");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("76.61%"), "{stdout}");
}

/// An ImageNet-format tree (`train/<class>/*.JPEG`, `val/<class>/*.JPEG`): 3 classes of
/// 4 training and 2 validation images, a colour per class.
fn tiny_imagenet(dir: &std::path::Path) {
    for (c, colour) in [[210u8, 30, 30], [30, 210, 30], [30, 30, 210]]
        .iter()
        .enumerate()
    {
        for (split, n) in [("train", 4u32), ("val", 2)] {
            let folder = dir.join(split).join(format!("n0100{c}"));
            std::fs::create_dir_all(&folder).expect("mkdir");
            for i in 0..n {
                image::RgbImage::from_fn(90 + 6 * i, 72, |x, y| {
                    let s = ((x * 3 + y) % 40) as u8;
                    image::Rgb([colour[0] ^ s, colour[1] ^ s, colour[2] ^ s])
                })
                .save(folder.join(format!("{i}.JPEG")))
                .expect("jpeg");
            }
        }
    }
}

#[test]
fn resnet50_prunes_one_shot_to_30_percent_data_parallel_on_an_imagenet_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    tiny_imagenet(&data.join("imagenet"));
    let store = tmp.path().join("runs");
    let (ok, stdout, stderr) = run(rewind()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--no-download",
            "imp",
            "--preset",
            "resnet50",
            "--steps",
            "4it",
            "--image-size",
            "64",
            "--batch-size",
            "6",
            "--micro-batches",
            "2",
            "--devices",
            "2",
            "--eval-every",
            "4it",
            "--train-eval-subset",
            "6",
            "--quiet",
            "--store",
        ])
        .arg(&store));
    assert!(ok, "{stderr}");
    // Level 0 dense, level 1 one-shot to 30% (the ImageNet presets' default).
    assert!(
        stdout.contains("100.00%") && stdout.contains("30.00%"),
        "{stdout}"
    );
    assert!(!stdout.contains("24.00%"), "one round only: {stdout}");
    let (ok, stdout, stderr) = run(rewind()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--no-download",
            "reproduce",
            "--scale",
            "smoke",
            "--models",
            "resnet50",
            "--dry-run",
            "--store",
        ])
        .arg(&store));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("resnet50: resnet-50-w4 for 16 steps")
            && stdout.contains("1 pruning rounds of 70.0%"),
        "{stdout}"
    );
}
