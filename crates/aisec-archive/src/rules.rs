//! The rules behind container-anomaly findings (ids `AISEC-ARCHIVE-0NN`).

use aisec_core::{Finding, Location};

const SUPPLY: &[&str] = &["AML.T0010.003"];
const HIDING: &[&str] = &["AML.T0010.003", "AML.T0074"];
const OWASP: &[&str] = &["LLM03"];

aisec_core::declare_rules! {
    /// ## What it detects
    /// A zip entry whose local file header carries a different file name than
    /// its central-directory record.
    ///
    /// ## Why it matters
    /// Readers that trust the local header and readers that trust the central
    /// directory then see different files. This is how picklescan was bypassed
    /// (CVE-2025-1944, fixed in picklescan 0.0.23): Python's `zipfile` raises
    /// `BadZipFile` on the mismatch, so the scanner skipped the member, while
    /// PyTorch's reader, which uses the central directory, loads it.
    ///
    /// ## Example
    /// A PyTorch checkpoint whose central directory lists `archive/data.pkl`
    /// while the local header at the same offset says `archive/data.pkx`.
    pub static ZIP_NAME_MISMATCH = {
        id: "AISEC-ARCHIVE-001",
        name: "zip-name-mismatch",
        title: "Zip local header names a different file than the central directory",
        severity: High,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Treat the file as hostile: do not load it. Rebuild the archive from trusted sources.",
    };

    /// ## What it detects
    /// Two central-directory entries with the same name.
    ///
    /// ## Why it matters
    /// Loaders disagree about which copy wins (the first or the last), so a
    /// scanner may inspect the benign copy while the loader uses the other.
    ///
    /// ## Example
    /// A `.npz` holding two members named `w.npy`: a numeric array first and
    /// an object array (a pickle) second.
    pub static ZIP_DUPLICATE_NAME = {
        id: "AISEC-ARCHIVE-002",
        name: "zip-duplicate-name",
        title: "Zip archive holds two entries with the same name",
        severity: High,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Do not load the file; rebuild the archive so every name is unique.",
    };

    /// ## What it detects
    /// Two zip entries whose data ranges overlap in the file.
    ///
    /// ## Why it matters
    /// Overlapping entries are the core of non-recursive zip bombs (Fifield,
    /// "A better zip bomb", WOOT 2019) and let one stored payload appear
    /// under several names.
    ///
    /// ## Example
    /// Central-directory records for `a.pkl` and `b.pkl` that both point at
    /// the local header at offset 0.
    pub static ZIP_OVERLAP = {
        id: "AISEC-ARCHIVE-003",
        name: "zip-overlapping-entries",
        title: "Zip entries overlap in the file",
        severity: Medium,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Do not extract or load the file.",
    };

    /// ## What it detects
    /// A zip central-directory record that points at a local header which is
    /// missing, damaged or runs past the end of the file, or a tar entry cut
    /// off by the end of the file.
    ///
    /// ## Why it matters
    /// Tolerant loaders may still read something there while strict scanners
    /// skip it, so the two see different content; at best the file is damaged.
    ///
    /// ## Example
    /// A central-directory record whose local-header offset is 10 MB into a
    /// 2 MB file.
    pub static ENTRY_OUT_OF_BOUNDS = {
        id: "AISEC-ARCHIVE-004",
        name: "archive-entry-out-of-bounds",
        title: "Archive entry extends past the end of the file or its header is damaged",
        severity: Medium,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Re-download the file from a trusted source; do not load damaged archives.",
    };

    /// ## What it detects
    /// A zip entry whose flags mark it encrypted (traditional or strong
    /// encryption).
    ///
    /// ## Why it matters
    /// Its contents cannot be scanned. PyTorch's zip reader ignores the
    /// encryption flag and loads the bytes as stored, which was used to hide
    /// payloads from picklescan (CVE-2025-1945).
    ///
    /// ## Example
    /// A checkpoint whose `archive/data.pkl` entry has general-purpose flag
    /// bit 0 set but is stored unencrypted.
    pub static ENCRYPTED_ENTRY = {
        id: "AISEC-ARCHIVE-005",
        name: "archive-encrypted-entry",
        title: "Archive entry is encrypted and cannot be inspected",
        severity: Medium,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Obtain an unencrypted copy and scan it before use.",
    };

    /// ## What it detects
    /// A zip entry that sets general-purpose flag bits ordinary writers
    /// (Python `zipfile`, PyTorch, NumPy) never set (anything beyond
    /// encryption, compression options, data descriptor and UTF-8 names), or
    /// whose local and central flags disagree.
    ///
    /// ## Why it matters
    /// Python's `zipfile` refuses some of these entries while PyTorch's miniz
    /// reader ignores the flags and loads them, which bypassed picklescan
    /// (CVE-2025-1945).
    ///
    /// ## Example
    /// An entry with flags `0x0020` (compressed patched data), which
    /// `zipfile` rejects as unsupported.
    pub static ZIP_UNUSUAL_FLAGS = {
        id: "AISEC-ARCHIVE-006",
        name: "zip-unusual-flags",
        title: "Zip entry has unusual general-purpose flag bits",
        severity: Medium,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Do not load the file; rebuild the archive with a standard writer.",
    };

    /// ## What it detects
    /// Bytes before the first zip entry.
    ///
    /// ## Why it matters
    /// The file can be a polyglot: another reader (a pickle loader, an
    /// executable loader) may parse the prefix as its own format, while
    /// archive tools show only the entries.
    ///
    /// ## Example
    /// A pickle stream followed by a valid zip: `pickle.load` runs the prefix,
    /// `unzip -l` lists clean members.
    pub static LEADING_DATA = {
        id: "AISEC-ARCHIVE-007",
        name: "archive-leading-data",
        title: "Archive has data before its first entry",
        severity: Medium,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Scan the prefix as its own artifact, or rebuild the archive without it.",
    };

    /// ## What it detects
    /// Bytes after the end of an archive: after the zip
    /// end-of-central-directory record, or after the tar end blocks.
    ///
    /// ## Why it matters
    /// They are invisible to archive readers but may be read by other
    /// parsers, so they can carry a second payload.
    ///
    /// ## Example
    /// A `.pt` zip with 4 KB of extra bytes after its end-of-central-directory
    /// record.
    pub static TRAILING_DATA = {
        id: "AISEC-ARCHIVE-008",
        name: "archive-trailing-data",
        title: "Archive has data after its end",
        severity: Low,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Strip the trailing bytes or rebuild the file.",
    };

    /// ## What it detects
    /// An archive entry whose name is absolute or contains `..` components.
    ///
    /// ## Why it matters
    /// Extracting the archive writes outside the target directory (zip-slip,
    /// tar traversal, e.g. CVE-2007-4559 in Python's `tarfile`), which can
    /// overwrite code or configuration.
    ///
    /// ## Example
    /// A zip member named `../../home/user/.bashrc`.
    pub static PATH_TRAVERSAL = {
        id: "AISEC-ARCHIVE-009",
        name: "archive-path-traversal",
        title: "Archive entry name escapes the extraction directory",
        severity: High,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Never extract this archive; if needed, extract with a reader that rejects such names.",
    };

    /// ## What it detects
    /// A zip entry whose declared uncompressed size is more than the ratio
    /// limit (default 1000) times its compressed size.
    ///
    /// ## Why it matters
    /// It is the signature of a decompression bomb meant to exhaust the
    /// memory or disk of whatever extracts it.
    ///
    /// ## Example
    /// A 10 KB deflate entry declaring 4 GB of output.
    pub static ZIP_DECLARED_RATIO = {
        id: "AISEC-ARCHIVE-010",
        name: "zip-declared-ratio",
        title: "Zip entry declares an extreme compression ratio",
        severity: Medium,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Do not extract the entry; scan with bounded readers only.",
    };

    /// ## What it detects
    /// A zip whose end-of-central-directory record or central directory is
    /// missing or unreadable; aisec then recovers the entries by walking the
    /// local headers.
    ///
    /// ## Why it matters
    /// Strict readers reject the file, while streaming readers that walk
    /// local headers still extract entries, so a scanner that gives up here
    /// misses content a loader may use.
    ///
    /// ## Example
    /// A PyTorch checkpoint truncated just before its central directory.
    pub static ZIP_NO_CENTRAL_DIRECTORY = {
        id: "AISEC-ARCHIVE-011",
        name: "zip-central-directory-missing",
        title: "Zip central directory is missing or damaged; entries recovered from local headers",
        severity: Medium,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Treat the file as damaged and hostile; do not load it.",
    };

    /// ## What it detects
    /// A zip entry whose CRC-32 or a tar header whose checksum does not match
    /// the bytes.
    ///
    /// ## Why it matters
    /// PyTorch's reader still loads zip entries with bad CRCs while strict
    /// readers reject them, so the mismatch can split scanner and loader
    /// views; it also means the file was altered after it was written.
    ///
    /// ## Example
    /// A checkpoint whose `data.pkl` was patched in place without updating
    /// its CRC.
    pub static CHECKSUM_MISMATCH = {
        id: "AISEC-ARCHIVE-012",
        name: "archive-checksum-mismatch",
        title: "Archive entry checksum does not match its contents",
        severity: Low,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Re-download the file from a trusted source and verify its published hash.",
    };

    /// ## What it detects
    /// A zip local header whose compression method, sizes or CRC differ from
    /// the entry's central-directory record.
    ///
    /// ## Why it matters
    /// Readers that trust different headers decode different bytes, which is
    /// a way to show a scanner one payload and a loader another.
    ///
    /// ## Example
    /// The central directory says "stored, 120 bytes" while the local header
    /// says "deflate, 4 000 bytes".
    pub static ZIP_HEADER_MISMATCH = {
        id: "AISEC-ARCHIVE-013",
        name: "zip-header-mismatch",
        title: "Zip local header disagrees with the central directory",
        severity: Medium,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Do not load the file; rebuild the archive with a standard writer.",
    };

    /// ## What it detects
    /// Compressed data (a zip entry or a gzip, zlib, bzip2, xz, lzma or lz4
    /// stream) that was still producing output when decompression stopped at
    /// the output or ratio limit.
    ///
    /// ## Why it matters
    /// The data may be a decompression bomb meant to exhaust the memory or
    /// disk of scanners and loaders; content past the limit was not inspected.
    ///
    /// ## Example
    /// A 1 MB gzip file that inflates to 10 GB of zeros.
    pub static DECOMPRESSION_BOMB = {
        id: "AISEC-ARCHIVE-014",
        name: "archive-decompression-bomb",
        title: "Compressed data expands beyond the configured limits",
        severity: Medium,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Do not decompress the file without limits; raise the limits only for trusted inputs.",
    };

    /// ## What it detects
    /// A tar symlink or hard-link entry whose target is absolute or climbs
    /// out with `..`.
    ///
    /// ## Why it matters
    /// Extraction, or a later write through the link, touches files outside
    /// the target directory.
    ///
    /// ## Example
    /// A symlink `model/config` pointing at `/etc/cron.d/job`, followed by a
    /// regular file of the same name.
    pub static TAR_LINK_OUTSIDE = {
        id: "AISEC-ARCHIVE-015",
        name: "tar-link-escape",
        title: "Tar link points outside the extraction directory",
        severity: High,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Never extract this archive with a reader that follows links.",
    };

    /// ## What it detects
    /// A character device, block device or FIFO entry in a tar archive.
    ///
    /// ## Why it matters
    /// Special files have no place in a model archive; extracting them as
    /// root creates device nodes.
    ///
    /// ## Example
    /// A tar entry of type `3` (character device) named `dev/mem`.
    pub static TAR_DEVICE = {
        id: "AISEC-ARCHIVE-016",
        name: "tar-special-file",
        title: "Tar archive contains a device or FIFO entry",
        severity: Medium,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Remove special files before distributing the archive.",
    };

    /// ## What it detects
    /// A zip end-of-central-directory record that declares a different number
    /// of entries than the central directory holds, or a zip or tar listing
    /// cut at the entry limit.
    ///
    /// ## Why it matters
    /// Readers that trust the count, or read further, see a different set of
    /// entries than the scanner did.
    ///
    /// ## Example
    /// An end record declaring 2 entries in front of a central directory of 3.
    pub static ENTRY_COUNT = {
        id: "AISEC-ARCHIVE-017",
        name: "archive-entry-count",
        title: "Archive listing is incomplete or its entry count is inconsistent",
        severity: Low,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Rebuild the archive with a standard writer.",
    };

    /// ## What it detects
    /// A zip entry compressed with a method this reader does not decode
    /// (it decodes stored, deflate, bzip2, lzma and xz).
    ///
    /// ## Why it matters
    /// Its contents were not inspected, and an exotic method is a way to keep
    /// a payload away from scanners that a permissive loader still decodes.
    ///
    /// ## Example
    /// An entry compressed with method 93 (Zstandard).
    pub static UNSUPPORTED_METHOD = {
        id: "AISEC-ARCHIVE-018",
        name: "archive-unsupported-compression",
        title: "Archive entry uses a compression method the scanner cannot decode",
        severity: Low,
        atlas: HIDING,
        owasp: OWASP,
        remediation: "Recompress the archive with deflate or store and scan again.",
    };
}

