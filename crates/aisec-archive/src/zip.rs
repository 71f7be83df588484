//! A tolerant, bounded zip reader that reports where readers could disagree.
//!
//! Zip archives describe each entry twice: in a local file header before the
//! data and in the central directory at the end. Readers pick different
//! sources of truth: Python's `zipfile` and PyTorch's miniz-based
//! `PyTorchStreamReader` read the central directory, streaming readers walk
//! local headers. Scanners have been bypassed through exactly these gaps:
//!
//! * picklescan CVE-2025-1944 (fixed in picklescan 0.0.23, reported by
//!   Sonatype): a member whose local-header file name differs from its
//!   central-directory name makes Python's `zipfile` raise `BadZipFile`
//!   ("File name in directory ... and header ... differ"), so the scanner
//!   failed on it, while PyTorch loaded the pickle;
//! * picklescan CVE-2025-1945: general-purpose flag bits that make Python's
//!   `zipfile` refuse the member while PyTorch ignores them and loads it;
//! * PyTorch's reader tolerates damaged entries such as bad CRC-32s, which
//!   Python's `zipfile` rejects ("Bad CRC-32 for file ...").
//!
//! Both behaviours of `zipfile` are checked against the committed fixtures
//! (`scripts/fixtures/gen_archive_fixtures.py`).
//!
//! This reader therefore parses both headers of every entry, never gives up
//! on the first inconsistency, and records each one for
//! [`ZipArchive::anomalies`]. When the end record or central directory is
//! missing it falls back to a sequential scan for local headers (as
//! streaming loaders do) and says so. Parsing reads the end of the file, the
//! central directory and the local headers only; entry data is touched only
//! by [`ZipArchive::read`] / [`ZipArchive::read_bounded`].
//!
//! Format reference: PKWARE APPNOTE.TXT 6.3.x (sections 4.3.7 local header,
//! 4.3.12 central header, 4.3.14–4.3.16 zip64 and end records, 4.4.4 flags).
//! The prefix-offset correction follows Info-ZIP's handling of
//! self-extracting archives (central directory found at `end - cd_size`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use aisec_core::{Finding, Location, Rule};

use crate::compress::{
    decompress_capped, drain, inflate_raw, Compression, Decompressed, MAX_DICT_MEMORY_KIB,
};
use crate::rules::*;
use crate::{is_traversal_name, slice_at, ArchiveError, Limits, RATIO_FLOOR_BYTES};

const SIG_LOCAL: u32 = 0x0403_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_EOCD: u32 = 0x0605_4b50;
const SIG_ZIP64_EOCD: u32 = 0x0606_4b50;
const SIG_ZIP64_LOCATOR: u32 = 0x0706_4b50;
const SIG_DESCRIPTOR: u32 = 0x0807_4b50;

/// Flag bits ordinary writers set: encrypted (0), compression options (1, 2),
/// data descriptor (3), UTF-8 names (11).
const ORDINARY_FLAGS: u16 = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0800;
/// Bit 0: traditional encryption; bit 6: strong encryption.
const ENCRYPTION_FLAGS: u16 = 0x0001 | 0x0040;
/// At most this many findings per rule per archive; further ones are summed
/// up in one last finding.
const MAX_NOTES_PER_RULE: usize = 20;
/// Decompressed output may exceed the declared size by this factor (plus
/// [`DECLARED_FLOOR`]) before reading stops.
const DECLARED_SLACK: u64 = 2;
const DECLARED_FLOOR: u64 = 64 * 1024;

/// One entry of a zip archive, as its central-directory record (or, in
/// recovery mode, its local header) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// Central-directory file name (lossy UTF-8).
    pub name: String,
    /// The local header's file name, `None` when the local header is
    /// missing or damaged.
    pub local_name: Option<String>,
    /// Compression method (0 stored, 8 deflate, 12 bzip2, 14 lzma, 93
    /// zstd, 95 xz...).
    pub method: u16,
    /// General-purpose bit flags from the central directory.
    pub flags: u16,
    /// Compressed size in bytes (zip64-aware).
    pub compressed_size: u64,
    /// Declared uncompressed size in bytes (zip64-aware).
    pub uncompressed_size: u64,
    /// Declared CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Absolute file offset where the entry's data starts (0 when the
    /// local header is missing).
    pub data_offset: u64,
    /// Absolute file offset of the local header (prefix-corrected).
    pub local_header_offset: u64,
    /// Whether the entry is marked encrypted (flag bit 0 or 6).
    pub encrypted: bool,
}

