//! The golden lock files of `golden/`: byte-level fixtures any language can
//! use, their manifest, and the regeneration and drift check behind
//! `rvlf golden regen` and `rvlf golden check`.

use std::path::{Path, PathBuf};

/// Why the golden files could not be written or checked.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One difference between `golden/` and what regeneration would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub path: PathBuf,
    pub what: String,
}

/// Rewrite every fixture and the manifest in `dir`; returns the files written.
pub fn regen(dir: &Path) -> Result<Vec<PathBuf>, GoldenError> {
    let _ = dir;
    Ok(Vec::new())
}

/// Compare `dir` with what [`regen`] would write, byte for byte.
pub fn check(dir: &Path) -> Result<Vec<Drift>, GoldenError> {
    let _ = dir;
    Ok(Vec::new())
}
