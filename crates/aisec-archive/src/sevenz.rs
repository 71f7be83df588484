//! A bounded 7z reader over `&[u8]`: the header structures parsed here,
//! the codecs from well-kept crates.
//!
//! Model files reach users inside 7z archives: the "nullifAI" models found
//! on Hugging Face in February 2025 (ReversingLabs) were PyTorch checkpoint
//! folders packed with 7z instead of zip, which `torch.load` and the
//! scanners of the day did not open, with the pickle broken right after
//! its payload. This module lists a 7z archive's files and decodes its
//! folders so that the scanner sees the pickles inside.
//!
//! Format reference: Igor Pavlov's `7zFormat.txt` (in the 7-Zip / LZMA SDK
//! distributions): the 32-byte signature header, then a header of
//! property records (`kHeader` or an LZMA-packed `kEncodedHeader`) with
//! `PackInfo`, `UnPackInfo` (folders of coders), `SubStreamsInfo` and
//! `FilesInfo`. Numbers use 7z's variable-length encoding (leading one bits
//! of the first byte count the extra bytes).
//!
//! The header is parsed by this module rather than a 7z crate because the
//! crates allocate what the header declares (file, folder and coder counts)
//! before checking it against the bytes present. Here every declared count
//! is checked against the bytes left in the header (each item occupies at
//! least one byte) and against [`Limits::max_entries`] before anything is
//! stored, a packed header may inflate to at most [`MAX_HEADER_BYTES`], and
//! dictionaries are capped by [`crate::compress::MAX_DICT_MEMORY_KIB`].
//!
//! Codecs: copy, LZMA and LZMA2 (`lzma-rust2`), deflate (`flate2`), bzip2
//! (`bzip2-rs`), Zstandard (`ruzstd`, 7-Zip-zstd's method id) and the delta
//! filter (here), and the branch converters (BCJ x86, ARM... from
//! `lzma-rust2`; py7zr's default chain is BCJ x86 + LZMA2). Linear chains
//! of one-input coders are decoded in order; BCJ2 (four inputs), PPMd and
//! encryption (7zAES) are reported, not decoded.

use aisec_core::{Finding, Location};

use crate::compress::{drain, Decompressed, MAX_DICT_MEMORY_KIB};
use crate::rules::*;
use crate::{is_traversal_name, ArchiveError, Limits};

/// The six signature bytes every 7z archive starts with.
pub const SIGNATURE: &[u8; 6] = b"7z\xbc\xaf\x27\x1c";

/// Most bytes a packed (`kEncodedHeader`) header may inflate to.
pub const MAX_HEADER_BYTES: u64 = 32 * 1024 * 1024;

/// Most coders in one folder (7-Zip itself writes at most four).
const MAX_CODERS: u64 = 32;

/// How many packed headers may wrap one another.
const MAX_HEADER_NESTING: u32 = 4;

// Property ids of 7zFormat.txt.
const K_END: u8 = 0x00;
const K_HEADER: u8 = 0x01;
const K_ARCHIVE_PROPERTIES: u8 = 0x02;
const K_ADDITIONAL_STREAMS_INFO: u8 = 0x03;
const K_MAIN_STREAMS_INFO: u8 = 0x04;
const K_FILES_INFO: u8 = 0x05;
const K_PACK_INFO: u8 = 0x06;
const K_UNPACK_INFO: u8 = 0x07;
const K_SUBSTREAMS_INFO: u8 = 0x08;
const K_SIZE: u8 = 0x09;
const K_CRC: u8 = 0x0A;
const K_FOLDER: u8 = 0x0B;
const K_CODERS_UNPACK_SIZE: u8 = 0x0C;
const K_NUM_UNPACK_STREAM: u8 = 0x0D;
const K_EMPTY_STREAM: u8 = 0x0E;
const K_EMPTY_FILE: u8 = 0x0F;
const K_ANTI: u8 = 0x10;
const K_NAME: u8 = 0x11;
const K_WIN_ATTRIBUTES: u8 = 0x15;
const K_ENCODED_HEADER: u8 = 0x17;
const K_DUMMY: u8 = 0x19;

/// True when `data` starts with the 7z signature.
pub fn looks_like_7z(data: &[u8]) -> bool {
    data.len() >= 32 && data.starts_with(SIGNATURE)
}

/// A codec of a 7z folder, by its method id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `00`: stored.
    Copy,
    /// `03 01 01`: LZMA, with its properties byte and dictionary size.
    Lzma {
        /// lc/lp/pb byte.
        props: u8,
        /// Dictionary size in bytes.
        dict: u32,
    },
    /// `21`: LZMA2 with its dictionary size.
    Lzma2 {
        /// Dictionary size in bytes.
        dict: u32,
    },
    /// `04 01 08`: raw deflate.
    Deflate,
    /// `04 02 02`: bzip2.
    Bzip2,
    /// `04 F7 11 01`: Zstandard (7-Zip-zstd, py7zr).
    Zstd,
    /// `03`: delta filter with its distance.
    Delta {
        /// Byte distance (1..=256).
        distance: usize,
    },
    /// Branch converters (`03 03 01 03` x86 BCJ, `03 03 05 01` ARM...):
    /// py7zr's default chain is BCJ x86 + LZMA2.
    Bcj(BcjKind),
    /// `06 F1 07 01`: 7zAES encryption.
    Aes,
    /// Anything else (BCJ filters, PPMd...), with its id in hex.
    Other(String),
}