impl ZipEntry {
    /// True for directory entries (name ends with `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// Human name of a zip compression method.
pub fn method_name(method: u16) -> &'static str {
    match method {
        0 => "stored",
        1 => "shrunk",
        6 => "imploded",
        8 => "deflate",
        9 => "deflate64",
        12 => "bzip2",
        14 => "lzma",
        93 => "zstd",
        95 => "xz",
        98 => "ppmd",
        99 => "aes-encrypted",
        _ => "unknown",
    }
}

#[derive(Debug, Clone)]
struct Note {
    rule: &'static Rule,
    member: Option<String>,
    offset: Option<u64>,
    evidence: String,
}

/// A parsed zip archive borrowing the file's bytes.
#[derive(Debug)]
pub struct ZipArchive<'a> {
    data: &'a [u8],
    entries: Vec<ZipEntry>,
    notes: Vec<Note>,
    recovered: bool,
    crc_failures: Mutex<Vec<(String, u32, u32)>>,
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}
fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    let b = d.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}
fn sig_at(d: &[u8], off: u64, sig: u32) -> bool {
    usize::try_from(off)
        .ok()
        .and_then(|o| u32_at(d, o))
        .is_some_and(|s| s == sig)
}

/// True when `data` starts with a zip signature or has an end-of-central-
/// directory record in its last 64 KiB + 22 bytes.
pub fn looks_like_zip(data: &[u8]) -> bool {
    if data.len() < 4 {
        return false;
    }
    let head = u32_at(data, 0).unwrap_or(0);
    if head == SIG_LOCAL || head == SIG_EOCD || head == SIG_DESCRIPTOR {
        return true;
    }
    find_eocd(data).is_some()
}

/// Finds the end-of-central-directory record: the last signature in the
/// final 64 KiB + 22 bytes whose comment length fits the file, preferring
/// one whose comment ends exactly at the end of the file.
fn find_eocd(data: &[u8]) -> Option<usize> {
    if data.len() < 22 {
        return None;
    }
    let last = data.len() - 22;
    let first = last.saturating_sub(0xffff);
    let mut fallback = None;
    for pos in (first..=last).rev() {
        if data[pos..pos + 4] != [0x50, 0x4b, 0x05, 0x06] {
            continue;
        }
        let clen = u16_at(data, pos + 20).unwrap_or(0) as usize;
        let end = pos + 22 + clen;
        if end == data.len() {
            return Some(pos);
        }
        if end < data.len() && fallback.is_none() {
            fallback = Some(pos);
        }
    }
    fallback
}

struct CentralDir {
    cd_start: u64,
    cd_size: u64,
    declared_entries: u64,
    base: u64,
    end_of_archive: u64,
}

/// The fields a central-directory record (from its offset 8) and a local
/// file header (from its offset 6) hold in the same layout: flags,
/// method, (time, date,) CRC-32, sizes, name and extra-field lengths.
struct HeaderFields {
    flags: u16,
    method: u16,
    crc32: u32,
    csize: u32,
    usize_: u32,
    nlen: u16,
    xlen: u16,
}

impl HeaderFields {
    /// Reads them from `at` (`None` when the record runs past `d`).
    fn at(d: &[u8], at: usize) -> Option<Self> {
        Some(Self {
            flags: u16_at(d, at)?,
            method: u16_at(d, at + 2)?,
            crc32: u32_at(d, at + 8)?,
            csize: u32_at(d, at + 12)?,
            usize_: u32_at(d, at + 16)?,
            nlen: u16_at(d, at + 20)?,
            xlen: u16_at(d, at + 22)?,
        })
    }
}

impl<'a> ZipArchive<'a> {
    /// Parses `data` (the whole file) with [`Limits::default`].
    pub fn parse(data: &'a [u8]) -> Result<ZipArchive<'a>, ArchiveError> {
        Self::parse_with_limits(data, &Limits::default())
    }

    /// Parses `data`, listing at most `limits.max_entries` entries.
    ///
    /// Succeeds whenever at least the end record or one local header can be
    /// found; damage is reported through [`ZipArchive::anomalies`].
    pub fn parse_with_limits(
        data: &'a [u8],
        limits: &Limits,
    ) -> Result<ZipArchive<'a>, ArchiveError> {
        let mut ar = ZipArchive {
            data,
            entries: Vec::new(),
            notes: Vec::new(),
            recovered: false,
            crc_failures: Mutex::new(Vec::new()),
        };
        let cd = match find_eocd(data) {
            Some(pos) => ar.locate_central_directory(pos),
            None => Err("no end-of-central-directory record".to_string()),
        };
        match cd {
            Ok(cd) => {
                ar.read_central_directory(&cd, limits);
                if ar.entries.is_empty() && cd.declared_entries > 0 {
                    ar.recover(limits, "central directory lists no readable entries")?;
                } else {
                    ar.check_local_headers();
                    ar.check_layout(Some(cd.end_of_archive));
                }
            }
            Err(why) => ar.recover(limits, &why)?,
        }
        ar.check_entries(limits);
        Ok(ar)
    }

