//! A bounded tar reader over `&[u8]`: ustar, GNU long names and pax headers.
//!
//! Legacy PyTorch checkpoints (`torch.save(..., _use_new_zipfile_serialization=False)`
//! before 1.6 with `tarfile`) are tar archives holding `sys_info`, `pickle`,
//! `storages` and `tensors`; users also ship models as tarballs. Entries are
//! returned with their data borrowed from the file; nothing is copied.
//!
//! Format reference: POSIX.1-2001 `pax` (ustar header layout, extended
//! header records `"%d %s=%s\n"`), GNU tar's `././@LongLink` `L`/`K`
//! entries and base-256 numeric fields. The reader stops cleanly at the
//! end-of-archive zero blocks or at truncation; a header whose checksum does
//! not match is still used (reported as an anomaly), since GNU tar and
//! Python's `tarfile` differ in how they recover from it.

use aisec_core::{Finding, Location};

use crate::rules::*;
use crate::{is_traversal_name, ArchiveError, Limits};

const BLOCK: usize = 512;

/// What kind of file a tar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TarEntryKind {
    /// Regular file (`0`, NUL, or contiguous `7`).
    File,
    /// Hard link (`1`) to `link_name`.
    HardLink,
    /// Symbolic link (`2`) to `link_name`.
    Symlink,
    /// Character device (`3`).
    CharDevice,
    /// Block device (`4`).
    BlockDevice,
    /// Directory (`5`).
    Directory,
    /// FIFO (`6`).
    Fifo,
    /// Any other type flag (kept with its byte).
    Other(u8),
}

impl TarEntryKind {
    /// Lower-case human name, e.g. `symlink`, `character device`.
    pub fn describe(self) -> &'static str {
        match self {
            TarEntryKind::File => "regular file",
            TarEntryKind::HardLink => "hard link",
            TarEntryKind::Symlink => "symlink",
            TarEntryKind::CharDevice => "character device",
            TarEntryKind::BlockDevice => "block device",
            TarEntryKind::Directory => "directory",
            TarEntryKind::Fifo => "FIFO",
            TarEntryKind::Other(_) => "special entry",
        }
    }
}

/// One entry of a tar archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry<'a> {
    /// Path: pax `path`, else GNU long name, else ustar `prefix/name`.
    pub name: String,
    /// Link target for links: pax `linkpath`, GNU long link, or `linkname`.
    pub link_name: Option<String>,
    /// Entry type.
    pub kind: TarEntryKind,
    /// Declared size in bytes (pax `size` when present).
    pub size: u64,
    /// The entry's data, borrowed; shorter than `size` when the file is
    /// truncated.
    pub data: &'a [u8],
    /// Offset of the entry's header in the file.
    pub header_offset: u64,
    /// Whether the header checksum matched.
    pub checksum_ok: bool,
}

/// A parsed tar archive borrowing the file's bytes.
#[derive(Debug, Clone)]
pub struct TarArchive<'a> {
    entries: Vec<TarEntry<'a>>,
    notes: Vec<crate::MemberNote>,
}

/// True when block 0 carries the ustar magic at offset 257 or a valid
/// header checksum.
pub fn looks_like_tar(data: &[u8]) -> bool {
    let Some(h) = data.get(..BLOCK) else {
        return false;
    };
    if &h[257..262] == b"ustar" {
        return true;
    }
    h.iter().any(|&b| b != 0) && h[0] != 0 && checksum_matches(h)
}

