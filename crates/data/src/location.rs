use std::path::{Path, PathBuf};

/// Environment variable that sets the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "REWIND_DATA_DIR";

/// The per-user cache directory: `$XDG_CACHE_HOME/rewind/data`, else `~/.cache/rewind/data`.
pub fn default_data_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("rewind").join("data")
}

/// The data directory to use: the explicit one, else `$REWIND_DATA_DIR`, else
/// [`default_data_dir`].
pub fn resolve_data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => default_data_dir(),
    }
}