    fn note(
        &mut self,
        rule: &'static Rule,
        member: Option<&str>,
        offset: Option<u64>,
        evidence: String,
    ) {
        self.notes.push(Note {
            rule,
            member: member.map(str::to_string),
            offset,
            evidence,
        });
    }

    fn locate_central_directory(&mut self, eocd: usize) -> Result<CentralDir, String> {
        let d = self.data;
        let clen = u16_at(d, eocd + 20).unwrap_or(0) as u64;
        let end_of_archive = (eocd as u64 + 22 + clen).min(d.len() as u64);
        let mut declared = u16_at(d, eocd + 10).unwrap_or(0) as u64;
        let mut cd_size = u32_at(d, eocd + 12).unwrap_or(0) as u64;
        let mut cd_offset = u32_at(d, eocd + 16).unwrap_or(0) as u64;
        // The structure that immediately follows the central directory.
        let mut cd_end_anchor = eocd as u64;

        // Zip64: locator 20 bytes before the end record.
        if eocd >= 20 && sig_at(d, eocd as u64 - 20, SIG_ZIP64_LOCATOR) {
            let loc = eocd - 20;
            let rec_off = u64_at(d, loc + 8).unwrap_or(u64::MAX);
            // Trust the declared offset, else the record right before the
            // locator (fixed 56-byte record without extensible data).
            let rec = if sig_at(d, rec_off, SIG_ZIP64_EOCD) {
                Some(rec_off)
            } else if loc >= 56 && sig_at(d, loc as u64 - 56, SIG_ZIP64_EOCD) {
                Some(loc as u64 - 56)
            } else {
                None
            };
            match rec {
                Some(r) => {
                    let r = r as usize;
                    declared = u64_at(d, r + 32).unwrap_or(declared);
                    cd_size = u64_at(d, r + 40).unwrap_or(cd_size);
                    cd_offset = u64_at(d, r + 48).unwrap_or(cd_offset);
                    cd_end_anchor = r as u64;
                }
                None => self.note(
                    &ENTRY_OUT_OF_BOUNDS,
                    None,
                    Some(loc as u64),
                    format!("zip64 end-of-central-directory locator points at offset {rec_off}, where there is no zip64 record"),
                ),
            }
        }

        if declared == 0 && cd_size == 0 {
            return Ok(CentralDir {
                cd_start: cd_offset,
                cd_size: 0,
                declared_entries: 0,
                base: 0,
                end_of_archive,
            });
        }
        if sig_at(d, cd_offset, SIG_CENTRAL) {
            return Ok(CentralDir {
                cd_start: cd_offset,
                cd_size,
                declared_entries: declared,
                base: 0,
                end_of_archive,
            });
        }
        // Data prepended to the archive shifts every offset: the central
        // directory then sits right before the end record, at a distance
        // `cd_size`, and `actual - declared` is the prefix length.
        if let Some(actual) = cd_end_anchor.checked_sub(cd_size) {
            if sig_at(d, actual, SIG_CENTRAL) && actual >= cd_offset {
                let base = actual - cd_offset;
                self.note(
                    &LEADING_DATA,
                    None,
                    Some(0),
                    format!("central directory found at offset {actual} but declared at {cd_offset}: {base} bytes were prepended to the archive"),
                );
                return Ok(CentralDir {
                    cd_start: actual,
                    cd_size,
                    declared_entries: declared,
                    base,
                    end_of_archive,
                });
            }
        }
        Err(format!(
            "end record at offset {eocd} declares a central directory of {cd_size} bytes at offset {cd_offset}, but none is there"
        ))
    }

