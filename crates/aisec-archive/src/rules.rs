//! The rules behind container-anomaly findings.

use aisec_core::{Finding, Location, Rule, Severity};

const SUPPLY: &[&str] = &["AML.T0010.003"];
const HIDING: &[&str] = &["AML.T0010.003", "AML.T0074"];
const OWASP: &[&str] = &["LLM03"];

macro_rules! rule {
    ($static:ident, $id:literal, $name:literal, $sev:ident, $atlas:expr, $title:literal, $desc:literal, $fix:literal) => {
        #[doc = $title]
        pub static $static: Rule = Rule {
            id: $id,
            name: $name,
            title: $title,
            description: $desc,
            default_severity: Severity::$sev,
            atlas: $atlas,
            owasp: OWASP,
            remediation: $fix,
        };
    };
}

rule!(ZIP_NAME_MISMATCH, "AISEC-ARCHIVE-001", "zip-name-mismatch", High, HIDING,
    "Zip local header names a different file than the central directory",
    "A zip entry's local file header carries a different file name than its central-directory record. Readers that trust the local header and readers that trust the central directory then see different files; this is how picklescan was bypassed (CVE-2025-1944, fixed in picklescan 0.0.23): Python's zipfile raises BadZipFile on the mismatch, so the scanner failed on the member, while PyTorch's reader, which uses the central directory, loads it.",
    "Treat the file as hostile: do not load it. Rebuild the archive from trusted sources.");
rule!(ZIP_DUPLICATE_NAME, "AISEC-ARCHIVE-002", "zip-duplicate-name", High, HIDING,
    "Zip archive holds two entries with the same name",
    "Two central-directory entries share a name. Loaders disagree about which copy wins (first or last), so a scanner may inspect the benign copy while the loader uses the other.",
    "Do not load the file; rebuild the archive so every name is unique.");
rule!(ZIP_OVERLAP, "AISEC-ARCHIVE-003", "zip-overlapping-entries", Medium, SUPPLY,
    "Zip entries overlap in the file",
    "Two entries' data ranges overlap. Overlapping entries are the core of non-recursive zip bombs (Fifield, 'A better zip bomb', WOOT 2019) and let one stored payload appear under several names.",
    "Do not extract or load the file.");
rule!(ENTRY_OUT_OF_BOUNDS, "AISEC-ARCHIVE-004", "archive-entry-out-of-bounds", Medium, SUPPLY,
    "Archive entry extends past the end of the file or its header is damaged",
    "A zip central-directory record points at a local header that is missing, damaged or extends past the end of the file, or a tar entry is cut off by the end of the file. Tolerant loaders may still read something there; strict scanners skip it.",
    "Re-download the file from a trusted source; do not load damaged archives.");
rule!(ENCRYPTED_ENTRY, "AISEC-ARCHIVE-005", "archive-encrypted-entry", Medium, HIDING,
    "Archive entry is encrypted and cannot be inspected",
    "The entry is marked encrypted, so its contents cannot be scanned. Note that PyTorch's zip reader ignores the encryption flag, which was used to hide payloads from picklescan (CVE-2025-1945).",
    "Obtain an unencrypted copy and scan it before use.");
rule!(ZIP_UNUSUAL_FLAGS, "AISEC-ARCHIVE-006", "zip-unusual-flags", Medium, HIDING,
    "Zip entry has unusual general-purpose flag bits",
    "An entry sets general-purpose flag bits that ordinary writers (Python zipfile, PyTorch, numpy) never set, or its local and central flags disagree. Python's zipfile refuses some of these entries while PyTorch's miniz reader ignores the flags and loads them, which bypassed picklescan (CVE-2025-1945).",
    "Do not load the file; rebuild the archive with a standard writer.");
rule!(LEADING_DATA, "AISEC-ARCHIVE-007", "archive-leading-data", Medium, HIDING,
    "Archive has data before its first entry",
    "Bytes precede the first zip entry. The file can be a polyglot: another reader (a pickle loader, an executable loader) may parse the prefix as its own format.",
    "Scan the prefix as its own artifact, or rebuild the archive without it.");
rule!(TRAILING_DATA, "AISEC-ARCHIVE-008", "archive-trailing-data", Low, HIDING,
    "Archive has data after its end",
    "Bytes follow the end of the archive (after the end-of-central-directory record or the tar end blocks). They are invisible to archive readers but may be read by other parsers.",
    "Strip the trailing bytes or rebuild the file.");
rule!(PATH_TRAVERSAL, "AISEC-ARCHIVE-009", "archive-path-traversal", High, SUPPLY,
    "Archive entry name escapes the extraction directory",
    "An entry name is absolute or contains '..' components, so extracting the archive writes outside the target directory (zip-slip / tar traversal, e.g. CVE-2007-4559).",
    "Never extract this archive; if needed, extract with a reader that rejects such names.");
