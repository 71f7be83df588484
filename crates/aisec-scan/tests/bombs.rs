//! Decompression bombs that defeat per-container bounds (issue 19): nested
//! zips (42.zip style) and overlapping central-directory entries. Every
//! input is built here, small.

use std::io::Write;

use aisec_scan::{ScanOptions, Scanner};

fn zip_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            z.start_file(name.as_str(), o).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// `levels` levels of `width` zips each, the innermost holding `width`
/// members of `leaf` zero bytes: `width^levels × leaf` bytes in all.
fn nested(levels: u32, width: usize, leaf: usize) -> Vec<u8> {
    let mut z = zip_of(
        &(0..width)
            .map(|i| (format!("{i:x}.pkl"), vec![0u8; leaf]))
            .collect::<Vec<_>>(),
    );
    for _ in 1..levels {
        z = zip_of(
            &(0..width)
                .map(|i| (format!("{i:x}.zip"), z.clone()))
                .collect::<Vec<_>>(),
        );
    }
    z
}

fn opts(total_bytes: u64, total_entries: usize) -> ScanOptions {
    let mut o = ScanOptions::default();
    o.archive_limits.max_total_bytes = total_bytes;
    o.archive_limits.max_total_entries = total_entries;
    o
}

fn limit_evidence(r: &aisec_scan::FileResult) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.rule_id == aisec_scan::rules::LIMIT.id)
        .map(|f| f.evidence.clone())
        .collect()
}

/// Entries reported as not analysed, summed over the "N entries not
/// analysed" findings.
fn not_analysed(r: &aisec_scan::FileResult) -> usize {
    limit_evidence(r)
        .iter()
        .filter_map(|e| e.split(' ').next()?.parse::<usize>().ok())
        .sum()
}

/// Leaves analysed: each leaf is zeros named `.pkl`, which the scanner
/// reports as not recognisable as a pickle.
fn leaves_analysed(r: &aisec_scan::FileResult) -> usize {
    r.findings
        .iter()
        .filter(|f| f.rule_id == aisec_scan::rules::SUFFIX_MISMATCH.id)
        .count()
}

#[test]
fn nested_zip_bomb_stops_at_the_file_budget() {
    // 4 levels of 16: 65,536 leaves of 256 KiB = 16 GiB if fully inflated,
    // from a file of a few tens of KB.
    let bomb = nested(4, 16, 256 << 10);
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    // A 64 MiB per-file budget: at most 256 leaves' worth can be inflated.
    let r = Scanner::new(opts(64 << 20, 100_000)).scan_bytes(&bomb, "42.zip");
    let ev = limit_evidence(&r);
    assert!(
        ev.iter()
            .any(|e| e.contains("per-file inflated-bytes budget")),
        "{ev:#?}"
    );
    // 64 MiB of 16 GiB: at most 256 of the 65,536 leaves were inflated.
    let leaves = leaves_analysed(&r);
    assert!(leaves > 0 && leaves <= 256, "{leaves}");
    assert!(not_analysed(&r) > 0);
}

#[test]
fn nested_zip_entry_budget_is_shared_across_levels() {
    // Tiny leaves: bytes never run out, the entry count does.
    let bomb = nested(3, 16, 10);
    let r = Scanner::new(opts(1 << 30, 100)).scan_bytes(&bomb, "n.zip");
    let ev = limit_evidence(&r);
    assert!(
        ev.iter()
            .any(|e| e.contains("budget of 100 entries across nested containers")),
        "{ev:#?}"
    );
    // 16 + 256 + 4096 entries in all; 100 opened depth-first: the first
    // outer zip (1), five inner zips with their 16 leaves each (85), a
    // sixth inner zip (1) and 13 of its leaves: 93 leaves.
    assert_eq!(leaves_analysed(&r), 93);
    assert!(not_analysed(&r) > 0);
}

/// One deflated member, then `aliases` more central-directory records
/// that point at the same local header under other names.
fn overlapping(aliases: usize, size: usize) -> Vec<u8> {
    let z = zip_of(&[("m0000.bin".to_string(), vec![0u8; size])]);
    let eocd = z.len() - 22;
    assert_eq!(&z[eocd..eocd + 4], b"PK\x05\x06");
    let cd_size = u32::from_le_bytes(z[eocd + 12..eocd + 16].try_into().unwrap()) as usize;
    let cd_off = u32::from_le_bytes(z[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    let record = z[cd_off..cd_off + cd_size].to_vec();
    let name_at = 46;
    let mut out = z[..cd_off + cd_size].to_vec();
    for i in 1..=aliases {
        let mut r = record.clone();
        r[name_at..name_at + 9].copy_from_slice(format!("m{i:04}.bin").as_bytes());
        out.extend_from_slice(&r);
    }
    let n = (aliases + 1) as u16;
    let mut e = z[eocd..].to_vec();
    e[8..10].copy_from_slice(&n.to_le_bytes());
    e[10..12].copy_from_slice(&n.to_le_bytes());
    e[12..16].copy_from_slice(&((cd_size * (aliases + 1)) as u32).to_le_bytes());
    out.extend_from_slice(&e);
    out
}

#[test]
fn overlapping_entries_are_reported_and_charged() {
    // 200 records sharing one 1 MiB stream: 200 MiB if each is inflated.
    let bomb = overlapping(199, 1 << 20);
    assert!(bomb.len() < 40_000, "{} bytes", bomb.len());
    let r = Scanner::new(opts(8 << 20, 100_000)).scan_bytes(&bomb, "o.zip");
    assert!(
        r.findings.iter().any(|f| f.rule_id == "AISEC-ARCHIVE-003"),
        "{:#?}",
        r.findings
    );
    // 8 inflated, the other 192 refused by the per-file byte budget.
    assert_eq!(not_analysed(&r), 192, "{:#?}", limit_evidence(&r));
}

#[test]
fn ordinary_archives_are_untouched_by_the_budgets() {
    let z = nested(2, 4, 1000);
    let r = Scanner::default().scan_bytes(&z, "ok.zip");
    assert!(limit_evidence(&r).is_empty(), "{:#?}", r.findings);
    assert_eq!(leaves_analysed(&r), 16);
}