    fn read_central_directory(&mut self, cd: &CentralDir, limits: &Limits) {
        let d = self.data;
        let cd_end = cd.cd_start.saturating_add(cd.cd_size).min(d.len() as u64);
        let mut pos = cd.cd_start;
        let mut stopped_by_limit = false;
        while pos + 46 <= cd_end.max(pos) && sig_at(d, pos, SIG_CENTRAL) {
            if self.entries.len() >= limits.max_entries {
                stopped_by_limit = true;
                break;
            }
            let p = pos as usize;
            let (Some(h), Some(clen), Some(lho)) = (
                HeaderFields::at(d, p + 8),
                u16_at(d, p + 32),
                u32_at(d, p + 42),
            ) else {
                break;
            };
            let name_start = p + 46;
            let Some(name_bytes) = d.get(name_start..name_start + h.nlen as usize) else {
                self.note(
                    &ENTRY_OUT_OF_BOUNDS,
                    None,
                    Some(pos),
                    "central-directory record's name runs past the end of the file".into(),
                );
                break;
            };
            let extra = d
                .get(name_start + h.nlen as usize..name_start + h.nlen as usize + h.xlen as usize)
                .unwrap_or(&[]);
            let (mut usz, mut csz, mut off) = (h.usize_ as u64, h.csize as u64, lho as u64);
            apply_zip64_extra(extra, &mut usz, &mut csz, &mut off);
            self.entries.push(ZipEntry {
                name: String::from_utf8_lossy(name_bytes).into_owned(),
                local_name: None,
                method: h.method,
                flags: h.flags,
                compressed_size: csz,
                uncompressed_size: usz,
                crc32: h.crc32,
                data_offset: 0,
                local_header_offset: off.saturating_add(cd.base),
                encrypted: h.flags & ENCRYPTION_FLAGS != 0,
            });
            pos += 46 + h.nlen as u64 + h.xlen as u64 + clen as u64;
        }
        let found = self.entries.len() as u64;
        if stopped_by_limit {
            self.note(
                &ENTRY_COUNT,
                None,
                Some(pos),
                format!(
                    "listing stopped at the entry limit of {}; the archive declares {}",
                    limits.max_entries, cd.declared_entries
                ),
            );
        } else if found != cd.declared_entries {
            self.note(
                &ENTRY_COUNT,
                None,
                Some(cd.cd_start),
                format!(
                    "end record declares {} entries, central directory holds {found}",
                    cd.declared_entries
                ),
            );
        }
    }

    /// Reads every entry's local header and compares it with the central record.
    fn check_local_headers(&mut self) {
        let d = self.data;
        let mut notes = Vec::new();
        for e in &mut self.entries {
            let lho = e.local_header_offset;
            let p = match usize::try_from(lho) {
                Ok(p) if sig_at(d, lho, SIG_LOCAL) && p + 30 <= d.len() => p,
                _ => {
                    notes.push((
                        &ENTRY_OUT_OF_BOUNDS,
                        Some(e.name.clone()),
                        Some(lho),
                        format!(
                            "no local file header at offset {lho} (file size {})",
                            d.len()
                        ),
                    ));
                    continue;
                }
            };
            let lflags = u16_at(d, p + 6).unwrap_or(0);
            let lmethod = u16_at(d, p + 8).unwrap_or(0);
            let lcrc = u32_at(d, p + 14).unwrap_or(0);
            let lcsize = u32_at(d, p + 18).unwrap_or(0);
            let lusize = u32_at(d, p + 22).unwrap_or(0);
            let nlen = u16_at(d, p + 26).unwrap_or(0) as usize;
            let xlen = u16_at(d, p + 28).unwrap_or(0) as usize;
            let Some(lname) = d.get(p + 30..p + 30 + nlen) else {
                notes.push((
                    &ENTRY_OUT_OF_BOUNDS,
                    Some(e.name.clone()),
                    Some(lho),
                    "local header's name runs past the end of the file".into(),
                ));
                continue;
            };
            let lname = String::from_utf8_lossy(lname).into_owned();
            e.data_offset = lho + 30 + nlen as u64 + xlen as u64;
            if lname != e.name {
                notes.push((
                    &ZIP_NAME_MISMATCH,
                    Some(e.name.clone()),
                    Some(lho),
                    format!(
                        "central directory names the entry '{}' but its local header names it '{}'",
                        e.name, lname
                    ),
                ));
            }
            e.local_name = Some(lname);
            let mut diffs = Vec::new();
            if lmethod != e.method {
                diffs.push(format!("method {} vs {}", lmethod, e.method));
            }
            if lflags != e.flags {
                diffs.push(format!("flags {lflags:#06x} vs {:#06x}", e.flags));
            }
            // Sizes and CRC live in a data descriptor when bit 3 is set and
            // in the zip64 extra when the 32-bit fields are saturated.
            if lflags & 0x0008 == 0 {
                if lcrc != e.crc32 {
                    diffs.push(format!("crc {lcrc:#010x} vs {:#010x}", e.crc32));
                }
                if lcsize != u32::MAX && lcsize as u64 != e.compressed_size {
                    diffs.push(format!("compressed size {lcsize} vs {}", e.compressed_size));
                }
                if lusize != u32::MAX && lusize as u64 != e.uncompressed_size {
                    diffs.push(format!(
                        "uncompressed size {lusize} vs {}",
                        e.uncompressed_size
                    ));
                }
            }
            if !diffs.is_empty() {
                notes.push((
                    &ZIP_HEADER_MISMATCH,
                    Some(e.name.clone()),
                    Some(lho),
                    format!("local header vs central directory: {}", diffs.join(", ")),
                ));
            }
            let end = e.data_offset.saturating_add(e.compressed_size);
            if end > d.len() as u64 {
                notes.push((
                    &ENTRY_OUT_OF_BOUNDS,
                    Some(e.name.clone()),
                    Some(e.data_offset),
                    format!(
                        "entry data [{}, {end}) extends past the end of the file ({} bytes)",
                        e.data_offset,
                        d.len()
                    ),
                ));
            }
        }
        for (r, m, o, ev) in notes {
            self.note(r, m.as_deref(), o, ev);
        }
    }