impl Method {
    fn from_id(id: &[u8], props: &[u8]) -> Method {
        match id {
            [0x00] => Method::Copy,
            [0x03, 0x01, 0x01] if props.len() >= 5 => Method::Lzma {
                props: props[0],
                dict: u32::from_le_bytes([props[1], props[2], props[3], props[4]]),
            },
            [0x21] if !props.is_empty() => Method::Lzma2 {
                dict: lzma2_dict(props[0]),
            },
            [0x04, 0x01, 0x08] => Method::Deflate,
            [0x04, 0x02, 0x02] => Method::Bzip2,
            [0x04, 0xF7, 0x11, 0x01] => Method::Zstd,
            [0x03] => Method::Delta {
                distance: props.first().map_or(1, |&b| b as usize + 1),
            },
            [0x03, 0x03, 0x01, 0x03] => Method::Bcj(BcjKind::X86),
            [0x03, 0x03, 0x02, 0x05] => Method::Bcj(BcjKind::Ppc),
            [0x03, 0x03, 0x04, 0x01] => Method::Bcj(BcjKind::Ia64),
            [0x03, 0x03, 0x05, 0x01] => Method::Bcj(BcjKind::Arm),
            [0x03, 0x03, 0x07, 0x01] => Method::Bcj(BcjKind::ArmThumb),
            [0x03, 0x03, 0x08, 0x05] => Method::Bcj(BcjKind::Sparc),
            [0x0A] => Method::Bcj(BcjKind::Arm64),
            [0x0B] => Method::Bcj(BcjKind::RiscV),
            [0x06, 0xF1, 0x07, 0x01] => Method::Aes,
            _ => Method::Other(id.iter().map(|b| format!("{b:02X}")).collect()),
        }
    }

    /// Short human name.
    pub fn name(&self) -> String {
        match self {
            Method::Copy => "copy".into(),
            Method::Lzma { .. } => "LZMA".into(),
            Method::Lzma2 { .. } => "LZMA2".into(),
            Method::Deflate => "deflate".into(),
            Method::Bzip2 => "bzip2".into(),
            Method::Zstd => "zstd".into(),
            Method::Delta { .. } => "delta".into(),
            Method::Bcj(k) => format!("BCJ {k:?}"),
            Method::Aes => "7zAES".into(),
            Method::Other(id) => format!("method {id}"),
        }
    }
}

/// The branch-converter filters 7z declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BcjKind {
    /// x86 (BCJ).
    X86,
    /// PowerPC.
    Ppc,
    /// IA-64.
    Ia64,
    /// ARM.
    Arm,
    /// ARM Thumb.
    ArmThumb,
    /// SPARC.
    Sparc,
    /// ARM64.
    Arm64,
    /// RISC-V.
    RiscV,
}

/// LZMA2's one-byte dictionary size (40 means 4 GiB - 1).
fn lzma2_dict(b: u8) -> u32 {
    if b >= 40 {
        return u32::MAX;
    }
    (2 | (b as u32 & 1)) << (b / 2 + 11)
}

#[derive(Debug, Clone)]
struct Coder {
    method: Method,
    num_in: u64,
    num_out: u64,
}

/// One folder: a chain of coders over one or more packed streams.
#[derive(Debug, Clone)]
pub struct SevenZFolder {
    coders: Vec<Coder>,
    /// (in_index, out_index) pairs.
    bind_pairs: Vec<(u64, u64)>,
    /// Coder input indices fed by packed streams.
    packed_inputs: Vec<u64>,
    /// Size of every coder output, in coder order.
    unpack_sizes: Vec<u64>,
    /// (offset in file, length) of this folder's packed streams.
    packed: Vec<(u64, u64)>,
    /// CRC of the folder's output, when recorded.
    crc: Option<u32>,
}

impl SevenZFolder {
    /// Index of the coder output no bind pair consumes: the folder's output.
    fn main_out(&self) -> Option<usize> {
        let total_out: u64 = self.coders.iter().map(|c| c.num_out).sum();
        (0..total_out)
            .find(|o| !self.bind_pairs.iter().any(|&(_, out)| out == *o))
            .map(|o| o as usize)
    }

    /// Declared size of the folder's output.
    pub fn unpack_size(&self) -> u64 {
        self.main_out()
            .and_then(|o| self.unpack_sizes.get(o).copied())
            .unwrap_or(0)
    }

    /// Total packed bytes of the folder.
    pub fn packed_size(&self) -> u64 {
        self.packed
            .iter()
            .map(|p| p.1)
            .fold(0u64, u64::saturating_add)
    }

    /// The coders' names, in decoding order where known.
    pub fn methods(&self) -> Vec<String> {
        self.coders.iter().map(|c| c.method.name()).collect()
    }

    /// True when a coder is 7zAES.
    pub fn encrypted(&self) -> bool {
        self.coders.iter().any(|c| c.method == Method::Aes)
    }

    /// The coders from the packed stream to the output, when the folder is a
    /// linear chain of one-input, one-output coders; else why not.
    fn chain(&self) -> Result<Vec<usize>, String> {
        if self.coders.iter().any(|c| c.num_in != 1 || c.num_out != 1) {
            return Err(format!(
                "multi-stream coder ({})",
                self.methods().join(" + ")
            ));
        }
        if self.packed.len() != 1 {
            return Err(format!("{} packed streams", self.packed.len()));
        }
        // With one-in one-out coders, coder i has input i and output i.
        let mut order = Vec::new();
        let mut cur = self.main_out().ok_or("no unbound output")?;
        for _ in 0..self.coders.len() {
            order.push(cur);
            match self.bind_pairs.iter().find(|&&(inp, _)| inp == cur as u64) {
                Some(&(_, out)) => cur = out as usize,
                None => {
                    if self.packed_inputs.first() != Some(&(cur as u64)) {
                        return Err("coder input is neither bound nor packed".into());
                    }
                    order.reverse();
                    return Ok(order);
                }
            }
        }
        Err("coder chain has a cycle".into())
    }
}

