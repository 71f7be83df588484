//! A minimal read-only HDF5 reader for Keras `.h5` models.
//!
//! Follows the HDF5 File Format Specification version 3.0 (The HDF Group):
//! superblocks v0–v3 (searched at offset 0 and at 512, 1024, 2048… after a
//! user block), object headers v1 (with continuation blocks) and v2
//! (`OHDR`/`OCHK`), attribute messages (0x000C) with datatype (0x0003) and
//! dataspace (0x0001) encodings, fixed-length strings and variable-length
//! strings stored in global heap collections (`GCOL`), v1 groups (symbol
//! table message → v1 B-tree `TREE` → symbol nodes `SNOD`, names in a local
//! heap `HEAP`) and v2 groups (link messages 0x0006). Dense link and
//! attribute storage (fractal heap `FRHP`: root direct block `FHDB` or the
//! direct-block rows of the root indirect block `FHIB`) is decoded by reading
//! the packed messages in sequence; huge objects, filtered heaps and nested
//! indirect blocks are noted, and a byte search for serialized Lambda text
//! covers whatever the structured reader could not decode. Every read is
//! bounds-checked, every walk bounded and cycle-checked.
//!
//! Keras 2 / tf.keras store the architecture as the root attribute
//! `model_config` (JSON), plus `training_config`, `keras_version` and
//! `backend`; the JSON goes to [`crate::keras::analyze`]. HDF5-level risks are
//! reported too: external links to other files and datasets whose raw data
//! lives in external files (which can turn local files into weights).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

use aisec_core::{Confidence, Location};

use crate::keras::{self, Origin};
use crate::rules::*;
use crate::{clip, FormatReport};

const SIG: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
const UNDEF: u64 = u64::MAX;
const MAX_OBJECTS: usize = 20_000;
const MAX_MESSAGES: usize = 4096;
const MAX_CHUNKS: usize = 256;
const MAX_ELEMENTS: u64 = 4096;
const MAX_STRING: usize = 64 << 20;
const MAX_BTREE_NODES: usize = 100_000;
/// Total header messages, heap objects and B-tree entries one file may cost.
const WORK_BUDGET: usize = 1_000_000;
/// Total attribute string bytes decoded per file.
const STRING_BUDGET: usize = 256 << 20;

/// Finds the superblock: at 0 or a power of two ≥ 512.
fn find_superblock(d: &Bytes<'_>) -> Option<u64> {
    let mut off = 0u64;
    loop {
        if d.read(off, 8)? == SIG {
            return Some(off);
        }
        off = if off == 0 { 512 } else { off.checked_mul(2)? };
        if off >= d.size {
            return None;
        }
    }
}

/// Cheap sniff: an HDF5 signature at 0 or after a user block.
pub fn looks_like_h5(data: &[u8]) -> bool {
    find_superblock(&Bytes::whole(data)).is_some()
}

/// Most distinct ranges [`Bytes`] records as read; past it the reader's
/// reads are no longer known and nothing is masked (see [`scan_h5`]).
const MAX_TOUCHED: usize = 1 << 20;

/// The bytes of an HDF5 file the reader may use: the whole file (a local
/// scan), or the pieces of it fetched so far (a remote fetch plan, see
/// [`plan_metadata`]). Every read is recorded: the ranges it was answered
/// from, and the ranges it asked for but no piece held.
#[derive(Debug)]
pub struct Bytes<'a> {
    size: u64,
    /// Sorted by offset, not overlapping.
    pieces: Vec<(u64, &'a [u8])>,
    touched: RefCell<Vec<(u64, u64)>>,
    touched_overflow: Cell<bool>,
    missed: RefCell<Vec<(u64, u64)>>,
}

impl<'a> Bytes<'a> {
    /// The whole file.
    pub fn whole(data: &'a [u8]) -> Bytes<'a> {
        Bytes::pieces(data.len() as u64, vec![(0, data)])
    }

    /// A file of `size` bytes of which only `pieces` (offset, bytes) are
    /// known; empty pieces, pieces that overlap an earlier one or reach past
    /// `size` are dropped ([`aisec_core::protobuf::keep_pieces`]).
    pub fn pieces(size: u64, pieces: Vec<(u64, &'a [u8])>) -> Bytes<'a> {
        Bytes {
            size,
            pieces: aisec_core::protobuf::keep_pieces(size, pieces),
            touched: RefCell::new(Vec::new()),
            touched_overflow: Cell::new(false),
            missed: RefCell::new(Vec::new()),
        }
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `n` bytes at `pos`: `None` past the end of the file, or when no
    /// piece holds them (then recorded as missed).
    fn read(&self, pos: u64, n: usize) -> Option<&'a [u8]> {
        let end = pos.checked_add(n as u64)?;
        if end > self.size {
            return None;
        }
        if n == 0 {
            // As a slice of the whole file would: empty, held or not.
            return Some(&[]);
        }
        let i = self.pieces.partition_point(|p| p.0 <= pos);
        let hit = i.checked_sub(1).and_then(|i| {
            let (s, b) = self.pieces[i];
            let at = usize::try_from(pos - s).ok()?;
            b.get(at..at.checked_add(n)?)
        });
        match hit {
            Some(b) => {
                self.touch(pos, end);
                Some(b)
            }
            None => {
                let mut m = self.missed.borrow_mut();
                if m.len() < MAX_TOUCHED {
                    m.push((pos, end));
                }
                None
            }
        }
    }

    fn touch(&self, s: u64, e: u64) {
        if s >= e || self.touched_overflow.get() {
            return;
        }
        let mut t = self.touched.borrow_mut();
        if let Some(last) = t.last_mut() {
            if s <= last.1 && e >= last.0 {
                last.0 = last.0.min(s);
                last.1 = last.1.max(e);
                return;
            }
        }
        if t.len() >= MAX_TOUCHED {
            self.touched_overflow.set(true);
            return;
        }
        t.push((s, e));
    }
}

/// Sorts and merges ranges that overlap or touch; empty ranges are dropped.
/// (Also the remote HDF5 plan's block merger.)
pub fn merge_ranges(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.retain(|r| r.0 < r.1);
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `a` less `b` (both merged).
fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(s, e) in a {
        let mut at = s;
        while j < b.len() && b[j].1 <= at {
            j += 1;
        }
        let mut k = j;
        while at < e {
            match b.get(k) {
                Some(&(bs, be)) if bs < e => {
                    if bs > at {
                        out.push((at, bs));
                    }
                    at = at.max(be);
                    k += 1;
                }
                _ => {
                    out.push((at, e));
                    at = e;
                }
            }
        }
    }
    out
}

/// What a fetch plan needs from a walk over the pieces fetched so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPlan {
    /// Ranges the reader asked for and no piece held, sorted and merged.
    /// Empty: the walk ran on fetched bytes only, and another walk over
    /// the same bytes (the scan) reads exactly what this one read.
    pub missing: Vec<(u64, u64)>,
    /// Byte ranges [`scan_h5`] will not look at when the pieces hold
    /// everything else: dataset raw data (contiguous storage and the
    /// chunks of a v1 chunk B-tree) that no metadata read touched; when
    /// the walk failed (no superblock, a broken root group), every byte it
    /// did not read. Empty when the walk went on past damage or left parts
    /// unread (the scan's byte search then reads the whole file);
    /// meaningful when `missing` is empty.
    pub unread: Vec<(u64, u64)>,
}

/// Walks an HDF5 file's metadata over the bytes `b` holds (the same walk
/// as [`scan_h5`]) and says what more it needs: the ranges it lacked, and
/// once it lacks none, the raw data ranges the scan skips. A remote reader
/// fetches `missing`, walks again, and when nothing is missing fetches
/// every byte not in `unread`: [`scan_h5`] over a file holding those bytes
/// (anything, zeros, in `unread`) gives the result it gives on the
/// original file.
pub fn plan_metadata(b: &Bytes<'_>) -> MetadataPlan {
    let loc = Location::path("plan");
    let mut r = FormatReport::default();
    let walked = walk(b, &loc, &mut r);
    let missing = merge_ranges(b.missed.borrow().clone());
    let unread = match walked {
        _ if !missing.is_empty() => Vec::new(),
        Ok(w) => w.unread,
        // The scan stops where the walk failed: it reads nothing more.
        Err(_) if !b.touched_overflow.get() => {
            subtract(&[(0, b.size)], &merge_ranges(b.touched.borrow().clone()))
        }
        Err(_) => Vec::new(),
    };
    MetadataPlan { missing, unread }
}

type R<T> = Result<T, String>;

struct File<'a> {
    d: &'a Bytes<'a>,
    base: u64,
    so: usize,
    sl: usize,
    gheap: HashMap<u64, Vec<(u16, u64, usize)>>,
    budget: usize,
    /// Set where the walk leaves metadata unread (huge or filtered heap
    /// objects, nested indirect blocks, limits): the raw-text safety net
    /// then searches the whole file.
    partial: bool,
    /// Bytes of attribute string data still allowed to be decoded.
    string_budget: usize,
}

/// One decoded attribute.
#[derive(Debug, Clone)]
struct Attr {
    name: String,
    strings: Vec<String>,
}

#[derive(Default)]
struct Object {
    attrs: Vec<Attr>,
    children: Vec<(String, u64)>,
    symtab: Option<(u64, u64)>,
    externals: Vec<String>,
    dense_links: Option<u64>,
    dense_attrs: Option<u64>,
    ext_storage_heap: Vec<(u64, Vec<u64>)>,
    /// Contiguous raw data: (address, size).
    contiguous: Vec<(u64, u64)>,
    /// A v1 chunk B-tree: (address, dimensionality incl. the element size).
    chunk_btree: Option<(u64, usize)>,
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x))
}