    /// Leading/trailing bytes and overlapping entries.
    fn check_layout(&mut self, end_of_archive: Option<u64>) {
        let d = self.data;
        let mut spans: Vec<(u64, u64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.local_name.is_some())
            .map(|(i, e)| {
                (
                    e.local_header_offset,
                    e.data_offset.saturating_add(e.compressed_size),
                    i,
                )
            })
            .collect();
        spans.sort_unstable();
        if let Some(&(first, _, _)) = spans.first() {
            if first > 0
                && !self
                    .notes
                    .iter()
                    .any(|n| std::ptr::eq(n.rule, &LEADING_DATA))
            {
                let head = &d[..(first as usize).min(8)];
                self.note(
                    &LEADING_DATA,
                    None,
                    Some(0),
                    format!(
                        "{first} bytes precede the first local header (starting {})",
                        hex(head)
                    ),
                );
            }
        }
        let mut overlaps = Vec::new();
        let mut furthest: Option<(u64, usize)> = None;
        for &(start, end, i) in &spans {
            if let Some((fend, fi)) = furthest {
                if start < fend {
                    overlaps.push((fi, i, start, fend));
                }
            }
            if furthest.is_none_or(|(fe, _)| end > fe) {
                furthest = Some((end, i));
            }
        }
        for (a, b, start, fend) in overlaps {
            let (na, nb) = (self.entries[a].name.clone(), self.entries[b].name.clone());
            self.note(
                &ZIP_OVERLAP,
                Some(&nb),
                Some(start),
                format!("entry '{nb}' starts at offset {start}, inside entry '{na}' which extends to {fend}"),
            );
        }
        if let Some(end) = end_of_archive {
            let len = d.len() as u64;
            if end < len {
                let tail = &d[end as usize..(end as usize + 8).min(d.len())];
                self.note(
                    &TRAILING_DATA,
                    None,
                    Some(end),
                    format!(
                        "{} bytes follow the end-of-central-directory record (starting {})",
                        len - end,
                        hex(tail)
                    ),
                );
            }
        }
    }

    /// Per-entry checks that need only the central view.
    fn check_entries(&mut self, limits: &Limits) {
        let mut notes = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for e in &self.entries {
            *seen.entry(e.name.as_str()).or_default() += 1;
            if e.encrypted {
                notes.push((
                    &ENCRYPTED_ENTRY,
                    e.name.clone(),
                    format!("flags {:#06x} mark the entry encrypted", e.flags),
                ));
            }
            let odd = e.flags & !ORDINARY_FLAGS;
            if odd != 0 {
                notes.push((
                    &ZIP_UNUSUAL_FLAGS,
                    e.name.clone(),
                    format!(
                        "general-purpose flags {:#06x} set unusual bits {odd:#06x}",
                        e.flags
                    ),
                ));
            }
            for n in std::iter::once(&e.name).chain(e.local_name.iter()) {
                if is_traversal_name(n) {
                    notes.push((
                        &PATH_TRAVERSAL,
                        e.name.clone(),
                        format!("entry name '{n}' escapes the extraction directory"),
                    ));
                    break;
                }
            }
            if e.uncompressed_size > RATIO_FLOOR_BYTES
                && e.uncompressed_size > e.compressed_size.saturating_mul(limits.max_ratio)
            {
                notes.push((
                    &ZIP_DECLARED_RATIO,
                    e.name.clone(),
                    format!(
                        "declares {} bytes from {} compressed bytes (limit ratio {}:1)",
                        e.uncompressed_size, e.compressed_size, limits.max_ratio
                    ),
                ));
            }
            if e.method == 0 && e.compressed_size != e.uncompressed_size {
                notes.push((
                    &ZIP_HEADER_MISMATCH,
                    e.name.clone(),
                    format!(
                        "stored entry declares {} compressed but {} uncompressed bytes",
                        e.compressed_size, e.uncompressed_size
                    ),
                ));
            }
            if !matches!(e.method, 0 | 8 | 12 | 14 | 93 | 95) {
                notes.push((
                    &UNSUPPORTED_METHOD,
                    e.name.clone(),
                    format!(
                        "compression method {} ({})",
                        e.method,
                        method_name(e.method)
                    ),
                ));
            }
        }
        let mut dups: Vec<(&str, usize)> = seen.into_iter().filter(|(_, c)| *c > 1).collect();
        dups.sort_unstable();
        let dups: Vec<(String, usize)> =
            dups.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
        for (r, m, ev) in notes {
            self.note(r, Some(&m), None, ev);
        }
        for (n, c) in dups {
            self.note(
                &ZIP_DUPLICATE_NAME,
                Some(&n),
                None,
                format!("{c} central-directory entries are named '{n}'"),
            );
        }
    }

