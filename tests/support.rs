//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use data::{DatasetName, Split};

/// The datasets the end-to-end tests train on.
const NEEDED: [DatasetName; 2] = [DatasetName::Mnist, DatasetName::FashionMnist];

fn has_all(dir: &Path) -> bool {
    NEEDED.iter().all(|d| dir.join(d.as_str()).is_dir())
}

/// The directory with the real datasets, found as the `rewind` binary finds it:
/// `$REWIND_DATA_DIR`, else the user cache (`~/.cache/rewind/data`), where MNIST and
/// Fashion-MNIST are downloaded (checksums verified) when missing. The read-only
/// `shared/data` beside the repository is used when it holds both. Panics with one message
/// when the data can be neither found nor downloaded: these tests are meant to run on real
/// data.
pub fn data_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        if std::env::var_os(data::DATA_DIR_ENV).is_none_or(|v| v.is_empty()) && has_all(&beside) {
            return beside;
        }
        let dir = data::resolve_data_dir(None);
        for name in NEEDED {
            for split in [Split::Train, Split::Test] {
                if let Err(e) = data::load(name, &dir, split, true) {
                    panic!(
                        "the end-to-end tests need real MNIST and Fashion-MNIST: {e}\nSet {} to a \
                         directory holding mnist/ and fashion-mnist/ (the IDX files), or allow \
                         the download into {}.",
                        data::DATA_DIR_ENV,
                        dir.display()
                    );
                }
            }
        }
        dir
    })
    .clone()
}