impl<'a> File<'a> {
    fn bytes(&self, pos: u64, n: usize) -> R<&'a [u8]> {
        self.d.read(pos, n).ok_or_else(|| {
            format!(
                "{n} bytes at offset {pos} lie beyond the {} byte file",
                self.d.size
            )
        })
    }
    /// Absolute position of a file address.
    fn abs(&self, addr: u64) -> R<u64> {
        if addr == UNDEF {
            return Err("undefined address".into());
        }
        match self.base.checked_add(addr) {
            Some(p) if p < self.d.size => Ok(p),
            _ => Err(format!(
                "address {addr} lies beyond the {} byte file",
                self.d.size
            )),
        }
    }
    fn charge_string(&mut self, n: usize) -> R<()> {
        self.string_budget = self
            .string_budget
            .checked_sub(n)
            .ok_or("attribute string data exceeds the decoding limit")?;
        Ok(())
    }
    fn tick(&mut self) -> R<()> {
        if self.budget == 0 {
            return Err("work limit reached".into());
        }
        self.budget -= 1;
        Ok(())
    }

    /// Reads all messages of the object header at `addr`.
    fn messages(&mut self, addr: u64) -> R<Vec<(u16, &'a [u8])>> {
        let pos = self.abs(addr)?;
        let mut out = Vec::new();
        let mut chunks: Vec<(u64, u64)> = Vec::new();
        let v2 = self.bytes(pos, 4)? == b"OHDR";
        let mut hflags = 0u8;
        if v2 {
            let h = self.bytes(pos, 6)?;
            if h[4] != 2 {
                return Err(format!("object header version {} at {pos}", h[4]));
            }
            let flags = h[5];
            hflags = flags;
            let mut p = pos + 6;
            if flags & 0x20 != 0 {
                p += 16;
            }
            if flags & 0x10 != 0 {
                p += 4;
            }
            let w = 1usize << (flags & 3);
            let size = le(self.bytes(p, w)?);
            p += w as u64;
            chunks.push((p, size));
        } else {
            let h = self.bytes(pos, 16)?;
            if h[0] != 1 {
                return Err(format!(
                    "unknown object header version {} at offset {pos}",
                    h[0]
                ));
            }
            let size = le(&h[8..12]);
            chunks.push((pos + 16, size));
        }
        let mut i = 0;
        while i < chunks.len() {
            if i >= MAX_CHUNKS {
                return Err("too many object header continuation chunks".into());
            }
            let (start, size) = chunks[i];
            i += 1;
            let body = self.bytes(start, usize::try_from(size).map_err(|_| "chunk too large")?)?;
            let mut q = 0usize;
            let hdr = if v2 { 4 } else { 8 };
            while q + hdr <= body.len() {
                self.tick()?;
                if out.len() >= MAX_MESSAGES {
                    return Err("too many header messages".into());
                }
                let (ty, sz, dstart) = if v2 {
                    let ty = u16::from(body[q]);
                    let sz = le(&body[q + 1..q + 3]) as usize;
                    let ds = q + 4 + if hflags & 0x04 != 0 { 2 } else { 0 };
                    (ty, sz, ds)
                } else {
                    (
                        le(&body[q..q + 2]) as u16,
                        le(&body[q + 2..q + 4]) as usize,
                        q + 8,
                    )
                };
                // A shared message (flag bit 1) is stored elsewhere (a shared
                // object header message heap, another header), which this
                // reader does not follow: nothing is then left unsearched.
                if body[q + if v2 { 3 } else { 4 }] & 0x02 != 0 {
                    self.partial = true;
                }
                let data = body.get(dstart..dstart + sz).ok_or_else(|| {
                    format!(
                        "header message of {sz} bytes overruns its chunk at offset {}",
                        start + q as u64
                    )
                })?;
                q = dstart + sz;
                if !v2 {
                    q = q.div_ceil(8) * 8;
                }
                if ty == 0x10 {
                    if data.len() < self.so + self.sl {
                        return Err("short continuation message".into());
                    }
                    let off = le(&data[..self.so]);
                    let len = le(&data[self.so..self.so + self.sl]);
                    let cpos = self.abs(off)?;
                    if v2 {
                        if self.bytes(cpos, 4)? != b"OCHK" || len < 8 {
                            return Err(format!("bad continuation chunk at {cpos}"));
                        }
                        chunks.push((cpos + 4, len - 8));
                    } else {
                        chunks.push((cpos, len));
                    }
                } else {
                    out.push((ty, data));
                }
            }
        }
        Ok(out)
    }

    fn object(&mut self, addr: u64) -> R<Object> {
        let mut o = Object::default();
        for (ty, data) in self.messages(addr)? {
            match ty {
                0x0C => match self.attribute(data) {
                    Ok(Some(a)) => o.attrs.push(a),
                    Ok(None) => {}
                    Err(e) => return Err(format!("attribute: {e}")),
                },
                0x11 if data.len() >= 2 * self.so => {
                    o.symtab = Some((le(&data[..self.so]), le(&data[self.so..2 * self.so])));
                }
                0x06 => {
                    self.link(data, &mut o)?;
                }
                0x02 => {
                    // Link Info: version, flags, [max creation index u64], fractal heap address.
                    let at = 2 + if data.get(1).is_some_and(|f| f & 1 != 0) {
                        8
                    } else {
                        0
                    };
                    let undef = UNDEF >> (64 - 8 * self.so as u32);
                    o.dense_links = data.get(at..at + self.so).map(le).filter(|&a| a != undef);
                }
                0x15 => {
                    // Attribute Info: version, flags, [max creation index u16], fractal heap address.
                    let at = 2 + if data.get(1).is_some_and(|f| f & 1 != 0) {
                        2
                    } else {
                        0
                    };
                    let undef = UNDEF >> (64 - 8 * self.so as u32);
                    o.dense_attrs = data.get(at..at + self.so).map(le).filter(|&a| a != undef);
                }
                // External Data Files: version, 3 reserved, allocated u16, used u16, heap addr, slots.
                0x07 if data.len() >= 8 + self.so => {
                    let used = le(&data[6..8]) as usize;
                    let heap = le(&data[8..8 + self.so]);
                    let mut offs = Vec::new();
                    let mut p = 8 + self.so;
                    for _ in 0..used.min(64) {
                        let Some(s) = data.get(p..p + self.sl) else {
                            break;
                        };
                        offs.push(le(s));
                        p += 3 * self.sl;
                    }
                    o.ext_storage_heap.push((heap, offs));
                }
                // Data Layout (spec IV.A.2.i), versions 3 and 4: contiguous
                // storage (address, size); v3 chunked storage (dimensionality,
                // v1 B-tree address). Older versions and v4 chunk indexes are
                // not read: their raw data is searched like any other byte.
                0x08 if data.len() >= 2 && matches!(data[0], 3 | 4) => {
                    let (so, sl) = (self.so, self.sl);
                    match data[1] {
                        1 if data.len() >= 2 + so + sl => o
                            .contiguous
                            .push((le(&data[2..2 + so]), le(&data[2 + so..2 + so + sl]))),
                        2 if data[0] == 3 && data.len() >= 3 + so => {
                            o.chunk_btree = Some((le(&data[3..3 + so]), usize::from(data[2])));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(o)
    }

    fn link(&mut self, d: &[u8], o: &mut Object) -> R<usize> {
        let e = || "truncated link message".to_string();
        if d.len() < 2 || d[0] != 1 {
            return Err("unknown link message version".into());
        }
        let flags = d[1];
        let mut p = 2usize;
        let mut ty = 0u8;
        if flags & 0x08 != 0 {
            ty = *d.get(p).ok_or_else(e)?;
            p += 1;
        }
        if flags & 0x04 != 0 {
            p += 8;
        }
        if flags & 0x10 != 0 {
            p += 1;
        }
        let w = 1usize << (flags & 3);
        let nlen = le(d.get(p..p + w).ok_or_else(e)?) as usize;
        p += w;
        let name =
            String::from_utf8_lossy(d.get(p..p.checked_add(nlen).ok_or_else(e)?).ok_or_else(e)?)
                .into_owned();
        p += nlen;
        match ty {
            0 => {
                let a = le(d.get(p..p + self.so).ok_or_else(e)?);
                o.children.push((name, a));
                p += self.so;
            }
            1 => {
                let l = le(d.get(p..p + 2).ok_or_else(e)?) as usize;
                p += 2 + l;
            }
            64 => {
                let l = le(d.get(p..p + 2).ok_or_else(e)?) as usize;
                p += 2 + l;
                let p = p - 2 - l;
                let info = d.get(p + 2..p + 2 + l).ok_or_else(e)?;
                let parts: Vec<String> = info
                    .get(1..)
                    .unwrap_or(&[])
                    .split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                o.externals.push(format!(
                    "'{}' -> file '{}' object '{}'",
                    clip(&name, 80),
                    clip(parts.first().map_or("", |s| s), 200),
                    clip(parts.get(1).map_or("", |s| s), 200)
                ));
            }
            _ => return Err(format!("link type {ty}")),
        }
        if p > d.len() {
            return Err(e());
        }
        Ok(p)
    }

    /// Object areas of the direct blocks of the fractal heap at `addr`
    /// (HDF5 spec III.G: header `FRHP`, root direct block `FHDB` or root
    /// indirect block `FHIB` whose first rows point at direct blocks).
    /// Nested indirect blocks, huge and filtered objects are not followed.
    fn fractal_heap_blocks(&mut self, addr: u64, notes: &mut Vec<String>) -> R<Vec<&'a [u8]>> {
        let pos = self.abs(addr)?;
        let (so, sl) = (self.so as u64, self.sl as u64);
        let h = self.bytes(pos, 22)?;
        if &h[..4] != b"FRHP" || h[4] != 0 {
            return Err(format!("no fractal heap at {pos}"));
        }
        let filter_len = le(&h[7..9]);
        let flags = h[9];
        // Skip: next huge id (L), huge B-tree (O), free space (L), FSM (O),
        // managed space, allocated, iterator offset, managed count (4 L),
        // huge size, huge count, tiny size, tiny count (4 L).
        let mut p = pos + 14 + sl + so + sl + so + 4 * sl;
        let n_huge = le(self.bytes(p + sl, self.sl)?);
        p += 4 * sl;
        let width = le(self.bytes(p, 2)?);
        p += 2;
        let start = le(self.bytes(p, self.sl)?);
        let max_direct = le(self.bytes(p + sl, self.sl)?);
        p += 2 * sl;
        let max_heap_bits = le(self.bytes(p, 2)?);
        p += 4;
        let root = le(self.bytes(p, self.so)?);
        let rows = le(self.bytes(p + so, 2)?);
        if n_huge > 0 {
            self.partial = true;
            notes.push(format!(
                "fractal heap at {pos} holds {n_huge} huge object(s), not read"
            ));
        }
        if filter_len > 0 {
            self.partial = true;
            notes.push(format!("fractal heap at {pos} uses I/O filters, not read"));
            return Ok(Vec::new());
        }
        if width == 0
            || width > 4096
            || start == 0
            || max_direct < start
            || max_heap_bits > 64
            || rows > 64
        {
            return Err(format!("implausible fractal heap parameters at {pos}"));
        }
        let off_bytes = max_heap_bits.div_ceil(8);
        let dhdr = 5 + so + off_bytes + if flags & 2 != 0 { 4 } else { 0 };
        let undef = UNDEF >> (64 - 8 * self.so as u32);
        let mut out = Vec::new();
        let direct = |this: &Self, a: u64, size: u64, out: &mut Vec<&'a [u8]>| -> R<()> {
            if a == undef {
                return Ok(());
            }
            let bp = this.abs(a)?;
            if this.bytes(bp, 4)? != b"FHDB" {
                return Err(format!("no fractal heap direct block at {bp}"));
            }
            let size = usize::try_from(size.min(this.d.size.saturating_sub(bp)))
                .map_err(|_| "block too large")?;
            let blk = this.bytes(bp, size)?;
            if let Some(objs) = blk.get(dhdr as usize..) {
                out.push(objs);
            }
            Ok(())
        };
        if rows == 0 {
            direct(self, root, start, &mut out)?;
            return Ok(out);
        }
        let ip = self.abs(root)?;
        if self.bytes(ip, 4)? != b"FHIB" {
            return Err(format!("no fractal heap indirect block at {ip}"));
        }
        let mut q = ip + 5 + so + off_bytes;
        for row in 0..rows {
            let size = if row < 2 {
                start
            } else {
                start.checked_shl((row - 1) as u32).unwrap_or(u64::MAX)
            };
            if size > max_direct {
                self.partial = true;
                notes.push(format!(
                    "fractal heap at {pos} has nested indirect blocks, not followed"
                ));
                break;
            }
            for _ in 0..width {
                self.tick()?;
                let a = le(self.bytes(q, self.so)?);
                q += so;
                direct(self, a, size, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Attributes stored densely in the fractal heap at `heap`: objects are
    /// packed back to back in each direct block, so they are decoded in
    /// sequence until free (zeroed) space.
    fn dense_attributes(&mut self, heap: u64, notes: &mut Vec<String>) -> R<Vec<Attr>> {
        let mut out = Vec::new();
        for blk in self.fractal_heap_blocks(heap, notes)? {
            let mut q = 0usize;
            while q < blk.len() && out.len() < 10_000 {
                self.tick()?;
                let Some(len) = self.attribute_len(&blk[q..]) else {
                    break;
                };
                match self.attribute(&blk[q..q + len]) {
                    Ok(Some(a)) => out.push(a),
                    _ => {
                        self.partial = true;
                        break;
                    }
                }
                q += len;
            }
            if out.len() >= 10_000 {
                self.partial = true;
            }
        }
        Ok(out)
    }

    /// Links stored densely in the fractal heap at `heap`.
    fn dense_links(&mut self, heap: u64, o: &mut Object, notes: &mut Vec<String>) -> R<()> {
        for blk in self.fractal_heap_blocks(heap, notes)? {
            let mut q = 0usize;
            while q < blk.len() && o.children.len() < MAX_OBJECTS {
                self.tick()?;
                if blk[q] != 1 {
                    break;
                }
                match self.link(&blk[q..], o) {
                    Ok(n) if n > 0 => q += n,
                    _ => {
                        self.partial = true;
                        break;
                    }
                }
            }
            if o.children.len() >= MAX_OBJECTS {
                self.partial = true;
            }
        }
        Ok(())
    }

    /// Total encoded length of the attribute message at the start of `d`.
    fn attribute_len(&self, d: &[u8]) -> Option<usize> {
        let h = d.get(..8)?;
        let (ver, flags) = (h[0], h[1]);
        let (nsz, tsz, ssz) = (
            le(&h[2..4]) as usize,
            le(&h[4..6]) as usize,
            le(&h[6..8]) as usize,
        );
        let (hdr, pad) = match ver {
            1 => (8, 8),
            2 => (8, 1),
            3 => (9, 1),
            _ => return None,
        };
        if flags & 3 != 0 || nsz == 0 {
            return None;
        }
        let padded = |n: usize| n.div_ceil(pad) * pad;
        let dt_at = hdr + padded(nsz);
        let dt = d.get(dt_at..dt_at + tsz)?;
        let ds = d.get(dt_at + padded(tsz)..dt_at + padded(tsz) + ssz)?;
        let el = le(dt.get(4..8)?);
        let n = self.dataspace_elems(ds).ok()?;
        let data = usize::try_from(n.checked_mul(el)?).ok()?;
        let total = (dt_at + padded(tsz) + padded(ssz)).checked_add(data)?;
        (total <= d.len()).then_some(total)
    }

    fn attribute(&mut self, d: &[u8]) -> R<Option<Attr>> {
        let e = || "truncated attribute message".to_string();
        let ver = *d.first().ok_or_else(e)?;
        let h = d.get(..8).ok_or_else(e)?;
        let flags = h[1];
        let (nsz, tsz, ssz) = (
            le(&h[2..4]) as usize,
            le(&h[4..6]) as usize,
            le(&h[6..8]) as usize,
        );
        let (mut p, pad) = match ver {
            1 => (8usize, 8usize),
            2 => (8, 1),
            3 => (9, 1),
            _ => return Err(format!("attribute message version {ver}")),
        };
        let padded = |n: usize| n.div_ceil(pad) * pad;
        let name_b = d.get(p..p + nsz).ok_or_else(e)?;
        let name =
            String::from_utf8_lossy(name_b.split(|&b| b == 0).next().unwrap_or(&[])).into_owned();
        p += padded(nsz);
        let dt = d.get(p..p + tsz).ok_or_else(e)?;
        p += padded(tsz);
        let ds = d.get(p..p + ssz).ok_or_else(e)?;
        p += padded(ssz);
        let value = d.get(p..).unwrap_or(&[]);
        if ver >= 2 && flags & 3 != 0 {
            return Ok(Some(Attr {
                name,
                strings: Vec::new(),
            }));
        }
        let n = self.dataspace_elems(ds)?;
        let strings = self.strings(dt, value, n)?;
        Ok(Some(Attr { name, strings }))
    }

    fn dataspace_elems(&self, ds: &[u8]) -> R<u64> {
        let e = || "truncated dataspace".to_string();
        let ver = *ds.first().ok_or_else(e)?;
        let rank = *ds.get(1).ok_or_else(e)? as usize;
        let (start, null) = match ver {
            1 => (8, false),
            2 => (4, *ds.get(3).ok_or_else(e)? == 2),
            _ => return Err(format!("dataspace version {ver}")),
        };
        if null {
            return Ok(0);
        }
        let mut n: u64 = 1;
        for i in 0..rank.min(32) {
            let b = ds
                .get(start + i * self.sl..start + (i + 1) * self.sl)
                .ok_or_else(e)?;
            n = n.saturating_mul(le(b));
        }
        Ok(n)
    }

    /// Decodes string attribute values; non-string types yield nothing.
    fn strings(&mut self, dt: &[u8], value: &[u8], n: u64) -> R<Vec<String>> {
        if dt.len() < 8 {
            return Ok(Vec::new());
        }
        let class = dt[0] & 0x0f;
        let size = le(&dt[4..8]) as usize;
        let n = n.min(MAX_ELEMENTS) as usize;
        let mut out = Vec::new();
        match class {
            3 => {
                for i in 0..n {
                    let Some(s) = value.get(i * size..(i + 1) * size) else {
                        break;
                    };
                    let s = s.split(|&b| b == 0).next().unwrap_or(&[]);
                    self.charge_string(s.len())?;
                    out.push(String::from_utf8_lossy(s).into_owned());
                }
            }
            9 if dt[1] & 0x0f == 1 => {
                let el = 4 + self.so + 4;
                for i in 0..n {
                    let Some(b) = value.get(i * el..(i + 1) * el) else {
                        break;
                    };
                    let coll = le(&b[4..4 + self.so]);
                    let idx = le(&b[4 + self.so..]) as u16;
                    match self.gheap_object(coll, idx) {
                        Ok(s) => {
                            self.charge_string(s.len())?;
                            out.push(String::from_utf8_lossy(s).into_owned())
                        }
                        Err(_) if coll == 0 => out.push(String::new()),
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => {}
        }
        Ok(out)
    }

    fn gheap_object(&mut self, coll: u64, idx: u16) -> R<&'a [u8]> {
        if !self.gheap.contains_key(&coll) {
            if self.gheap.len() > 10_000 {
                return Err("too many global heap collections".into());
            }
            let pos = self.abs(coll)?;
            let h = self.bytes(pos, 8 + self.sl)?;
            if &h[..4] != b"GCOL" {
                return Err(format!("no global heap collection at {pos}"));
            }
            let csize = le(&h[8..8 + self.sl]);
            let body = self.bytes(
                pos,
                usize::try_from(csize).map_err(|_| "collection too large")?,
            )?;
            let mut objs = Vec::new();
            let mut q = 8 + self.sl;
            while q + 8 + self.sl <= body.len() && objs.len() < 1_000_000 {
                self.tick()?;
                let i = le(&body[q..q + 2]) as u16;
                if i == 0 {
                    break;
                }
                let sz = le(&body[q + 8..q + 8 + self.sl]) as usize;
                let ds = q + 8 + self.sl;
                if ds.checked_add(sz).is_none_or(|e| e > body.len()) {
                    return Err("global heap object overruns its collection".into());
                }
                objs.push((i, pos + ds as u64, sz));
                q = ds + sz.div_ceil(8) * 8;
            }
            self.gheap.insert(coll, objs);
        }
        let objs = &self.gheap[&coll];
        let &(_, start, sz) = objs
            .iter()
            .find(|o| o.0 == idx)
            .ok_or_else(|| format!("global heap object {idx} missing"))?;
        if sz > MAX_STRING {
            return Err("string too large".into());
        }
        self.bytes(start, sz)
    }

    /// Extents of the chunks indexed by the v1 chunk B-tree (node type 1)
    /// at `btree`: (file position, stored size) of every chunk.
    fn chunk_extents(&mut self, btree: u64, dims: usize, out: &mut Vec<(u64, u64)>) -> R<()> {
        if dims == 0 || dims > 33 {
            return Err(format!("chunk B-tree dimensionality {dims}"));
        }
        let key = 8 + 8 * dims;
        let mut stack = vec![(btree, 0usize)];
        let mut seen = HashSet::new();
        while let Some((node, depth)) = stack.pop() {
            if seen.len() >= MAX_BTREE_NODES || depth > 64 || !seen.insert(node) {
                return Err("chunk B-tree is cyclic or too large".into());
            }
            self.tick()?;
            let pos = self.abs(node)?;
            let h = self.bytes(pos, 8 + 2 * self.so)?;
            if &h[..4] != b"TREE" || h[4] != 1 {
                return Err(format!("expected a chunk B-tree node at {pos}"));
            }
            let level = h[5];
            let entries = le(&h[6..8]) as usize;
            let step = key + self.so;
            let body = self.bytes(
                pos + 8 + 2 * self.so as u64,
                entries
                    .checked_mul(step)
                    .and_then(|n| n.checked_add(key))
                    .ok_or("chunk B-tree node too large")?,
            )?;
            for i in 0..entries {
                self.tick()?;
                let k = &body[i * step..i * step + key];
                let child = le(&body[i * step + key..(i + 1) * step]);
                if level > 0 {
                    stack.push((child, depth + 1));
                } else if let Ok(at) = self.abs(child) {
                    out.push((at, le(&k[..4])));
                }
            }
        }
        Ok(())
    }

    /// Name stored at `off` in the local heap at `heap`.
    fn local_heap_data(&self, heap: u64) -> R<(u64, u64)> {
        let pos = self.abs(heap)?;
        let h = self.bytes(pos, 8 + 2 * self.sl + self.so)?;
        if &h[..4] != b"HEAP" {
            return Err(format!("no local heap at {pos}"));
        }
        let size = le(&h[8..8 + self.sl]);
        let addr = le(&h[8 + 2 * self.sl..8 + 2 * self.sl + self.so]);
        Ok((self.abs(addr)?, size))
    }

    fn heap_string(&self, seg: (u64, u64), off: u64) -> R<String> {
        if off >= seg.1 {
            return Err("local heap offset beyond its segment".into());
        }
        let at = seg.0.saturating_add(off);
        let in_file = self.d.size.saturating_sub(at);
        let avail = (seg.1 - off).min(1024).min(in_file) as usize;
        let b = self.bytes(at, avail)?;
        Ok(String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(&[])).into_owned())
    }

    /// Children of a v1 group (symbol table): walks the B-tree.
    fn symtab_children(&mut self, btree: u64, heap: u64) -> R<Vec<(String, u64)>> {
        let seg = self.local_heap_data(heap)?;
        let mut out = Vec::new();
        let mut stack = vec![(btree, 0usize)];
        let mut seen = HashSet::new();
        let mut nodes = 0;
        while let Some((node, depth)) = stack.pop() {
            nodes += 1;
            if nodes > MAX_BTREE_NODES || depth > 64 || !seen.insert(node) {
                return Err("group B-tree is cyclic or too large".into());
            }
            self.tick()?;
            let pos = self.abs(node)?;
            let sig = self.bytes(pos, 4)?;
            if sig == b"SNOD" {
                let h = self.bytes(pos, 8)?;
                let n = le(&h[6..8]) as usize;
                let esz = 2 * self.so + 24;
                let body = self.bytes(pos + 8, n * esz)?;
                for i in 0..n {
                    self.tick()?;
                    if out.len() >= MAX_OBJECTS {
                        self.partial = true;
                        return Ok(out);
                    }
                    let ent = &body[i * esz..(i + 1) * esz];
                    let name = self.heap_string(seg, le(&ent[..self.so]))?;
                    out.push((name, le(&ent[self.so..2 * self.so])));
                }
                continue;
            }
            if sig != b"TREE" {
                return Err(format!("expected B-tree node at {pos}"));
            }
            let h = self.bytes(pos, 8 + 2 * self.so)?;
            if h[4] != 0 {
                return Err("group B-tree has a non-group node type".into());
            }
            let entries = le(&h[6..8]) as usize;
            let mut p = pos + 8 + 2 * self.so as u64;
            let step = (self.sl + self.so) as u64;
            let body = self.bytes(p, entries * (self.sl + self.so) + self.sl)?;
            let _ = body;
            for _ in 0..entries {
                let child = le(self.bytes(p + self.sl as u64, self.so)?);
                stack.push((child, depth + 1));
                p += step;
            }
        }
        Ok(out)
    }
}

/// An object waiting to be visited: path, header address, depth, cached symbol table.
type Pending = (String, u64, usize, Option<(u64, u64)>);

/// What a walk found.
struct Walked {
    /// Attributes by object path.
    attrs: Vec<(String, Vec<Attr>)>,
    /// Raw data ranges no metadata read touched (merged), when the walk
    /// was complete; otherwise empty.
    unread: Vec<(u64, u64)>,
}

/// Parses superblock and walks the file. Returns the list of (path, attrs) plus notes.
fn walk<'a>(data: &'a Bytes<'a>, loc: &Location, r: &mut FormatReport) -> R<Walked> {
    let sb = find_superblock(data).ok_or("no HDF5 signature")?;
    let h = data.read(sb, 16).ok_or("truncated superblock")?;
    let ver = h[8];
    let (so, sl, root_addr, stored_base, root_cache) = match ver {
        0 | 1 => {
            let (so, sl) = (h[13] as usize, h[14] as usize);
            check_sizes(so, sl)?;
            let start = sb + if ver == 0 { 24 } else { 28 };
            let need = 4 * so + 2 * so + 24;
            let b = data.read(start, need).ok_or("truncated superblock")?;
            let base = le(&b[..so]);
            let ent = &b[4 * so..];
            let root = le(&ent[so..2 * so]);
            let cache = le(&ent[2 * so..2 * so + 4]);
            let scratch = &ent[2 * so + 8..];
            let cached = if cache == 1 {
                Some((le(&scratch[..so]), le(&scratch[so..2 * so])))
            } else {
                None
            };
            (so, sl, root, base, cached)
        }
        2 | 3 => {
            let (so, sl) = (h[9] as usize, h[10] as usize);
            check_sizes(so, sl)?;
            let b = data.read(sb + 12, 4 * so).ok_or("truncated superblock")?;
            (so, sl, le(&b[3 * so..4 * so]), le(&b[..so]), None)
        }
        v => return Err(format!("unsupported superblock version {v}")),
    };
    r.note(format!("HDF5 superblock v{ver} at offset {sb}"));
    let base = if stored_base == 0 { sb } else { stored_base };
    let undef = if so == 8 {
        UNDEF
    } else {
        (1u64 << (8 * so)) - 1
    };
    let mut f = File {
        d: data,
        base,
        so,
        sl,
        gheap: HashMap::new(),
        budget: WORK_BUDGET,
        string_budget: STRING_BUDGET,
        partial: false,
    };
    let mut out = Vec::new();
    // Raw data extents: (file position, size).
    let mut raw: Vec<(u64, u64)> = Vec::new();
    let mut seen = HashSet::new();
    let mut queue: std::collections::VecDeque<Pending> = std::collections::VecDeque::new();
    queue.push_back(("/".into(), root_addr, 0, root_cache));
    let mut first_err: Option<String> = None;
    while let Some((path, addr, depth, cache)) = queue.pop_front() {
        if seen.len() >= MAX_OBJECTS {
            f.partial = true;
            r.note("HDF5 object limit reached; remaining objects not inspected");
            break;
        }
        if addr == undef || !seen.insert(addr) {
            continue;
        }
        let mut o = match f.object(addr) {
            Ok(o) => o,
            Err(e) => {
                if path == "/" {
                    return Err(format!("root group: {e}"));
                }
                first_err.get_or_insert(format!("object {path}: {e}"));
                continue;
            }
        };
        if o.symtab.is_none() {
            o.symtab = cache;
        }
        let mut children = std::mem::take(&mut o.children);
        if let Some((bt, heap)) = o.symtab {
            match f.symtab_children(bt, heap) {
                Ok(c) => children.extend(c),
                Err(e) => {
                    first_err.get_or_insert(format!("group {path}: {e}"));
                }
            }
        }
        for ext in &o.externals {
            r.push(H5_EXTERNAL_LINK.finding(
                loc.clone(),
                format!("group {} has external link {ext}", clip(&path, 120)),
            ));
        }
        for (heap, offs) in &o.ext_storage_heap {
            let names: Vec<String> = match f.local_heap_data(*heap) {
                Ok(seg) => offs
                    .iter()
                    .filter_map(|&x| f.heap_string(seg, x).ok())
                    .collect(),
                Err(_) => Vec::new(),
            };
            r.push(H5_EXTERNAL_STORAGE.finding(
                loc.clone(),
                format!(
                    "dataset {} reads raw data from external file(s): {}",
                    clip(&path, 120),
                    clip(&names.join(", "), 300)
                ),
            ));
        }
        let mut heap_notes = Vec::new();
        if let Some(h) = o.dense_links {
            if let Err(e) = f.dense_links(h, &mut o, &mut heap_notes) {
                r.set_malformed(format!(
                    "group {}: dense link storage: {e}",
                    clip(&path, 120)
                ));
            }
            children.append(&mut o.children);
        }
        if let Some(h) = o.dense_attrs {
            match f.dense_attributes(h, &mut heap_notes) {
                Ok(list) => o.attrs.extend(list),
                Err(e) => r.set_malformed(format!(
                    "object {}: dense attribute storage: {e}",
                    clip(&path, 120)
                )),
            }
        }
        for n in heap_notes {
            r.note(n);
        }
        for &(a, size) in &o.contiguous {
            if a != undef {
                if let Ok(at) = f.abs(a) {
                    raw.push((at, size));
                }
            }
        }
        if let Some((bt, dims)) = o.chunk_btree.filter(|b| b.0 != undef) {
            // An index this reader cannot walk leaves its chunks searched.
            let mut chunks = Vec::new();
            if f.chunk_extents(bt, dims, &mut chunks).is_ok() {
                raw.append(&mut chunks);
            }
        }
        if depth >= 32 && !children.is_empty() {
            f.partial = true;
        }
        if depth < 32 {
            for (name, a) in children {
                let child = if path == "/" {
                    format!("/{name}")
                } else {
                    format!("{path}/{name}")
                };
                queue.push_back((child, a, depth + 1, None));
            }
        }
        if !o.attrs.is_empty() {
            out.push((path, o.attrs));
        }
    }
    if let Some(e) = first_err {
        r.set_malformed(e);
    }
    r.note(format!("HDF5: {} objects visited", seen.len()));
    // Raw data is left out of the byte search only after a complete walk,
    // and never where a metadata read went (a dataset pointed at a heap).
    let complete = !f.partial && r.malformed.is_none() && !data.touched_overflow.get();
    let unread = if complete {
        let size = data.size;
        let raw = merge_ranges(
            raw.into_iter()
                .map(|(s, n)| (s, s.saturating_add(n).min(size)))
                .collect(),
        );
        let touched = merge_ranges(data.touched.borrow().clone());
        subtract(&raw, &touched)
    } else {
        Vec::new()
    };
    Ok(Walked { attrs: out, unread })
}

fn check_sizes(so: usize, sl: usize) -> R<()> {
    if [2, 4, 8].contains(&so) && [2, 4, 8].contains(&sl) {
        Ok(())
    } else {
        Err(format!("unsupported offset/length sizes {so}/{sl}"))
    }
}

/// Scans an HDF5 file (legacy Keras `.h5` or Keras 3 `model.weights.h5`).
pub fn scan_h5(data: &[u8], loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    let bytes = Bytes::whole(data);
    let Walked { attrs, unread } = match walk(&bytes, loc, &mut r) {
        Ok(a) => a,
        Err(e) => {
            r.set_malformed(format!("HDF5: {e}"));
            return r;
        }
    };
    let structured_lambda =
        |r: &FormatReport| r.findings.iter().any(|f| f.rule_id == KERAS_LAMBDA.id);
    let before = structured_lambda(&r);
    for (path, list) in &attrs {
        for a in list {
            let joined = || a.strings.concat();
            match a.name.as_str() {
                "model_config" | "training_config" => {
                    let text = joined();
                    let what = format!("{}{}", if path == "/" { "" } else { path }, a.name);
                    if let Err(e) =
                        keras::analyze_bytes(text.as_bytes(), loc, Origin::H5, &what, &mut r)
                    {
                        r.push(
                            H5_BAD_CONFIG
                                .finding(loc.clone(), format!("{what}: {e}"))
                                .confidence(Confidence::Medium),
                        );
                    }
                }
                "keras_version" | "backend" if path == "/" => {
                    r.note(format!("{} = {}", a.name, clip(&joined(), 40)))
                }
                _ => {}
            }
        }
    }
    if !before && !structured_lambda(&r) {
        raw_lambda_search(data, &unread, loc, &mut r);
    }
    r
}

/// Safety net for parts of the file the structured reader does not decode
/// (dense attribute storage in fractal heaps, huge objects, corrupted
/// headers): Keras JSON is stored uncompressed, so a byte search for a
/// serialized Lambda layer still finds it. Dataset raw data that no
/// metadata read touched (`unread`, only after a complete walk) is not
/// searched: a loader never reads a layer config from weights, and the
/// search then reads exactly what a remote metadata fetch holds.
fn raw_lambda_search(data: &[u8], unread: &[(u64, u64)], loc: &Location, r: &mut FormatReport) {
    let mut segments = Vec::with_capacity(unread.len() + 1);
    let mut at = 0u64;
    for &(s, e) in unread
        .iter()
        .chain(std::iter::once(&(data.len() as u64, data.len() as u64)))
    {
        if let (Ok(a), Ok(b)) = (usize::try_from(at), usize::try_from(s)) {
            if let Some(seg) = data.get(a..b) {
                segments.push((at, seg));
            }
        }
        at = at.max(e);
    }
    keras::lexical_lambda_search_in(
        &segments,
        loc,
        "outside the attributes the HDF5 reader decoded (dense/huge attribute storage or a damaged header)",
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_and_garbage() {
        assert!(!looks_like_h5(b"not hdf5"));
        let mut d = vec![0u8; 600];
        d[512..520].copy_from_slice(SIG);
        assert!(looks_like_h5(&d));
        let r = scan_h5(&d, &Location::path("x.h5"));
        assert!(r.malformed.is_some());
        let r = scan_h5(SIG, &Location::path("x.h5"));
        assert!(r.malformed.is_some());
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(p).unwrap()
    }

    const FIXTURES: &[&str] = &[
        "h5_dense_links.h5",
        "h5_external.h5",
        "keras2_benign.h5",
        "keras2_lambda.h5",
        "keras2_lambda_dense_attrs.h5",
        "keras2_lambda_latest.h5",
        "keras2_lambda_userblock.h5",
    ];

    /// What a reader following [`plan_metadata`] holds in the end, as
    /// the image it would scan (zeros where it read nothing), with the
    /// bytes it held and the number of walks. Fetches exactly the missing
    /// ranges (no rounding), starting from the first `head` bytes.
    fn fetched_image(d: &[u8], head: u64) -> (Vec<u8>, u64, usize) {
        let size = d.len() as u64;
        let mut held = vec![(0, head.min(size))];
        let mut walks = 0;
        loop {
            walks += 1;
            assert!(walks < 1000, "the walk never settles");
            let pieces = held
                .iter()
                .map(|&(s, e)| (s, &d[s as usize..e as usize]))
                .collect();
            let plan = plan_metadata(&Bytes::pieces(size, pieces));
            if plan.missing.is_empty() {
                let all = [(0, size)];
                held.extend(subtract(&all, &plan.unread));
                held = merge_ranges(held);
                break;
            }
            // Every missing range is one no piece held: progress.
            for m in &plan.missing {
                assert!(m.1 <= size);
                assert!(!held.iter().any(|h| h.0 <= m.0 && m.1 <= h.1), "{m:?}");
            }
            held.extend(plan.missing);
            held = merge_ranges(held);
        }
        let mut img = vec![0u8; d.len()];
        for &(s, e) in &held {
            img[s as usize..e as usize].copy_from_slice(&d[s as usize..e as usize]);
        }
        let n = held.iter().map(|h| h.1 - h.0).sum();
        (img, n, walks)
    }

    fn assert_scans_alike(d: &[u8], what: &str) {
        let loc = Location::path("x.h5");
        let want = scan_h5(d, &loc);
        for head in [0, 64, 16 << 10] {
            let (img, _, _) = fetched_image(d, head);
            assert_eq!(scan_h5(&img, &loc), want, "{what}, first read {head}");
        }
    }

    /// `d` with its contiguous datasets' raw data moved to `extra`
    /// appended bytes each (v1 headers: the Data Layout message v3 class 1
    /// found by its bytes), and the end-of-file address updated.
    fn grow(d: &[u8], extra: &[&[u8]]) -> Vec<u8> {
        let mut out = d.to_vec();
        let mut layouts = Vec::new();
        for i in 0..d.len().saturating_sub(26) {
            if d[i..i + 2] == [8, 0] && d[i + 8] == 3 && d[i + 9] == 1 {
                let addr = le(&d[i + 10..i + 18]);
                let size = le(&d[i + 18..i + 26]);
                if size > 0 && addr + size <= d.len() as u64 {
                    layouts.push(i);
                }
            }
        }
        assert!(layouts.len() >= extra.len(), "{layouts:?}");
        for (&i, bytes) in layouts.iter().zip(extra) {
            let at = out.len() as u64;
            out[i + 10..i + 18].copy_from_slice(&at.to_le_bytes());
            out[i + 18..i + 26].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        if out[8] == 0 {
            let eof = out.len() as u64;
            out[40..48].copy_from_slice(&eof.to_le_bytes());
        }
        out
    }

    #[test]
    fn a_metadata_fetch_scans_like_the_whole_file() {
        for name in FIXTURES {
            let d = fixture(name);
            assert_scans_alike(&d, name);
            let (_, n, walks) = fetched_image(&d, 0);
            assert!(walks > 1, "{name}");
            assert!(n <= d.len() as u64, "{name}");
        }
    }

    #[test]
    fn hostile_files_scan_alike_from_a_metadata_fetch() {
        // Truncations, and bytes overwritten with values that make offsets
        // and lengths point past the end, at zero, or at huge sizes.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for name in FIXTURES {
            let d = fixture(name);
            for cut in (0..d.len()).step_by(d.len() / 40) {
                assert_scans_alike(&d[..cut], &format!("{name} cut at {cut}"));
            }
            for _ in 0..60 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut m = d.clone();
                let at = (x as usize) % m.len();
                let v = [0x00, 0xff, 0x7f, 0x80, (x >> 32) as u8][(x >> 8) as usize % 5];
                for b in m.iter_mut().skip(at).take(1 + (x >> 40) as usize % 8) {
                    *b = v;
                }
                assert_scans_alike(&m, &format!("{name} with bytes at {at} set to {v}"));
            }
        }
    }

    #[test]
    fn dataset_raw_data_is_neither_fetched_nor_searched() {
        let lambda = br#"{"class_name": "Lambda", "config": {}}"#;
        let mut weights = vec![0x3fu8; 4 << 20];
        weights[1 << 20..(1 << 20) + lambda.len()].copy_from_slice(lambda);
        let d = grow(&fixture("keras2_benign.h5"), &[&weights, &[1u8; 64 << 10]]);
        let loc = Location::path("x.h5");
        // Lambda text inside a dataset's raw data: not a layer config.
        let r = scan_h5(&d, &loc);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        let (img, n, walks) = fetched_image(&d, 0);
        assert_eq!(scan_h5(&img, &loc), r);
        // The original 11 456-byte file at most: its old raw data too.
        assert!(n <= 11_456, "held {n} of {}", d.len());
        // One walk per step down the metadata when nothing is read ahead
        // (a remote plan reads 16 KiB first and 4 KiB blocks).
        assert!(walks < 100, "{walks} walks");
        // The same text in bytes no dataset claims is searched (and held).
        let mut e = d.clone();
        e.extend_from_slice(lambda);
        let r = scan_h5(&e, &loc);
        assert!(
            r.findings.iter().any(|f| f.rule_id == KERAS_LAMBDA.id),
            "{:?}",
            r.findings
        );
        assert_scans_alike(&e, "Lambda text after the raw data");
        // A dataset whose raw data claims the file's metadata: the bytes
        // the walk read stay searched.
        let mut m = fixture("keras2_lambda.h5");
        let loc_layout = (0..m.len() - 26)
            .find(|&i| m[i..i + 2] == [8, 0] && m[i + 8] == 3 && m[i + 9] == 1)
            .unwrap();
        let len = m.len() as u64;
        m[loc_layout + 10..loc_layout + 18].copy_from_slice(&0u64.to_le_bytes());
        m[loc_layout + 18..loc_layout + 26].copy_from_slice(&len.to_le_bytes());
        let b = Bytes::whole(&m);
        let w = walk(&b, &loc, &mut FormatReport::default()).unwrap();
        let touched = merge_ranges(b.touched.borrow().clone());
        assert!(!w.unread.is_empty() && !touched.is_empty());
        for t in &touched {
            assert!(w.unread.iter().all(|u| u.1 <= t.0 || u.0 >= t.1));
        }
        assert_scans_alike(&m, "a dataset over the metadata");
    }

    #[test]
    fn contiguous_and_chunked_raw_data_are_skipped() {
        // 24 layers (48 contiguous datasets of 256 and 32 bytes) and two
        // gzip-chunked datasets of 4 chunks each (v1 chunk B-trees),
        // written by h5py (scripts/fixtures/gen_h5_layers_fixture.py).
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../aisec-remote/tests/fixtures/keras2_layers.h5");
        let d = std::fs::read(p).unwrap();
        let b = Bytes::whole(&d);
        let w = walk(&b, &Location::path("x"), &mut FormatReport::default()).unwrap();
        // HDF5 packs small raw data into 2 KiB "small data" blocks, so
        // neighbouring datasets' ranges merge: count bytes, not ranges.
        // 24 x (256 + 32) contiguous, 8 random-float chunks of 1 KiB that
        // gzip cannot shrink below half.
        let total: u64 = w.unread.iter().map(|r| r.1 - r.0).sum();
        assert!(total >= 24 * 288 + 8 * 512, "{total}: {:?}", w.unread);
        assert!(total < d.len() as u64 / 4, "{total}");
        assert_scans_alike(&d, "keras2_layers.h5");
    }

    #[test]
    fn an_incomplete_walk_skips_nothing() {
        // keras2_lambda_dense_attrs.h5 keeps its attributes in a fractal
        // heap; a walk that stops at a damaged object searches everything.
        let d = grow(&fixture("keras2_benign.h5"), &[&[5u8; 1 << 20]]);
        let b = Bytes::whole(&d);
        let mut r = FormatReport::default();
        assert!(!walk(&b, &Location::path("x"), &mut r)
            .unwrap()
            .unread
            .is_empty());
        // Break the first B-tree node a group points to: malformed.
        let at = (0..d.len() - 4).find(|&i| &d[i..i + 4] == b"TREE").unwrap();
        let mut m = d.clone();
        m[at..at + 4].copy_from_slice(b"XXXX");
        let b = Bytes::whole(&m);
        let mut r = FormatReport::default();
        let w = walk(&b, &Location::path("x"), &mut r).unwrap();
        assert!(r.malformed.is_some());
        assert!(w.unread.is_empty());
        // A message stored elsewhere (shared): the walk is not complete.
        let at = (0..d.len() - 26)
            .find(|&i| d[i..i + 2] == [8, 0] && d[i + 8] == 3 && d[i + 9] == 1)
            .unwrap();
        let mut m = d.clone();
        m[at + 4] |= 0x02;
        let b = Bytes::whole(&m);
        let mut r = FormatReport::default();
        let w = walk(&b, &Location::path("x"), &mut r).unwrap();
        assert!(r.malformed.is_none());
        assert!(w.unread.is_empty());
        assert_scans_alike(&m, "a shared message");
    }

    #[test]
    fn bytes_answer_only_from_one_piece_and_record_misses() {
        let d: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let b = Bytes::pieces(
            1000,
            vec![(500, &d[500..600]), (0, &d[..100]), (50, &d[50..60])],
        );
        assert_eq!(b.read(10, 5), Some(&d[10..15]));
        assert_eq!(b.read(550, 50), Some(&d[550..600]));
        assert_eq!(b.read(90, 20), None); // spans a hole
        assert_eq!(b.read(995, 10), None); // past the end: not a miss
                                           // Empty reads are never missing (found by the h5_plan fuzz target:
                                           // an empty read in a hole was recorded as the range (800, 800),
                                           // which merged away, and the plan stopped on a failed walk).
        assert_eq!(b.read(800, 0), Some(&[][..]));
        assert_eq!(b.read(1000, 0), Some(&[][..]));
        assert_eq!(b.read(1001, 0), None);
        assert_eq!(b.read(u64::MAX - 1, 4), None);
        assert_eq!(*b.missed.borrow(), vec![(90, 110)]);
        assert_eq!(
            merge_ranges(b.touched.borrow().clone()),
            vec![(10, 15), (550, 600)]
        );
        assert_eq!(
            subtract(&[(0, 100), (200, 300)], &[(50, 60), (90, 250)]),
            vec![(0, 50), (60, 90), (250, 300)]
        );
    }
}