/// What a 7z entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SevenZKind {
    /// A file with data in a folder.
    File,
    /// A file of zero bytes (no stream).
    EmptyFile,
    /// A directory.
    Directory,
    /// An "anti" item (deletes a file on update).
    Anti,
    /// A symbolic link (Unix mode in the attributes); its data is the target.
    Symlink,
}

/// One file of a 7z archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevenZEntry {
    /// Path inside the archive.
    pub name: String,
    /// What the entry is.
    pub kind: SevenZKind,
    /// Uncompressed size.
    pub size: u64,
    /// Folder holding the data (`None` for entries without data).
    pub folder: Option<usize>,
    /// Offset of the data within the folder's output.
    pub offset: u64,
    /// CRC-32 of the data, when recorded.
    pub crc: Option<u32>,
}

type Note = crate::MemberNote;

/// A parsed 7z archive borrowing the file's bytes.
#[derive(Debug, Clone)]
pub struct SevenZArchive<'a> {
    data: &'a [u8],
    folders: Vec<SevenZFolder>,
    entries: Vec<SevenZEntry>,
    notes: Vec<Note>,
}

/// A byte cursor over header bytes, every read bounds-checked.
struct Cur<'b> {
    b: &'b [u8],
    pos: usize,
}

fn malformed(reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Malformed {
        kind: "7z",
        reason: reason.into(),
    }
}

