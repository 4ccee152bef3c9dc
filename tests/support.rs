//! Helpers shared by the end-to-end tests.

use std::path::PathBuf;

/// The directory with the real datasets: `$REWIND_DATA_DIR`, else the `shared/data` folder
/// beside the repository (where CI and the development machines keep MNIST). Panics with
/// instructions when neither has MNIST: these tests are meant to run on real data.
pub fn data_dir() -> PathBuf {
    let candidates = [
        std::env::var_os(data::DATA_DIR_ENV).map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")),
    ];
    for dir in candidates.into_iter().flatten() {
        if dir.join("mnist").is_dir() {
            return dir;
        }
    }
    panic!(
        "real MNIST is needed: set {} to a directory holding mnist/ (the four IDX files)",
        data::DATA_DIR_ENV
    );
}