fn checksum_matches(h: &[u8]) -> bool {
    let Some(stored) = parse_octal(&h[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += b as i8 as i64;
    }
    stored == unsigned || stored as i64 == signed
}

/// Octal field (NUL/space padded), or GNU base-256 when the top bit is set.
fn parse_octal(f: &[u8]) -> Option<u64> {
    if let Some(&first) = f.first() {
        if first & 0x80 != 0 {
            if first == 0xff {
                return None; // negative
            }
            let mut v: u64 = (first & 0x7f) as u64;
            for &b in &f[1..] {
                v = v.checked_mul(256)?.checked_add(b as u64)?;
            }
            return Some(v);
        }
    }
    let s = f.iter().skip_while(|&&b| b == b' ' || b == 0);
    let mut v: u64 = 0;
    let mut any = false;
    for &b in s {
        match b {
            b'0'..=b'7' => {
                v = v.checked_mul(8)?.checked_add((b - b'0') as u64)?;
                any = true;
            }
            b' ' | 0 => break,
            _ => return None,
        }
    }
    if any {
        Some(v)
    } else {
        Some(0)
    }
}

fn cstr(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

/// Parses pax extended-header records, returning `path`, `linkpath`, `size`.
fn parse_pax(body: &[u8]) -> (Option<String>, Option<String>, Option<u64>) {
    let (mut path, mut link, mut size) = (None, None, None);
    let mut rest = body;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            let (k, v) = (&rec[..eq], &rec[eq + 1..]);
            let v = String::from_utf8_lossy(v).into_owned();
            match k {
                b"path" => path = Some(v),
                b"linkpath" => link = Some(v),
                b"size" => size = v.parse().ok(),
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    (path, link, size)
}

impl<'a> TarArchive<'a> {
    /// Parses `data` with [`Limits::default`].
    pub fn parse(data: &'a [u8]) -> Result<TarArchive<'a>, ArchiveError> {
        Self::parse_with_limits(data, &Limits::default())
    }

    /// Parses `data`, listing at most `limits.max_entries` entries.
    pub fn parse_with_limits(
        data: &'a [u8],
        limits: &Limits,
    ) -> Result<TarArchive<'a>, ArchiveError> {
        if !looks_like_tar(data) {
            return Err(ArchiveError::NotAnArchive {
                kind: "tar",
                reason: "block 0 has neither the ustar magic nor a valid header checksum".into(),
            });
        }
        let mut ar = TarArchive {
            entries: Vec::new(),
            notes: Vec::new(),
        };
        let mut pos = 0usize;
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        let mut pax: (Option<String>, Option<String>, Option<u64>) = (None, None, None);
        let mut headers = 0usize;
        let mut end_of_archive = None;
        // Every header consumes at least one block, so this loop ends; the
        // header count bounds the work on archives of meta entries.
        while pos + BLOCK <= data.len() {
            let h = &data[pos..pos + BLOCK];
            if h.iter().all(|&b| b == 0) {
                let next_zero = absent_or_zero(data.get(pos + BLOCK..pos + 2 * BLOCK));
                if next_zero {
                    end_of_archive = Some((pos + 2 * BLOCK).min(data.len()));
                    break;
                }
                pos += BLOCK;
                continue;
            }
            headers += 1;
            if headers > limits.max_entries.saturating_mul(4).max(16)
                || ar.entries.len() >= limits.max_entries
            {
                ar.notes.push((
                    &ENTRY_COUNT,
                    None,
                    format!(
                        "listing stopped at the entry limit of {}",
                        limits.max_entries
                    ),
                ));
                break;
            }
            let checksum_ok = checksum_matches(h);
            let Some(mut size) = parse_octal(&h[124..136]) else {
                ar.notes.push((
                    &CHECKSUM_MISMATCH,
                    None,
                    format!("header at offset {pos} has an unreadable size field; stopping"),
                ));
                break;
            };
            let typeflag = h[156];
            let data_start = pos + BLOCK;
            let avail = data.len().saturating_sub(data_start) as u64;
            let body_len = size.min(avail) as usize;
            let body = &data[data_start..data_start + body_len];
            let padded = size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
            let next = (data_start as u64).saturating_add(padded);
            match typeflag {
                b'L' | b'K' | b'x' | b'g' => {
                    if !checksum_ok {
                        ar.notes.push((
                            &CHECKSUM_MISMATCH,
                            None,
                            format!("meta header at offset {pos} has a bad checksum"),
                        ));
                    }
                    match typeflag {
                        b'L' => long_name = Some(cstr(body)),
                        b'K' => long_link = Some(cstr(body)),
                        b'x' => pax = parse_pax(body),
                        // A global pax header ('g') sets defaults for the
                        // whole archive; a global `path` is meaningless for
                        // single entries, so nothing is taken from it.
                        _ => {}
                    }
                }
                _ => {
                    let ustar = &h[257..262] == b"ustar";
                    let mut name = cstr(&h[0..100]);
                    if ustar && h[263] == b'0' {
                        let prefix = cstr(&h[345..500]);
                        if !prefix.is_empty() {
                            name = format!("{prefix}/{name}");
                        }
                    }
                    let (pax_path, pax_link, pax_size) = std::mem::take(&mut pax);
                    if let Some(n) = pax_path.or(long_name.take()) {
                        name = n;
                    }
                    if let Some(s) = pax_size {
                        size = s;
                    }
                    let kind = match typeflag {
                        b'0' | 0 | b'7' => TarEntryKind::File,
                        b'1' => TarEntryKind::HardLink,
                        b'2' => TarEntryKind::Symlink,
                        b'3' => TarEntryKind::CharDevice,
                        b'4' => TarEntryKind::BlockDevice,
                        b'5' => TarEntryKind::Directory,
                        b'6' => TarEntryKind::Fifo,
                        t => TarEntryKind::Other(t),
                    };
                    let link_name = match kind {
                        TarEntryKind::HardLink | TarEntryKind::Symlink => Some(
                            pax_link
                                .or(long_link.take())
                                .unwrap_or_else(|| cstr(&h[157..257])),
                        ),
                        _ => None,
                    };
                    long_link = None;
                    // Links and devices carry no data even if size says so.
                    let has_data = matches!(kind, TarEntryKind::File | TarEntryKind::Other(_));
                    let body_len = if has_data {
                        size.min(avail) as usize
                    } else {
                        0
                    };
                    ar.entries.push(TarEntry {
                        name,
                        link_name,
                        kind,
                        size: if has_data { size } else { 0 },
                        data: &data[data_start..data_start + body_len],
                        header_offset: pos as u64,
                        checksum_ok,
                    });
                    if has_data && (body_len as u64) < size {
                        let n = ar.entries.last().map(|e| e.name.clone());
                        ar.notes.push((
                            &ENTRY_OUT_OF_BOUNDS,
                            n,
                            format!(
                                "entry declares {size} bytes but the file ends after {body_len}"
                            ),
                        ));
                    }
                    let padded = if has_data {
                        size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64)
                    } else {
                        0
                    };
                    let next = (data_start as u64).saturating_add(padded);
                    if next >= data.len() as u64 {
                        break;
                    }
                    pos = next as usize;
                    continue;
                }
            }
            if next >= data.len() as u64 {
                break;
            }
            pos = next as usize;
        }
        if let Some(end) = end_of_archive {
            // Writers pad to a record size (10 KiB for GNU tar and Python's
            // tarfile) with zeros; only non-zero bytes count as trailing data.
            // Look at the first and last 64 KiB after the end only, so a
            // huge zero tail is not read in full.
            let tail = &data[end..];
            let head = &tail[..tail.len().min(64 * 1024)];
            let last_start = tail.len().saturating_sub(64 * 1024).max(head.len());
            let found = head.iter().position(|&b| b != 0).or_else(|| {
                tail[last_start..]
                    .iter()
                    .position(|&b| b != 0)
                    .map(|p| p + last_start)
            });
            if let Some(extra) = found {
                let at = end + extra;
                ar.notes.push((
                    &TRAILING_DATA,
                    None,
                    format!(
                        "{} bytes follow the end-of-archive blocks, first non-zero at offset {at}",
                        data.len() - end
                    ),
                ));
            }
        }
        ar.check();
        Ok(ar)
    }

    fn check(&mut self) {
        let mut notes = Vec::new();
        for e in &self.entries {
            if !e.checksum_ok {
                notes.push((
                    &CHECKSUM_MISMATCH,
                    Some(e.name.clone()),
                    format!(
                        "header checksum at offset {} does not match",
                        e.header_offset
                    ),
                ));
            }
            if is_traversal_name(&e.name) {
                notes.push((
                    &PATH_TRAVERSAL,
                    Some(e.name.clone()),
                    format!("entry name '{}' escapes the extraction directory", e.name),
                ));
            }
            if let Some(t) = &e.link_name {
                let escapes = match e.kind {
                    // A symlink resolves relative to its own directory.
                    TarEntryKind::Symlink => link_escapes(&e.name, t),
                    _ => is_traversal_name(t),
                };
                if escapes {
                    notes.push((
                        &TAR_LINK_OUTSIDE,
                        Some(e.name.clone()),
                        format!("{} entry '{}' points to '{t}'", e.kind.describe(), e.name),
                    ));
                }
            }
            if matches!(
                e.kind,
                TarEntryKind::CharDevice | TarEntryKind::BlockDevice | TarEntryKind::Fifo
            ) {
                notes.push((
                    &TAR_DEVICE,
                    Some(e.name.clone()),
                    format!("entry '{}' is a {}", e.name, e.kind.describe()),
                ));
            }
        }
        self.notes.extend(notes);
    }

    /// The entries in file order (meta entries such as pax headers folded in).
    pub fn entries(&self) -> &[TarEntry<'a>] {
        &self.entries
    }

    /// The first entry with this name.
    pub fn by_name(&self, name: &str) -> Option<&TarEntry<'a>> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Findings for path traversal, links leaving the archive, special files,
    /// checksum mismatches, truncation and trailing data.
    pub fn anomalies(&self, loc: &Location) -> Vec<Finding> {
        crate::member_findings(&self.notes, loc)
    }
}

/// True when `b` is absent (end of file) or all zeros.
fn absent_or_zero(b: Option<&[u8]>) -> bool {
    b.is_none_or(|b| b.iter().all(|&x| x == 0))
}

/// Whether a symlink at `name` pointing to `target` resolves outside the
/// archive root.
pub(crate) fn link_escapes(name: &str, target: &str) -> bool {
    let t = target.as_bytes();
    let drive = t.len() >= 2 && t[1] == b':' && t[0].is_ascii_alphabetic();
    if target.starts_with('/') || target.starts_with('\\') || drive {
        return true;
    }
    let mut depth: i64 = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .count() as i64
        - 1;
    for c in target.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_base256() {
        assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"   12 \0"), Some(0o12));
        assert_eq!(
            parse_octal(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Some(1 << 32)
        );
        assert_eq!(parse_octal(b"9"), None);
    }

    #[test]
    fn symlink_escape() {
        assert!(link_escapes("a/link", "../../etc/passwd"));
        assert!(!link_escapes("a/b/link", "../c"));
        assert!(link_escapes("link", "/etc/passwd"));
        assert!(link_escapes("link", ".."));
    }

    #[test]
    fn pax_records() {
        let (p, l, s) = parse_pax(b"29 path=some/long/name/x.pkl\n13 size=1234\n");
        assert_eq!(p.as_deref(), Some("some/long/name/x.pkl"));
        assert_eq!(l, None);
        assert_eq!(s, Some(1234));
    }
}
