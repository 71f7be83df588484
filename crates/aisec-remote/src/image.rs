//! The scan image: a temporary folder where each fetched object is a
//! sparse file of its full size holding the fetched ranges; the ranges a
//! plan skipped are holes and read as zeros without taking disk space.

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::plan::Sparse;

pub(crate) struct Image {
    dir: tempfile::TempDir,
}

impl Image {
    pub(crate) fn new() -> std::io::Result<Image> {
        Ok(Image {
            dir: tempfile::Builder::new().prefix("aisec-remote-").tempdir()?,
        })
    }

    /// The path prefix of every image file (`/tmp/aisec-remote-XXXX/`).
    pub(crate) fn prefix(&self) -> String {
        format!("{}/", self.dir.path().display())
    }

    /// Writes one object under `key` (already checked by `safe_key`).
    pub(crate) fn write(&self, key: &str, s: &Sparse) -> std::io::Result<PathBuf> {
        if !crate::source::safe_key(key) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{key}: not a safe file name"),
            ));
        }
        let path = self.dir.path().join(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::File::create(&path)?;
        f.set_len(s.size)?;
        for (at, b) in &s.ranges {
            f.seek(SeekFrom::Start(*at))?;
            f.write_all(b)?;
        }
        f.flush()?;
        Ok(path)
    }
}