/// The finding to report when decompression of `compressed_len` bytes was
/// stopped after producing `produced` bytes (see [`crate::Limits::output_cap`]).
pub fn bomb_finding(loc: &Location, compressed_len: u64, produced: u64) -> Finding {
    let ratio = if compressed_len == 0 {
        0.0
    } else {
        produced as f64 / compressed_len as f64
    };
    DECOMPRESSION_BOMB
        .finding(
            loc.clone(),
            format!(
                "{compressed_len} compressed bytes were still producing output when stopped at {produced} bytes (ratio {ratio:.0}:1 so far)"
            ),
        )
        .metric("compressed_bytes", compressed_len)
        .metric("decompressed_bytes_at_stop", produced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisec_core::Severity;

    #[test]
    fn rules_are_well_formed() {
        assert_eq!(aisec_core::rule::problems(RULES), Vec::<String>::new());
        assert_eq!(RULES.len(), 18);
        assert!(RULES.iter().all(|r| r.id.starts_with("AISEC-ARCHIVE-0")));
    }

    #[test]
    fn bomb_finding_carries_numbers() {
        let f = bomb_finding(&Location::path("x.gz"), 1000, 5_000_000);
        assert_eq!(f.rule_id, "AISEC-ARCHIVE-014");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.evidence.contains("5000:1"), "{}", f.evidence);
    }
}
