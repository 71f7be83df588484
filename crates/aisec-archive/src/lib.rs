//! Tolerant, bounded readers for the containers model artifacts come in.
//!
//! `aisec scan` meets containers before it meets model formats: PyTorch
//! checkpoints, `.npz` and `.keras` files are zip archives; legacy PyTorch
//! checkpoints may be tar archives; joblib dumps may be zlib, gzip, bzip2,
//! xz, lzma-alone or lz4 streams; and users scan archives of models. This
//! crate owns that layer:
//!
//! * [`zip`]: a zip reader over the whole file as `&[u8]` that reads the
//!   central directory *and* every entry's local header, so it can see the
//!   disagreements scanners have been bypassed with (picklescan
//!   CVE-2025-1944, a local-header name that differs from the central one;
//!   CVE-2025-1945, flag bits that make Python's `zipfile` refuse an entry
//!   that PyTorch's miniz-based reader still loads). It falls back to a
//!   local-header scan when the central directory is missing.
//! * [`tar`]: ustar / GNU / pax tar entries as borrowed slices.
//! * [`sevenz`]: 7z archives (header parsed here with bounds, LZMA/LZMA2/
//!   deflate/bzip2/zstd folders decoded by the codec crates).
//! * [`compress`]: sniffing and bounded decompression of gzip, zlib, bzip2,
//!   xz, lzma-alone and lz4-frame streams.
//!
//! Every reader is bounded by [`Limits`]: entry counts, output sizes and
//! compression ratios. Nothing is read that was not asked for: parsing a zip
//! touches its end, its central directory and its local headers, never the
//! entry data (so a 1 GB checkpoint's tensors stay unread).
//!
//! Container anomalies are reported as [`aisec_core::Finding`]s of the rules
//! in [`RULES`], ids `AISEC-ARCHIVE-0NN`.
//!
//! Decompression bombs: the readers never return an error *only* because
//! output hit a limit. [`compress::decompress`] and
//! [`zip::ZipArchive::read_bounded`] return the bytes produced up to the
//! bound with `truncated_at_limit = true`, and the caller reports
//! [`bomb_finding`]. [`zip::ZipArchive::read`], which must return the whole
//! entry, returns [`ArchiveError::LimitExceeded`] instead.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod budget;
pub mod compress;
mod rules;
pub mod sevenz;
pub mod tar;
pub mod zip;

pub use budget::{FileBudget, Grant, MemoryPool};
pub use compress::{decompress, joblib_zfile, sniff_compression, Compression, Decompressed};
pub use rules::*;
pub use sevenz::{looks_like_7z, SevenZArchive, SevenZEntry, SevenZKind};
pub use tar::{looks_like_tar, TarArchive, TarEntry, TarEntryKind};
pub use zip::{looks_like_zip, ZipArchive, ZipEntry};

/// Bounds every reader in this crate respects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one entry or stream may decompress to (default 512 MiB).
    pub max_entry_bytes: u64,
    /// Most bytes all entries of one top-level file, across every nested
    /// container, may decompress to together (default 2 GiB); also the
    /// size of the [`MemoryPool`] of inflated bytes held at once by all
    /// parallel workers. Enforced by callers via [`FileBudget`] (or
    /// [`Budget`] for one container).
    pub max_total_bytes: u64,
    /// Most entries listed from one container (default 100 000).
    pub max_entries: usize,
    /// Largest tolerated ratio of decompressed to compressed size
    /// (default 1000). Output beyond `max(compressed × max_ratio, 1 MiB)`
    /// is not produced.
    pub max_ratio: u64,
    /// Most entries opened across one top-level file and every container
    /// nested in it (default 100 000); see [`FileBudget`].
    pub max_total_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entry_bytes: 512 * 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            max_entries: 100_000,
            max_ratio: 1000,
            max_total_entries: 100_000,
        }
    }
}

/// Output below this size is never treated as a ratio bomb: tiny inputs
/// (a 20-byte stream of zeros) legitimately have large ratios.
pub const RATIO_FLOOR_BYTES: u64 = 1024 * 1024;

impl Limits {
    /// The most bytes a stream of `compressed_len` bytes may produce:
    /// `min(max_entry_bytes, max(compressed_len × max_ratio, RATIO_FLOOR_BYTES))`.
    pub fn output_cap(&self, compressed_len: u64) -> u64 {
        let by_ratio = compressed_len
            .saturating_mul(self.max_ratio)
            .max(RATIO_FLOOR_BYTES);
        self.max_entry_bytes.min(by_ratio)
    }
}

/// A running total of decompressed bytes across the entries of one
/// container, enforcing [`Limits::max_total_bytes`].
#[derive(Debug, Clone)]
pub struct Budget {
    left: u64,
}

impl Budget {
    /// A fresh budget of `limits.max_total_bytes`.
    pub fn new(limits: &Limits) -> Self {
        Budget {
            left: limits.max_total_bytes,
        }
    }

    /// Bytes still allowed.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// The per-entry limits to use next: `max_entry_bytes` lowered to what
    /// the budget has left.
    pub fn entry_limits(&self, limits: &Limits) -> Limits {
        Limits {
            max_entry_bytes: limits.max_entry_bytes.min(self.left),
            ..*limits
        }
    }