    /// Sequential local-header scan for archives without a usable central
    /// directory, as streaming readers do.
    fn recover(&mut self, limits: &Limits, why: &str) -> Result<(), ArchiveError> {
        let d = self.data;
        self.entries.clear();
        self.recovered = true;
        let finder = memchr::memmem::Finder::new(b"PK\x03\x04");
        let mut pos = 0usize;
        let mut stopped_by_limit = false;
        while let Some(rel) = finder.find(&d[pos..]) {
            let p = pos + rel;
            pos = p + 4;
            let Some(HeaderFields {
                flags,
                method,
                crc32,
                csize,
                usize_,
                nlen,
                xlen,
            }) = HeaderFields::at(d, p + 6)
            else {
                break;
            };
            let name_end = p + 30 + nlen as usize;
            let data_start = name_end + xlen as usize;
            if nlen == 0 || data_start > d.len() {
                continue;
            }
            if self.entries.len() >= limits.max_entries {
                stopped_by_limit = true;
                break;
            }
            let name = String::from_utf8_lossy(&d[p + 30..name_end]).into_owned();
            let extra = &d[name_end..data_start];
            let (mut usz, mut csz, mut unused) = (usize_ as u64, csize as u64, 0u64);
            apply_zip64_extra(extra, &mut usz, &mut csz, &mut unused);
            let mut crc = crc32;
            if flags & 0x0008 != 0 && csz == 0 {
                // Sizes follow the data in a descriptor: take the data to run
                // to the next signature we know.
                let next = next_signature(&d[data_start..]).map(|r| data_start + r);
                let stop = next.unwrap_or(d.len());
                csz = (stop - data_start) as u64;
                if let Some(n) = next {
                    if u32_at(d, n) == Some(SIG_DESCRIPTOR) {
                        crc = u32_at(d, n + 4).unwrap_or(crc);
                        usz = u32_at(d, n + 12).map(u64::from).unwrap_or(usz);
                    }
                }
            }
            self.entries.push(ZipEntry {
                name: name.clone(),
                local_name: Some(name),
                method,
                flags,
                compressed_size: csz,
                uncompressed_size: usz,
                crc32: crc,
                data_offset: data_start as u64,
                local_header_offset: p as u64,
                encrypted: flags & ENCRYPTION_FLAGS != 0,
            });
            // Skip over the data when its size is known and inside the file.
            let skip_to = (data_start as u64).saturating_add(csz);
            if skip_to <= d.len() as u64 && (skip_to as usize) > pos {
                pos = skip_to as usize;
            }
            if pos >= d.len() {
                break;
            }
        }
        if self.entries.is_empty() {
            return Err(ArchiveError::NotAnArchive {
                kind: "zip",
                reason: format!("{why}, and no local file header was found"),
            });
        }
        let n = self.entries.len();
        self.note(
            &ZIP_NO_CENTRAL_DIRECTORY,
            None,
            None,
            format!("{why}; {n} entries recovered by scanning local headers"),
        );
        if stopped_by_limit {
            self.note(
                &ENTRY_COUNT,
                None,
                Some(pos as u64),
                format!(
                    "local-header scan stopped at the entry limit of {}",
                    limits.max_entries
                ),
            );
        }
        self.check_layout(None);
        Ok(())
    }