impl<'b> Cur<'b> {
    fn new(b: &'b [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    fn left(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }

    fn byte(&mut self) -> Result<u8, ArchiveError> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| malformed(format!("header ends at byte {}", self.pos)))?;
        self.pos += 1;
        Ok(v)
    }

    fn bytes(&mut self, n: u64) -> Result<&'b [u8], ArchiveError> {
        if n > self.left() {
            return Err(malformed(format!(
                "a {n}-byte field at header byte {} runs past the header",
                self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, ArchiveError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// 7z's variable-length number.
    fn number(&mut self) -> Result<u64, ArchiveError> {
        let first = self.byte()?;
        let extra = first.leading_ones() as usize;
        let mut v: u64 = 0;
        for i in 0..extra.min(8) {
            v |= (self.byte()? as u64) << (8 * i);
        }
        if extra < 8 {
            let high = (first as u64) & ((1u64 << (7 - extra)) - 1);
            v |= high << (8 * extra);
        }
        Ok(v)
    }

    /// A count of items that each occupy at least `min_bytes` of the rest of
    /// the header, and at most `max`.
    fn count(&mut self, what: &str, min_bytes: u64, max: u64) -> Result<u64, ArchiveError> {
        let n = self.number()?;
        let fits = n.saturating_mul(min_bytes) <= self.left();
        if !fits || n > max {
            return Err(malformed(format!(
                "{what} count {n} exceeds what the header can hold ({} bytes left, limit {max})",
                self.left()
            )));
        }
        Ok(n)
    }

    /// `n` bits, most significant first.
    fn bits(&mut self, n: u64) -> Result<Vec<bool>, ArchiveError> {
        let bytes = self.bytes(n.div_ceil(8))?;
        Ok((0..n as usize)
            .map(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect())
    }

    /// `AllAreDefined` byte, then a bit vector when not all are.
    fn defined(&mut self, n: u64) -> Result<Vec<bool>, ArchiveError> {
        if self.byte()? != 0 {
            Ok(vec![true; n as usize])
        } else {
            self.bits(n)
        }
    }

    /// Digests of `n` streams: defined bits and a CRC per defined stream.
    fn digests(&mut self, n: u64) -> Result<Vec<Option<u32>>, ArchiveError> {
        let def = self.defined(n)?;
        def.into_iter()
            .map(|d| if d { self.u32().map(Some) } else { Ok(None) })
            .collect()
    }

    fn expect(&mut self, id: u8, what: &str) -> Result<(), ArchiveError> {
        let got = self.byte()?;
        if got != id {
            return Err(malformed(format!(
                "expected {what} (id {id:#04x}) at header byte {}, found {got:#04x}",
                self.pos - 1
            )));
        }
        Ok(())
    }
}

/// Streams info: pack streams, folders and per-file substreams.
#[derive(Debug, Default)]
struct StreamsInfo {
    pack_pos: u64,
    pack_sizes: Vec<u64>,
    folders: Vec<SevenZFolder>,
    /// Per folder: how many files it holds.
    num_unpack: Vec<u64>,
    /// Per substream, in order: size and CRC.
    sub_sizes: Vec<u64>,
    sub_crcs: Vec<Option<u32>>,
}

fn read_folder(c: &mut Cur<'_>) -> Result<SevenZFolder, ArchiveError> {
    let n = c.count("coder", 1, MAX_CODERS)?;
    let mut coders = Vec::new();
    for _ in 0..n {
        let flags = c.byte()?;
        if flags & 0x80 != 0 {
            return Err(malformed("alternative coder methods are not used by 7z"));
        }
        let id = c.bytes((flags & 0x0f) as u64)?;
        let (num_in, num_out) = if flags & 0x10 != 0 {
            (
                c.count("coder input", 0, MAX_CODERS)?,
                c.count("coder output", 0, MAX_CODERS)?,
            )
        } else {
            (1, 1)
        };
        let props = if flags & 0x20 != 0 {
            let len = c.number()?;
            c.bytes(len)?
        } else {
            &[]
        };
        coders.push(Coder {
            method: Method::from_id(id, props),
            num_in,
            num_out,
        });
    }
    let total_out: u64 = coders.iter().map(|c| c.num_out).sum();
    let total_in: u64 = coders.iter().map(|c| c.num_in).sum();
    if total_out == 0 || total_out > MAX_CODERS * 2 || total_in > MAX_CODERS * 2 {
        return Err(malformed(format!(
            "folder declares {total_in} coder inputs and {total_out} outputs"
        )));
    }
    let mut bind_pairs = Vec::new();
    for _ in 0..total_out - 1 {
        let (i, o) = (c.number()?, c.number()?);
        if i >= total_in || o >= total_out {
            return Err(malformed(format!("bind pair ({i}, {o}) out of range")));
        }
        bind_pairs.push((i, o));
    }
    let num_packed = total_in
        .checked_sub(total_out - 1)
        .filter(|&n| n >= 1)
        .ok_or_else(|| malformed("folder has no packed stream"))?;
    let packed_inputs = if num_packed == 1 {
        (0..total_in)
            .filter(|i| !bind_pairs.iter().any(|&(inp, _)| inp == *i))
            .take(1)
            .collect()
    } else {
        let mut v = Vec::new();
        for _ in 0..num_packed {
            v.push(c.number()?);
        }
        v
    };
    Ok(SevenZFolder {
        coders,
        bind_pairs,
        packed_inputs,
        unpack_sizes: Vec::new(),
        packed: Vec::new(),
        crc: None,
    })
}

fn read_streams_info(c: &mut Cur<'_>, limits: &Limits) -> Result<StreamsInfo, ArchiveError> {
    let max = limits.max_entries as u64;
    let mut si = StreamsInfo::default();
    let mut id = c.byte()?;
    if id == K_PACK_INFO {
        si.pack_pos = c.number()?;
        let n = c.count("pack stream", 1, max)?;
        loop {
            match c.byte()? {
                K_END => break,
                K_SIZE => {
                    si.pack_sizes.clear();
                    for _ in 0..n {
                        si.pack_sizes.push(c.number()?);
                    }
                }
                K_CRC => {
                    c.digests(n)?;
                }
                other => return Err(malformed(format!("unexpected id {other:#04x} in PackInfo"))),
            }
        }
        if si.pack_sizes.len() as u64 != n {
            return Err(malformed("PackInfo without sizes"));
        }
        id = c.byte()?;
    }
    if id == K_UNPACK_INFO {
        c.expect(K_FOLDER, "kFolder")?;
        let n = c.count("folder", 2, max)?;
        if c.byte()? != 0 {
            return Err(malformed("external folder records are not supported"));
        }
        for _ in 0..n {
            si.folders.push(read_folder(c)?);
        }
        c.expect(K_CODERS_UNPACK_SIZE, "kCodersUnPackSize")?;
        for f in si.folders.iter_mut() {
            let outs: u64 = f.coders.iter().map(|c| c.num_out).sum();
            for _ in 0..outs {
                f.unpack_sizes.push(c.number()?);
            }
        }
        loop {
            match c.byte()? {
                K_END => break,
                K_CRC => {
                    let d = c.digests(n)?;
                    for (f, crc) in si.folders.iter_mut().zip(d) {
                        f.crc = crc;
                    }
                }
                other => {
                    return Err(malformed(format!(
                        "unexpected id {other:#04x} in UnPackInfo"
                    )))
                }
            }
        }
        id = c.byte()?;
    }
    si.num_unpack = vec![1; si.folders.len()];
    if id == K_SUBSTREAMS_INFO {
        let mut t = c.byte()?;
        if t == K_NUM_UNPACK_STREAM {
            for k in 0..si.folders.len() {
                si.num_unpack[k] = c.number()?;
            }
            t = c.byte()?;
        }
        let total: u64 = si.num_unpack.iter().fold(0u64, |a, &b| a.saturating_add(b));
        if total > max {
            return Err(malformed(format!(
                "{total} substreams exceed the entry limit of {max}"
            )));
        }
        // Sizes: n-1 per folder, the last one is what remains.
        let mut sizes = Vec::new();
        let with_sizes = t == K_SIZE;
        for (k, f) in si.folders.iter().enumerate() {
            let n = si.num_unpack[k];
            if n == 0 {
                continue;
            }
            let mut sum: u64 = 0;
            for _ in 1..n {
                let s = if with_sizes { c.number()? } else { 0 };
                sum = sum.saturating_add(s);
                sizes.push(s);
            }
            let unpack = f.unpack_size();
            if sum > unpack {
                return Err(malformed(format!(
                    "substream sizes ({sum}) exceed their folder's size ({unpack})"
                )));
            }
            sizes.push(unpack - sum);
        }
        if with_sizes {
            t = c.byte()?;
        }
        si.sub_sizes = sizes;
        si.sub_crcs = vec![None; si.sub_sizes.len()];
        loop {
            match t {
                K_END => break,
                K_CRC => {
                    // Digests for the streams whose CRC is not the folder's.
                    let unknown: Vec<usize> = {
                        let mut v = Vec::new();
                        let mut i = 0usize;
                        for (k, f) in si.folders.iter().enumerate() {
                            let n = si.num_unpack[k] as usize;
                            if n == 1 && f.crc.is_some() {
                                si.sub_crcs[i] = f.crc;
                            } else {
                                v.extend(i..i + n);
                            }
                            i += n;
                        }
                        v
                    };
                    let d = c.digests(unknown.len() as u64)?;
                    for (i, crc) in unknown.into_iter().zip(d) {
                        si.sub_crcs[i] = crc;
                    }
                }
                other => {
                    return Err(malformed(format!(
                        "unexpected id {other:#04x} in SubStreamsInfo"
                    )))
                }
            }
            t = c.byte()?;
        }
        id = c.byte()?;
    } else {
        si.sub_sizes = si.folders.iter().map(|f| f.unpack_size()).collect();
        si.sub_crcs = si.folders.iter().map(|f| f.crc).collect();
    }
    if id != K_END {
        return Err(malformed(format!(
            "unexpected id {id:#04x} at the end of StreamsInfo"
        )));
    }
    Ok(si)
}

/// Assigns each folder its packed streams' file ranges.
fn place_folders(si: &mut StreamsInfo, file_len: u64) -> Result<(), ArchiveError> {
    let mut next = 0usize;
    let mut off = 32u64.saturating_add(si.pack_pos);
    let mut starts = Vec::with_capacity(si.pack_sizes.len());
    for &s in &si.pack_sizes {
        starts.push((off, s));
        off = off.saturating_add(s);
    }
    for f in si.folders.iter_mut() {
        let n = f.packed_inputs.len();
        let Some(ranges) = starts.get(next..next + n) else {
            return Err(malformed(
                "folders use more packed streams than PackInfo lists",
            ));
        };
        f.packed = ranges.to_vec();
        next += n;
    }
    if off > file_len {
        // Reported per folder when read; listing still works.
        return Ok(());
    }
    Ok(())
}

impl<'a> SevenZArchive<'a> {
    /// Parses `data` with [`Limits::default`].
    pub fn parse(data: &'a [u8]) -> Result<SevenZArchive<'a>, ArchiveError> {
        Self::parse_with_limits(data, &Limits::default())
    }

    /// Parses the signature header and the (possibly packed) header,
    /// listing at most `limits.max_entries` files.
    pub fn parse_with_limits(
        data: &'a [u8],
        limits: &Limits,
    ) -> Result<SevenZArchive<'a>, ArchiveError> {
        if !looks_like_7z(data) {
            return Err(ArchiveError::NotAnArchive {
                kind: "7z",
                reason: "no 7z signature".into(),
            });
        }
        let mut ar = SevenZArchive {
            data,
            folders: Vec::new(),
            entries: Vec::new(),
            notes: Vec::new(),
        };
        let mut sh = Cur::new(&data[12..32]);
        let next_off = u64::from_le_bytes(sh.bytes(8)?.try_into().unwrap_or([0; 8]));
        let next_len = u64::from_le_bytes(sh.bytes(8)?.try_into().unwrap_or([0; 8]));
        let next_crc = sh.u32()?;
        let start_crc = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        if crc32(&data[12..32]) != start_crc {
            ar.notes.push((
                &CHECKSUM_MISMATCH,
                None,
                "the 7z start header's CRC does not match".into(),
            ));
        }
        let hdr = crate::slice_at(data, 32u64.saturating_add(next_off), next_len, || {
            "7z header".into()
        })?;
        if crc32(hdr) != next_crc {
            ar.notes.push((
                &CHECKSUM_MISMATCH,
                None,
                "the 7z header's CRC does not match".into(),
            ));
        }
        let mut owned: Vec<u8>;
        let mut cur = Cur::new(hdr);
        let mut nesting = 0;
        loop {
            match cur.byte()? {
                K_HEADER => break,
                K_ENCODED_HEADER => {
                    nesting += 1;
                    if nesting > MAX_HEADER_NESTING {
                        return Err(malformed("packed headers nest too deep"));
                    }
                    let mut si = read_streams_info(&mut cur, limits)?;
                    place_folders(&mut si, data.len() as u64)?;
                    let f = si
                        .folders
                        .first()
                        .ok_or_else(|| malformed("packed header without a folder"))?;
                    let cap = f.unpack_size().min(MAX_HEADER_BYTES);
                    let d = decode_folder(data, f, cap)?;
                    if d.truncated_at_limit {
                        return Err(ArchiveError::LimitExceeded {
                            what: "7z packed header",
                            limit: MAX_HEADER_BYTES,
                        });
                    }
                    if let Some(e) = d.error {
                        return Err(malformed(format!("packed header is corrupt: {e}")));
                    }
                    owned = d.bytes;
                    cur = Cur::new(&owned);
                }
                other => {
                    return Err(malformed(format!(
                        "header starts with id {other:#04x}, neither kHeader nor kEncodedHeader"
                    )))
                }
            }
        }
        ar.read_header(&mut cur, limits)?;
        Ok(ar)
    }

    fn read_header(&mut self, c: &mut Cur<'_>, limits: &Limits) -> Result<(), ArchiveError> {
        let mut id = c.byte()?;
        if id == K_ARCHIVE_PROPERTIES {
            loop {
                let t = c.byte()?;
                if t == K_END {
                    break;
                }
                let n = c.number()?;
                c.bytes(n)?;
            }
            id = c.byte()?;
        }
        if id == K_ADDITIONAL_STREAMS_INFO {
            read_streams_info(c, limits)?;
            id = c.byte()?;
        }
        let mut si = StreamsInfo::default();
        if id == K_MAIN_STREAMS_INFO {
            si = read_streams_info(c, limits)?;
            place_folders(&mut si, self.data.len() as u64)?;
            id = c.byte()?;
        }
        if id == K_FILES_INFO {
            self.read_files(c, &si, limits)?;
            id = c.byte()?;
        } else {
            // No file records: the streams are nameless files.
            let mut sub = 0usize;
            for (k, &n) in si.num_unpack.iter().enumerate() {
                let mut off = 0u64;
                for _ in 0..n {
                    let size = si.sub_sizes.get(sub).copied().unwrap_or(0);
                    self.entries.push(SevenZEntry {
                        name: format!("<stream {sub}>"),
                        kind: SevenZKind::File,
                        size,
                        folder: Some(k),
                        offset: off,
                        crc: si.sub_crcs.get(sub).copied().flatten(),
                    });
                    off = off.saturating_add(size);
                    sub += 1;
                }
            }
        }
        if id != K_END {
            self.notes.push((
                &ENTRY_OUT_OF_BOUNDS,
                None,
                format!("unexpected id {id:#04x} after the file records"),
            ));
        }
        self.folders = si.folders;
        Ok(())
    }

    fn read_files(
        &mut self,
        c: &mut Cur<'_>,
        si: &StreamsInfo,
        limits: &Limits,
    ) -> Result<(), ArchiveError> {
        let n = c.count("file", 1, u64::MAX)?;
        let listed = n.min(limits.max_entries as u64);
        if listed < n {
            self.notes.push((
                &ENTRY_COUNT,
                None,
                format!(
                    "the archive declares {n} files; listing stopped at the entry limit of {}",
                    limits.max_entries
                ),
            ));
        }
        let mut empty_stream = vec![false; n as usize];
        let mut empty_file: Vec<bool> = Vec::new();
        let mut anti: Vec<bool> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut attrs: Vec<Option<u32>> = Vec::new();
        loop {
            let t = c.byte()?;
            if t == K_END {
                break;
            }
            let size = c.number()?;
            let body = c.bytes(size)?;
            let mut p = Cur::new(body);
            match t {
                K_EMPTY_STREAM => empty_stream = p.bits(n)?,
                K_EMPTY_FILE | K_ANTI => {
                    let k = empty_stream.iter().filter(|&&e| e).count() as u64;
                    let v = p.bits(k)?;
                    if t == K_EMPTY_FILE {
                        empty_file = v;
                    } else {
                        anti = v;
                    }
                }
                K_NAME => {
                    if p.byte()? != 0 {
                        return Err(malformed("external file names are not supported"));
                    }
                    let rest = p.bytes(p.left())?;
                    let units: Vec<u16> = rest
                        .chunks_exact(2)
                        .map(|u| u16::from_le_bytes([u[0], u[1]]))
                        .collect();
                    for name in units.split(|&u| u == 0).take(listed as usize) {
                        names.push(
                            char::decode_utf16(name.iter().copied())
                                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                                .collect(),
                        );
                    }
                }
                K_WIN_ATTRIBUTES => {
                    let def = p.defined(n)?;
                    if p.byte()? != 0 {
                        return Err(malformed("external attributes are not supported"));
                    }
                    for d in def.into_iter().take(listed as usize) {
                        attrs.push(if d { Some(p.u32()?) } else { None });
                    }
                }
                // Times, start positions, dummies: skipped by their size.
                K_DUMMY => {}
                _ => {}
            }
        }
        let mut empty_idx = 0usize;
        let mut sub = 0usize;
        let mut folder = 0usize;
        let mut in_folder = 0u64;
        let mut off = 0u64;
        for i in 0..n as usize {
            let has_stream = !empty_stream.get(i).copied().unwrap_or(false);
            let name = names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("<file {i}>"));
            let attr = attrs.get(i).copied().flatten();
            let mut entry = SevenZEntry {
                name,
                kind: SevenZKind::File,
                size: 0,
                folder: None,
                offset: 0,
                crc: None,
            };
            if has_stream {
                while folder < si.num_unpack.len() && in_folder >= si.num_unpack[folder] {
                    folder += 1;
                    in_folder = 0;
                    off = 0;
                }
                if folder >= si.folders.len() || sub >= si.sub_sizes.len() {
                    self.notes.push((
                        &ENTRY_OUT_OF_BOUNDS,
                        None,
                        format!("file {i} has data but the folders hold no more streams"),
                    ));
                    break;
                }
                entry.size = si.sub_sizes[sub];
                entry.crc = si.sub_crcs.get(sub).copied().flatten();
                entry.folder = Some(folder);
                entry.offset = off;
                off = off.saturating_add(entry.size);
                in_folder += 1;
                sub += 1;
            } else {
                let is_file = empty_file.get(empty_idx).copied().unwrap_or(false);
                let is_anti = anti.get(empty_idx).copied().unwrap_or(false);
                empty_idx += 1;
                entry.kind = if is_anti {
                    SevenZKind::Anti
                } else if is_file {
                    SevenZKind::EmptyFile
                } else {
                    SevenZKind::Directory
                };
            }
            // High 16 bits carry a Unix mode when bit 15 (0x8000) is set.
            if let Some(a) = attr {
                if a & 0x8000 != 0 && (a >> 16) & 0o170000 == 0o120000 {
                    entry.kind = SevenZKind::Symlink;
                }
            }
            if i < listed as usize {
                if is_traversal_name(&entry.name) {
                    self.notes.push((
                        &PATH_TRAVERSAL,
                        Some(entry.name.clone()),
                        format!(
                            "7z entry name '{}' escapes the extraction directory",
                            entry.name
                        ),
                    ));
                }
                self.entries.push(entry);
            }
        }
        Ok(())
    }

    /// The archive's files, in header order.
    pub fn entries(&self) -> &[SevenZEntry] {
        &self.entries
    }

    /// The archive's folders (decoding units; a solid archive has one).
    pub fn folders(&self) -> &[SevenZFolder] {
        &self.folders
    }

    /// Decodes folder `k` to at most `cap` bytes. The output is cut at the
    /// cap (`truncated_at_limit`) and a corrupt stream keeps what came out
    /// before the error, as [`crate::decompress`] does.
    pub fn read_folder(&self, k: usize, cap: u64) -> Result<Decompressed, ArchiveError> {
        let f = self
            .folders
            .get(k)
            .ok_or_else(|| malformed(format!("no folder {k}")))?;
        decode_folder(self.data, f, cap)
    }

    /// The bytes of `e` within its folder's decoded output `folder`, with
    /// whether they are complete. Reports a CRC mismatch as an anomaly.
    pub fn entry_bytes<'f>(&mut self, e: &SevenZEntry, folder: &'f [u8]) -> (&'f [u8], bool) {
        let start = (e.offset as usize).min(folder.len());
        let end = (e.offset.saturating_add(e.size) as usize).min(folder.len());
        let bytes = &folder[start..end];
        let complete = (end - start) as u64 == e.size;
        if complete {
            if let Some(want) = e.crc {
                let got = crc32(bytes);
                if got != want {
                    self.notes.push((
                        &CHECKSUM_MISMATCH,
                        Some(e.name.clone()),
                        format!(
                            "7z entry CRC {got:#010x} does not match the recorded {want:#010x}"
                        ),
                    ));
                }
            }
        }
        (bytes, complete)
    }

    /// Link targets of symlink entries whose data is in `folder` output.
    pub fn note_symlink(&mut self, e: &SevenZEntry, target: &[u8]) {
        let t = String::from_utf8_lossy(target);
        if crate::tar::link_escapes(&e.name, &t) {
            self.notes.push((
                &TAR_LINK_OUTSIDE,
                Some(e.name.clone()),
                format!("7z symlink '{}' points to '{t}'", e.name),
            ));
        }
    }

    /// Findings for the anomalies seen while parsing and reading.
    pub fn anomalies(&self, loc: &Location) -> Vec<Finding> {
        crate::member_findings(&self.notes, loc)
    }
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

/// Dictionary to allocate: never more than the output can reach.
fn bounded_dict(dict: u32, out_cap: u64) -> u32 {
    (dict as u64).min(out_cap.max(4096)).min(u32::MAX as u64) as u32
}

fn decode_folder(data: &[u8], f: &SevenZFolder, cap: u64) -> Result<Decompressed, ArchiveError> {
    let unsupported = |why: String| ArchiveError::UnsupportedMethod {
        name: format!("7z folder ({why})"),
        method: 0,
        method_name: "7z coder",
    };
    if f.encrypted() {
        return Err(ArchiveError::Encrypted {
            name: "7z folder".into(),
        });
    }
    let order = f.chain().map_err(unsupported)?;
    let &(off, len) = f
        .packed
        .first()
        .ok_or_else(|| malformed("folder without packed data"))?;
    let packed = crate::slice_at(data, off, len, || "7z packed stream".into())?;
    let mut buf: Option<Vec<u8>> = None;
    let mut truncated = false;
    let mut error = None;
    for &k in &order {
        let input: &[u8] = buf.as_deref().unwrap_or(packed);
        let declared = f.unpack_sizes.get(k).copied().unwrap_or(0);
        // Every step, intermediate or last, is bounded by the same cap.
        let d = decode_one(&f.coders[k].method, input, declared, cap)?;
        truncated |= d.truncated_at_limit;
        error = error.or(d.error);
        buf = Some(d.bytes);
    }
    Ok(Decompressed {
        bytes: buf.unwrap_or_default(),
        truncated_at_limit: truncated,
        error,
    })
}

/// Runs one coder over `input`, producing at most `cap` bytes.
fn decode_one(
    m: &Method,
    input: &[u8],
    declared: u64,
    cap: u64,
) -> Result<Decompressed, ArchiveError> {
    let corrupt = |format: &'static str, e: std::io::Error| ArchiveError::Corrupt {
        format,
        reason: e.to_string(),
    };
    let too_big = |dict: u32| ArchiveError::LimitExceeded {
        what: "7z LZMA dictionary",
        limit: dict as u64,
    };
    // A stream never legitimately produces more than its declared size.
    let out_cap = cap.min(declared);
    let mut d = match m {
        Method::Copy => {
            let n = (input.len() as u64).min(cap.saturating_add(1)) as usize;
            drain(&input[..n], cap, "7z copy")?
        }
        Method::Lzma { props, dict } => {
            let dict = bounded_dict(*dict, out_cap);
            let need = lzma_rust2::lzma_get_memory_usage_by_props(dict, *props)
                .map_err(|e| corrupt("lzma", e))?;
            if need > MAX_DICT_MEMORY_KIB {
                return Err(too_big(dict));
            }
            let r = lzma_rust2::LzmaReader::new_with_props(input, declared, *props, dict, None)
                .map_err(|e| corrupt("lzma", e))?;
            drain(r, cap, "lzma")?
        }
        Method::Lzma2 { dict } => {
            let dict = bounded_dict(*dict, out_cap);
            if lzma_rust2::lzma2_get_memory_usage(dict) > MAX_DICT_MEMORY_KIB {
                return Err(too_big(dict));
            }
            drain(
                lzma_rust2::Lzma2Reader::new(input, dict, None),
                cap,
                "lzma2",
            )?
        }
        Method::Deflate => drain(flate2::read::DeflateDecoder::new(input), cap, "deflate")?,
        Method::Bzip2 => drain(bzip2_rs::DecoderReader::new(input), cap, "bzip2")?,
        Method::Zstd => crate::compress::decompress_capped(input, crate::Compression::Zstd, cap)?,
        Method::Delta { distance } => {
            let n = (input.len() as u64).min(cap) as usize;
            let mut out = input[..n].to_vec();
            for i in *distance..out.len() {
                out[i] = out[i].wrapping_add(out[i - distance]);
            }
            Decompressed {
                bytes: out,
                truncated_at_limit: input.len() as u64 > cap,
                error: None,
            }
        }
        Method::Bcj(k) => {
            use lzma_rust2::filter::bcj::BcjReader;
            let n = (input.len() as u64).min(cap.saturating_add(1)) as usize;
            let input = &input[..n];
            match k {
                BcjKind::X86 => drain(BcjReader::new_x86(input, 0), cap, "bcj")?,
                BcjKind::Ppc => drain(BcjReader::new_ppc(input, 0), cap, "bcj")?,
                BcjKind::Ia64 => drain(BcjReader::new_ia64(input, 0), cap, "bcj")?,
                BcjKind::Arm => drain(BcjReader::new_arm(input, 0), cap, "bcj")?,
                BcjKind::ArmThumb => drain(BcjReader::new_arm_thumb(input, 0), cap, "bcj")?,
                BcjKind::Sparc => drain(BcjReader::new_sparc(input, 0), cap, "bcj")?,
                BcjKind::Arm64 => drain(BcjReader::new_arm64(input, 0), cap, "bcj")?,
                BcjKind::RiscV => drain(BcjReader::new_riscv(input, 0), cap, "bcj")?,
            }
        }
        Method::Aes => {
            return Err(ArchiveError::Encrypted {
                name: "7z folder".into(),
            })
        }
        Method::Other(id) => {
            return Err(ArchiveError::UnsupportedMethod {
                name: format!("7z coder {id}"),
                method: 0,
                method_name: "7z coder",
            })
        }
    };
    // Output beyond the declared size is not part of the stream.
    if d.bytes.len() as u64 > declared && !d.truncated_at_limit {
        d.bytes.truncate(declared as usize);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 7z file with `packed` data and the plain header `h`.
    fn archive(packed: &[u8], h: &[u8]) -> Vec<u8> {
        let mut start = Vec::new();
        start.extend_from_slice(&(packed.len() as u64).to_le_bytes());
        start.extend_from_slice(&(h.len() as u64).to_le_bytes());
        start.extend_from_slice(&crc32(h).to_le_bytes());
        let mut v = SIGNATURE.to_vec();
        v.extend_from_slice(&[0, 4]);
        v.extend_from_slice(&crc32(&start).to_le_bytes());
        v.extend_from_slice(&start);
        v.extend_from_slice(packed);
        v.extend_from_slice(h);
        v
    }

    #[test]
    fn numbers_decode() {
        for (b, v) in [
            (&[0x05][..], 5u64),
            (&[0x80, 0xff], 0xff),
            (&[0x81, 0x02], 0x102),
            (&[0xc0, 0x34, 0x12], 0x1234),
            (&[0xff, 1, 0, 0, 0, 0, 0, 0, 0x80], 0x8000_0000_0000_0001),
        ] {
            assert_eq!(Cur::new(b).number().unwrap(), v, "{b:?}");
        }
        assert!(Cur::new(&[0xc0, 0x34]).number().is_err());
    }

    #[test]
    fn huge_declared_counts_are_refused_before_allocation() {
        // kHeader, kFilesInfo, 2^56 files.
        let h = [K_HEADER, K_FILES_INFO, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        let e = SevenZArchive::parse(&archive(&[], &h)).unwrap_err();
        assert!(e.to_string().contains("file count"), "{e}");
        // kMainStreamsInfo, kPackInfo, pos 0, 2^40 pack streams.
        let h = [
            K_HEADER,
            K_MAIN_STREAMS_INFO,
            K_PACK_INFO,
            0,
            0xfb,
            0,
            0,
            0,
            0,
            1,
        ];
        let e = SevenZArchive::parse(&archive(&[], &h)).unwrap_err();
        assert!(e.to_string().contains("pack stream count"), "{e}");
        // A folder with 2^30 coders.
        let h = [
            K_HEADER,
            K_MAIN_STREAMS_INFO,
            K_UNPACK_INFO,
            K_FOLDER,
            1,
            0,
            0xf0,
            0,
            0,
            0,
            0x40,
        ];
        let e = SevenZArchive::parse(&archive(&[], &h)).unwrap_err();
        assert!(e.to_string().contains("coder count"), "{e}");
    }

    #[test]
    fn huge_dictionary_and_size_do_not_allocate() {
        // One LZMA2 folder, dictionary byte 40 (4 GiB), declared size 2^62,
        // over 16 bytes of junk: decoding fails or stops at the cap, fast.
        let packed = [0x55u8; 16];
        let mut h = vec![
            K_HEADER,
            K_MAIN_STREAMS_INFO,
            K_PACK_INFO,
            0,
            1,
            K_SIZE,
            16,
            K_END,
        ];
        h.extend_from_slice(&[K_UNPACK_INFO, K_FOLDER, 1, 0, 1, 0x21, 0x21, 1, 40]);
        h.extend_from_slice(&[K_CODERS_UNPACK_SIZE, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x40, K_END]);
        h.extend_from_slice(&[K_END, K_END]);
        let data = archive(&packed, &h);
        let a = SevenZArchive::parse(&data).unwrap();
        assert_eq!(a.folders()[0].unpack_size(), 1 << 62);
        assert_eq!(a.entries().len(), 1);
        match a.read_folder(0, 1 << 16) {
            Ok(d) => assert!(d.bytes.len() <= 1 << 16),
            Err(e) => assert!(matches!(e, ArchiveError::Corrupt { .. }), "{e}"),
        }
    }

    #[test]
    fn substream_sizes_beyond_the_folder_are_refused() {
        let packed = b"abcd";
        let mut h = vec![
            K_HEADER,
            K_MAIN_STREAMS_INFO,
            K_PACK_INFO,
            0,
            1,
            K_SIZE,
            4,
            K_END,
        ];
        h.extend_from_slice(&[K_UNPACK_INFO, K_FOLDER, 1, 0, 1, 1, 0x00]);
        h.extend_from_slice(&[K_CODERS_UNPACK_SIZE, 4, K_END]);
        h.extend_from_slice(&[K_SUBSTREAMS_INFO, K_NUM_UNPACK_STREAM, 2, K_SIZE, 9, K_END]);
        h.extend_from_slice(&[K_END, K_END]);
        let e = SevenZArchive::parse(&archive(packed, &h)).unwrap_err();
        assert!(e.to_string().contains("substream sizes"), "{e}");
    }
}