    /// Records `n` bytes spent; errors once the total is exceeded.
    pub fn spend(&mut self, n: u64) -> Result<(), ArchiveError> {
        if n > self.left {
            self.left = 0;
            return Err(ArchiveError::LimitExceeded {
                what: "total decompressed bytes of the container",
                limit: 0,
            });
        }
        self.left -= n;
        Ok(())
    }
}

/// Why a container or one of its entries could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The bytes are not this kind of container at all.
    #[error("not a {kind} archive: {reason}")]
    NotAnArchive {
        /// `zip` or `tar`.
        kind: &'static str,
        /// What was missing.
        reason: String,
    },
    /// A structure is damaged beyond what the tolerant reader accepts.
    #[error("malformed {kind} data: {reason}")]
    Malformed {
        /// `zip`, `tar`, `gzip`...
        kind: &'static str,
        /// What was wrong, with offsets where known.
        reason: String,
    },
    /// A structure points past the end of the file.
    #[error("{what} lies outside the file (offset {offset}, length {len}, file size {file_len})")]
    OutOfBounds {
        /// What was being read.
        what: String,
        /// Start offset.
        offset: u64,
        /// Length wanted.
        len: u64,
        /// Size of the file.
        file_len: u64,
    },
    /// The entry is encrypted; its contents cannot be inspected.
    #[error("entry '{name}' is encrypted and cannot be read")]
    Encrypted {
        /// Central-directory name.
        name: String,
    },
    /// The entry uses a compression method this crate does not decode.
    #[error("entry '{name}' uses unsupported compression method {method} ({method_name})")]
    UnsupportedMethod {
        /// Central-directory name.
        name: String,
        /// Zip method number.
        method: u16,
        /// Human name of the method.
        method_name: &'static str,
    },
    /// A bound of [`Limits`] was reached.
    #[error("limit exceeded: {what} would exceed {limit} bytes (possible decompression bomb)")]
    LimitExceeded {
        /// Which quantity.
        what: &'static str,
        /// The bound in force.
        limit: u64,
    },
    /// The compressed stream is corrupt.
    #[error("corrupt {format} stream: {reason}")]
    Corrupt {
        /// `gzip`, `deflate`...
        format: &'static str,
        /// Decoder message.
        reason: String,
    },
}

/// Bounds-checked sub-slice: `data[off..off+len]` or an [`ArchiveError::OutOfBounds`].
pub(crate) fn slice_at(
    data: &[u8],
    off: u64,
    len: u64,
    what: impl FnOnce() -> String,
) -> Result<&[u8], ArchiveError> {
    let end = off.checked_add(len);
    match end {
        Some(end) if end <= data.len() as u64 => Ok(&data[off as usize..end as usize]),
        _ => Err(ArchiveError::OutOfBounds {
            what: what(),
            offset: off,
            len,
            file_len: data.len() as u64,
        }),
    }
}

/// An anomaly noted while reading a tar or 7z archive: its rule, the
/// member it concerns (`None`: the archive itself) and the evidence.
pub(crate) type MemberNote = (&'static aisec_core::Rule, Option<String>, String);

/// The findings of `notes`, located at `loc` (and the member, if any).
pub(crate) fn member_findings(
    notes: &[MemberNote],
    loc: &aisec_core::Location,
) -> Vec<aisec_core::Finding> {
    notes
        .iter()
        .map(|(rule, member, ev)| {
            let l = match member {
                Some(m) => loc.clone().with_member(m.clone()),
                None => loc.clone(),
            };
            rule.finding(l, ev.clone())
        })
        .collect()
}

/// True when an entry name would escape the extraction directory: it is
/// absolute (`/x`, `\x`, `C:...`) or has a `..` component (either slash).
pub fn is_traversal_name(name: &str) -> bool {
    if name.starts_with('/') || name.starts_with('\\') {
        return true;
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return true;
    }
    name.split(['/', '\\']).any(|c| c == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_names() {
        for n in [
            "../x",
            "a/../../b",
            "/etc/passwd",
            "\\w",
            "C:\\x",
            "a\\..\\b",
        ] {
            assert!(is_traversal_name(n), "{n}");
        }
        for n in ["archive/data.pkl", "a..b/c", "..a", "x/.../y"] {
            assert!(!is_traversal_name(n), "{n}");
        }
    }

    #[test]
    fn output_cap_uses_ratio_and_floor() {
        let l = Limits::default();
        assert_eq!(l.output_cap(10), RATIO_FLOOR_BYTES);
        assert_eq!(l.output_cap(10 * 1024 * 1024), l.max_entry_bytes);
        assert_eq!(l.output_cap(4096), 4096 * 1000);
    }

    #[test]
    fn budget_spends_down() {
        let l = Limits {
            max_total_bytes: 100,
            ..Limits::default()
        };
        let mut b = Budget::new(&l);
        b.spend(60).unwrap();
        assert_eq!(b.entry_limits(&l).max_entry_bytes, 40);
        assert!(b.spend(41).is_err());
        assert_eq!(b.remaining(), 0);
    }
}