    /// The entries, in central-directory order (or file order when
    /// recovered from local headers).
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// The first entry with this central-directory name.
    pub fn by_name(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// True when the entries come from a local-header scan because the
    /// central directory was missing or damaged.
    pub fn recovered_from_local_headers(&self) -> bool {
        self.recovered
    }

    /// Whether two entries' data ranges overlap (Fifield-style bombs; also
    /// reported by [`ZipArchive::anomalies`] as `AISEC-ARCHIVE-003`).
    pub fn has_overlapping_entries(&self) -> bool {
        self.notes
            .iter()
            .any(|n| std::ptr::eq(n.rule, &ZIP_OVERLAP))
    }

    /// The most bytes [`ZipArchive::read_bounded`] would produce for `e`
    /// under `limits` (its stored size for stored entries).
    pub fn output_cap(&self, e: &ZipEntry, limits: &Limits) -> u64 {
        if e.method == 0 {
            e.compressed_size.min(limits.max_entry_bytes)
        } else {
            entry_cap(e, limits)
        }
    }

    /// The entry's contents, whole: stored entries are borrowed from the
    /// file without copying (and without a size limit, since nothing is
    /// allocated); compressed ones are decoded up to the bound described at
    /// [`ZipArchive::read_bounded`], and an entry that would exceed it is an
    /// [`ArchiveError::LimitExceeded`].
    ///
    /// A CRC-32 mismatch is not an error (PyTorch loads such entries); it is
    /// remembered and reported by [`ZipArchive::anomalies`].
    pub fn read(&self, e: &ZipEntry, limits: &Limits) -> Result<Cow<'a, [u8]>, ArchiveError> {
        self.check_readable(e)?;
        if e.method == 0 {
            let raw = slice_at(self.data, e.data_offset, e.compressed_size, || {
                format!("data of entry '{}'", e.name)
            })?;
            if e.compressed_size <= limits.max_entry_bytes {
                self.check_crc(e, raw);
            }
            return Ok(Cow::Borrowed(raw));
        }
        let cap = entry_cap(e, limits);
        let out = self.read_bounded(e, limits)?;
        if out.truncated_at_limit {
            return Err(ArchiveError::LimitExceeded {
                what: "decompressed size of the entry",
                limit: cap,
            });
        }
        if let Some(err) = out.error {
            return Err(ArchiveError::Corrupt {
                format: method_name(e.method),
                reason: format!("entry '{}': {err}", e.name),
            });
        }
        Ok(Cow::Owned(out.bytes))
    }

    /// The entry's contents decoded up to
    /// `min(limits.output_cap(compressed_size), max(2 × declared size, 64 KiB))`
    /// bytes. Output past the bound is not produced and
    /// `truncated_at_limit` is set (report [`crate::bomb_finding`]); damaged
    /// data yields what was decoded before the damage plus `error`. Data
    /// running past the end of the file is read as far as it goes.
    pub fn read_bounded(
        &self,
        e: &ZipEntry,
        limits: &Limits,
    ) -> Result<Decompressed, ArchiveError> {
        self.check_readable(e)?;
        let start = e.data_offset.min(self.data.len() as u64) as usize;
        let end = e
            .data_offset
            .saturating_add(e.compressed_size)
            .min(self.data.len() as u64) as usize;
        let raw = &self.data[start..end];
        let short = (end as u64) < e.data_offset.saturating_add(e.compressed_size);
        let cap = entry_cap(e, limits);
        let mut out = match e.method {
            0 => {
                // Stored data cannot be a ratio bomb; only the entry limit applies.
                let keep = (raw.len() as u64).min(limits.max_entry_bytes) as usize;
                Decompressed {
                    bytes: raw[..keep].to_vec(),
                    truncated_at_limit: keep < raw.len(),
                    error: None,
                }
            }
            8 => inflate_raw(raw, cap)?,
            12 => decompress_capped(raw, Compression::Bzip2, cap)?,
            95 => decompress_capped(raw, Compression::Xz, cap)?,
            93 => decompress_capped(raw, Compression::Zstd, cap)?,
            14 => read_zip_lzma(raw, e, cap)?,
            m => {
                return Err(ArchiveError::UnsupportedMethod {
                    name: e.name.clone(),
                    method: m,
                    method_name: method_name(m),
                })
            }
        };
        if short && out.error.is_none() {
            out.error = Some(format!(
                "entry data is cut off by the end of the file after {} bytes",
                raw.len()
            ));
        }
        if !out.truncated_at_limit && out.error.is_none() {
            self.check_crc(e, &out.bytes);
        }
        Ok(out)
    }

    fn check_readable(&self, e: &ZipEntry) -> Result<(), ArchiveError> {
        if e.encrypted {
            return Err(ArchiveError::Encrypted {
                name: e.name.clone(),
            });
        }
        if e.local_name.is_none() {
            return Err(ArchiveError::Malformed {
                kind: "zip",
                reason: format!(
                    "entry '{}' has no readable local header at offset {}",
                    e.name, e.local_header_offset
                ),
            });
        }
        Ok(())
    }

    fn check_crc(&self, e: &ZipEntry, bytes: &[u8]) {
        let mut c = flate2::Crc::new();
        c.update(bytes);
        let got = c.sum();
        if got != e.crc32 {
            let mut f = self.crc_failures.lock().unwrap_or_else(|p| p.into_inner());
            if !f.iter().any(|(n, _, _)| n == &e.name) {
                f.push((e.name.clone(), e.crc32, got));
            }
        }
    }