rule!(ZIP_DECLARED_RATIO, "AISEC-ARCHIVE-010", "zip-declared-ratio", Medium, SUPPLY,
    "Zip entry declares an extreme compression ratio",
    "An entry's declared uncompressed size is more than the ratio limit times its compressed size, a sign of a decompression bomb.",
    "Do not extract the entry; scan with bounded readers only.");
rule!(ZIP_NO_CENTRAL_DIRECTORY, "AISEC-ARCHIVE-011", "zip-central-directory-missing", Medium, HIDING,
    "Zip central directory is missing or damaged; entries recovered from local headers",
    "The end-of-central-directory record or the central directory is missing or unreadable. Strict readers reject the file, while streaming readers that walk local headers still extract entries, so a scanner that gives up here misses content.",
    "Treat the file as damaged and hostile; do not load it.");
rule!(CHECKSUM_MISMATCH, "AISEC-ARCHIVE-012", "archive-checksum-mismatch", Low, SUPPLY,
    "Archive entry checksum does not match its contents",
    "A zip entry's CRC-32 or a tar header checksum does not match. PyTorch's reader still loads zip entries with bad CRCs, while strict readers reject them, so the mismatch can split scanner and loader views; it also means the file was altered after writing.",
    "Re-download the file from a trusted source and verify its published hash.");
rule!(ZIP_HEADER_MISMATCH, "AISEC-ARCHIVE-013", "zip-header-mismatch", Medium, HIDING,
    "Zip local header disagrees with the central directory",
    "A local header's compression method, sizes or CRC differ from the central-directory record. Readers that trust different headers decode different bytes.",
    "Do not load the file; rebuild the archive with a standard writer.");
rule!(DECOMPRESSION_BOMB, "AISEC-ARCHIVE-014", "archive-decompression-bomb", Medium, SUPPLY,
    "Compressed data expands beyond the configured limits",
    "Decompression was stopped at the output or ratio limit. The data may be a decompression bomb meant to exhaust memory or disk of scanners and loaders; content past the limit was not inspected.",
    "Do not decompress the file without limits; raise the limits only for trusted inputs.");
rule!(TAR_LINK_OUTSIDE, "AISEC-ARCHIVE-015", "tar-link-escape", High, SUPPLY,
    "Tar link points outside the extraction directory",
    "A symlink or hard link entry targets an absolute path or climbs with '..', so extraction (or a later write through the link) touches files outside the target directory.",
    "Never extract this archive with a reader that follows links.");
rule!(TAR_DEVICE, "AISEC-ARCHIVE-016", "tar-special-file", Medium, SUPPLY,
    "Tar archive contains a device or FIFO entry",
    "Character/block device or FIFO entries have no place in a model archive; extracting them as root creates device nodes.",
    "Remove special files before distributing the archive.");
rule!(ENTRY_COUNT, "AISEC-ARCHIVE-017", "archive-entry-count", Low, HIDING,
    "Archive listing is incomplete or its entry count is inconsistent",
    "A zip end-of-central-directory record declares a different number of entries than the central directory holds, or the listing of a zip or tar was cut at the entry limit. Readers that trust the count, or read further, see a different set of entries.",
    "Rebuild the archive with a standard writer.");
rule!(UNSUPPORTED_METHOD, "AISEC-ARCHIVE-018", "archive-unsupported-compression", Low, HIDING,
    "Archive entry uses a compression method the scanner cannot decode",
    "The entry is compressed with a method this reader does not decode, so its contents were not inspected.",
    "Recompress the archive with deflate or store and scan again.");

/// Every rule this crate reports, in id order.
pub fn rules() -> Vec<&'static Rule> {
    vec![
        &ZIP_NAME_MISMATCH,
        &ZIP_DUPLICATE_NAME,
        &ZIP_OVERLAP,
        &ENTRY_OUT_OF_BOUNDS,
        &ENCRYPTED_ENTRY,
        &ZIP_UNUSUAL_FLAGS,
        &LEADING_DATA,
        &TRAILING_DATA,
        &PATH_TRAVERSAL,
        &ZIP_DECLARED_RATIO,
        &ZIP_NO_CENTRAL_DIRECTORY,
        &CHECKSUM_MISMATCH,
        &ZIP_HEADER_MISMATCH,
        &DECOMPRESSION_BOMB,
        &TAR_LINK_OUTSIDE,
        &TAR_DEVICE,
        &ENTRY_COUNT,
        &UNSUPPORTED_METHOD,
    ]
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

    #[test]
    fn rule_ids_are_unique_and_taxonomy_known() {
        let rs = rules();
        let mut ids: Vec<_> = rs.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rs.len());
        for r in rs {
            assert!(r.id.starts_with("AISEC-ARCHIVE-0"));
            for a in r.atlas {
                assert!(aisec_core::taxonomy::atlas(a).is_some(), "{a}");
            }
        }
    }

    #[test]
    fn bomb_finding_carries_numbers() {
        let f = bomb_finding(&Location::path("x.gz"), 1000, 5_000_000);
        assert_eq!(f.rule_id, "AISEC-ARCHIVE-014");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.evidence.contains("5000:1"), "{}", f.evidence);
    }
}