    /// Findings for every container anomaly seen so far: those found while
    /// parsing plus CRC mismatches of entries read since.
    /// `loc` is the archive's own location; findings about one entry narrow
    /// it with [`Location::with_member`].
    pub fn anomalies(&self, loc: &Location) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut per_rule: HashMap<&'static str, usize> = HashMap::new();
        let crc: Vec<Note> = self
            .crc_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, want, got)| Note {
                rule: &CHECKSUM_MISMATCH,
                member: Some(n.clone()),
                offset: None,
                evidence: format!("declared CRC-32 {want:#010x}, contents have {got:#010x}"),
            })
            .collect();
        for n in self.notes.iter().chain(crc.iter()) {
            let count = per_rule.entry(n.rule.id).or_default();
            *count += 1;
            if *count > MAX_NOTES_PER_RULE {
                continue;
            }
            out.push(n.rule.finding(note_location(loc, n), n.evidence.clone()));
        }
        for n in self.notes.iter().chain(crc.iter()) {
            let count = per_rule.get(n.rule.id).copied().unwrap_or(0);
            if count > MAX_NOTES_PER_RULE {
                per_rule.insert(n.rule.id, 0);
                out.push(n.rule.finding(
                    loc.clone(),
                    format!(
                        "{} further occurrences not listed",
                        count - MAX_NOTES_PER_RULE
                    ),
                ));
            }
        }
        out
    }
}

fn note_location(loc: &Location, n: &Note) -> Location {
    let mut l = loc.clone();
    if let Some(m) = &n.member {
        l = l.with_member(m.clone());
    } else if let Some(o) = n.offset {
        l = l.with_offset(o);
    }
    l
}

fn entry_cap(e: &ZipEntry, limits: &Limits) -> u64 {
    let declared = e
        .uncompressed_size
        .saturating_mul(DECLARED_SLACK)
        .max(DECLARED_FLOOR);
    limits.output_cap(e.compressed_size).min(declared)
}

/// Zip's LZMA (method 14): a 4-byte header (version, properties size) and
/// the 5 properties bytes before a raw LZMA stream (APPNOTE 5.8.8).
fn read_zip_lzma(raw: &[u8], e: &ZipEntry, cap: u64) -> Result<Decompressed, ArchiveError> {
    let bad = |reason: String| ArchiveError::Corrupt {
        format: "lzma",
        reason,
    };
    let psize =
        u16_at(raw, 2).ok_or_else(|| bad("entry shorter than its lzma header".into()))? as usize;
    if psize < 5 || raw.len() < 4 + psize {
        return Err(bad(format!("lzma properties size {psize} is invalid")));
    }
    let props = raw[4];
    let dict = u32_at(raw, 5).unwrap_or(0);
    let need =
        lzma_rust2::lzma_get_memory_usage_by_props(dict, props).map_err(|e| bad(e.to_string()))?;
    if need > MAX_DICT_MEMORY_KIB {
        return Err(ArchiveError::LimitExceeded {
            what: "lzma dictionary memory",
            limit: MAX_DICT_MEMORY_KIB as u64 * 1024,
        });
    }
    // Bit 1 set: the stream ends with an end marker and the size is unknown.
    let size = if e.flags & 0x0002 != 0 {
        u64::MAX
    } else {
        e.uncompressed_size
    };
    let r = lzma_rust2::LzmaReader::new_with_props(&raw[4 + psize..], size, props, dict, None)
        .map_err(|e| bad(e.to_string()))?;
    drain(r, cap, "lzma")
}

/// Overrides saturated 32-bit fields from the zip64 extended-information
/// extra field (id 0x0001), in APPNOTE order.
fn apply_zip64_extra(extra: &[u8], usz: &mut u64, csz: &mut u64, off: &mut u64) {
    let mut i = 0usize;
    while i + 4 <= extra.len() {
        let id = u16_at(extra, i).unwrap_or(0);
        let len = u16_at(extra, i + 2).unwrap_or(0) as usize;
        let body = extra.get(i + 4..i + 4 + len).unwrap_or(&[]);
        if id == 0x0001 {
            let mut j = 0;
            for field in [usz, csz, off] {
                if *field == u32::MAX as u64 {
                    match u64_at(body, j) {
                        Some(v) => *field = v,
                        None => return,
                    }
                    j += 8;
                }
            }
            return;
        }
        i += 4 + len;
    }
}

/// Offset of the next zip signature (descriptor, local, central, end) in `d`.
fn next_signature(d: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(b"PK");
    for p in finder.find_iter(d) {
        if let Some(s) = u32_at(d, p) {
            if matches!(s, SIG_DESCRIPTOR | SIG_LOCAL | SIG_CENTRAL | SIG_EOCD) {
                return Some(p);
            }
        }
    }
    None
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
