//! Sniffing and bounded decompression of single compressed streams.
//!
//! joblib writes its dumps through `zlib`, `gzip`, `bz2`, `lzma`
//! (`FORMAT_XZ` and `FORMAT_ALONE`) and `lz4` frames; the scanner sniffs the
//! format from the first bytes and decompresses with a hard output bound.
//! All decoders are pure Rust: `flate2` (miniz_oxide backend), `bzip2-rs`,
//! `lzma-rust2` (a port of XZ for Java) and `lz4_flex`.
//!
//! Output is produced in chunks and stops at [`Limits::output_cap`], so a
//! bomb costs at most that much memory and the time to produce it; the result
//! then has `truncated_at_limit = true` and the caller reports
//! [`crate::bomb_finding`]. The LZMA-family decoders are also given a memory
//! limit for their dictionary ([`MAX_DICT_MEMORY_KIB`]), since a header can
//! ask for a 4 GiB dictionary up front.

use std::io::{self, Read};

use crate::{ArchiveError, Limits};

/// A compressed-stream format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// RFC 1952 gzip, possibly several concatenated members.
    Gzip,
    /// RFC 1950 zlib.
    Zlib,
    /// bzip2 (`BZh1`..`BZh9`).
    Bzip2,
    /// The .xz container.
    Xz,
    /// The legacy `.lzma` ("lzma-alone") format, as joblib writes it.
    Lzma,
    /// The LZ4 frame format.
    Lz4,
    /// Zstandard (RFC 8878) frames: `.pkl.zst`, zip method 93 (read by
    /// Python 3.14's zipfile through `compression.zstd`).
    Zstd,
}

impl Compression {
    /// Lower-case name of the format.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Largest dictionary memory (KiB) the LZMA-family decoders may allocate.
/// 96 MiB admits `xz -9`/`lzma -9` (64 MiB dictionaries).
pub const MAX_DICT_MEMORY_KIB: u32 = 96 * 1024;

/// What a bounded decompression produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decompressed {
    /// The decompressed bytes (at most the output cap).
    pub bytes: Vec<u8>,
    /// True when the stream had more output than the cap allowed: `bytes`
    /// is a prefix and the caller should report [`crate::bomb_finding`].
    pub truncated_at_limit: bool,
    /// When the stream turned out corrupt or truncated after some output was
    /// produced, the decoder's message; `bytes` then holds the output up to
    /// that point (tolerant readers still see it).
    pub error: Option<String>,
}

/// Detects a compressed stream from its first bytes.
///
/// zlib is recognised by a valid RFC 1950 header (method 8, window ≤ 32 KiB,
/// no preset dictionary, FCHECK multiple of 31); lzma-alone by a plausible
/// properties byte, dictionary size (2^n or 2^n + 2^(n-1)) and size field.
pub fn sniff_compression(data: &[u8]) -> Option<Compression> {
    if data.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Some(Compression::Gzip);
    }
    if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Some(Compression::Xz);
    }
    if data.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        return Some(Compression::Lz4);
    }
    if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(Compression::Zstd);
    }
    if data.len() >= 10 && data.starts_with(b"BZh") && (b'1'..=b'9').contains(&data[3]) {
        let magic = &data[4..10];
        if magic == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
            || magic == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90]
        {
            return Some(Compression::Bzip2);
        }
    }
    if data.len() >= 2 {
        let (cmf, flg) = (data[0], data[1]);
        if cmf & 0x0f == 8
            && cmf >> 4 <= 7
            && flg & 0x20 == 0
            && ((cmf as u16) << 8 | flg as u16).is_multiple_of(31)
        {
            return Some(Compression::Zlib);
        }
    }
    if looks_like_lzma_alone(data) {
        return Some(Compression::Lzma);
    }
    None
}

fn looks_like_lzma_alone(data: &[u8]) -> bool {
    if data.len() < 13 || data[0] >= 9 * 5 * 5 {
        return false;
    }
    let dict = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let dict_ok = dict >= 4096
        && (dict.is_power_of_two() || (dict.is_multiple_of(3) && (dict / 3).is_power_of_two()));
    let size = u64::from_le_bytes([
        data[5], data[6], data[7], data[8], data[9], data[10], data[11], data[12],
    ]);
    // Unknown size (-1, what joblib and `lzma.FORMAT_ALONE` write) or a
    // plausible one (< 256 TiB); the first range-coder byte is always 0.
    dict_ok && (size == u64::MAX || size < 1 << 48) && data[13..].first() == Some(&0)
}

/// Recognises joblib's legacy (< 0.10) "ZF" file: `b"ZF"`, the
/// uncompressed length as a `0x`-prefixed hex string left-justified in 19
/// bytes, then a zlib stream (joblib `numpy_pickle_compat.read_zfile`).
/// Returns the zlib stream and the declared length.
pub fn joblib_zfile(data: &[u8]) -> Option<(&[u8], u64)> {
    const HEADER: usize = 2 + 19;
    if data.len() < HEADER + 2 || !data.starts_with(b"ZF") {
        return None;
    }
    let text = std::str::from_utf8(&data[2..HEADER]).ok()?.trim_end();
    let digits = text
        .strip_prefix("0x")
        .unwrap_or(text)
        .trim_end_matches('L');
    let len = u64::from_str_radix(digits, 16).ok()?;
    let rest = &data[HEADER..];
    (sniff_compression(rest) == Some(Compression::Zlib)).then_some((rest, len))
}

/// Decompresses `data` as `c`, producing at most
/// `limits.output_cap(data.len())` bytes.
///
/// Returns an error only when the stream is unreadable before any output;
/// later corruption is reported in [`Decompressed::error`] with the output
/// produced so far, and a bomb in [`Decompressed::truncated_at_limit`].
pub fn decompress(
    data: &[u8],
    c: Compression,
    limits: &Limits,
) -> Result<Decompressed, ArchiveError> {
    let cap = limits.output_cap(data.len() as u64);
    decompress_capped(data, c, cap)
}

/// [`decompress`] with an explicit output cap.
pub(crate) fn decompress_capped(
    data: &[u8],
    c: Compression,
    cap: u64,
) -> Result<Decompressed, ArchiveError> {
    let corrupt = |e: io::Error| ArchiveError::Corrupt {
        format: c.name(),
        reason: e.to_string(),
    };
    match c {
        Compression::Gzip => drain(flate2::read::MultiGzDecoder::new(data), cap, c.name()),
        Compression::Zlib => drain(flate2::read::ZlibDecoder::new(data), cap, c.name()),
        Compression::Bzip2 => drain(bzip2_rs::DecoderReader::new(data), cap, c.name()),
        Compression::Lz4 => drain(lz4_flex::frame::FrameDecoder::new(data), cap, c.name()),
        // ruzstd refuses windows over 128 MiB (DEFAULT_MAX_WINDOW_SIZE), so a
        // header cannot make it allocate more; frames back to back are
        // decoded one after the other, as `zstd -d` does.
        Compression::Zstd => drain(ZstdFrames::new(data), cap, c.name()),
        Compression::Xz => drain(
            lzma_rust2::XzReader::new_mem_limit(data, true, MAX_DICT_MEMORY_KIB),
            cap,
            c.name(),
        ),
        Compression::Lzma => {
            let r = lzma_rust2::LzmaReader::new_mem_limit(data, MAX_DICT_MEMORY_KIB, None)
                .map_err(corrupt)?;
            drain(r, cap, c.name())
        }
    }
}

/// Reads consecutive zstd frames, skipping skippable frames, as `zstd -d`
/// does (ruzstd's `StreamingDecoder` reads one frame).
struct ZstdFrames<'a> {
    rest: &'a [u8],
    cur: Option<ruzstd::decoding::StreamingDecoder<&'a [u8], ruzstd::decoding::FrameDecoder>>,
    frames: u32,
}

impl<'a> ZstdFrames<'a> {
    fn new(data: &'a [u8]) -> Self {
        ZstdFrames {
            rest: data,
            cur: None,
            frames: 0,
        }
    }
}

impl Read for ZstdFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        loop {
            if let Some(d) = self.cur.as_mut() {
                let n = d.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.rest = d.get_ref();
                self.cur = None;
            }
            if self.rest.is_empty() || self.frames >= 100_000 {
                return Ok(0);
            }
            self.frames += 1;
            let mut src: &[u8] = self.rest;
            match ruzstd::decoding::StreamingDecoder::new(src) {
                Ok(d) => self.cur = Some(d),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    // magic (4) + length (4) + payload
                    let skip = 8usize.saturating_add(length as usize);
                    if skip > src.len() {
                        return Err(invalid("truncated skippable zstd frame".into()));
                    }
                    src = &src[skip..];
                    self.rest = src;
                }
                Err(e) => return Err(invalid(e.to_string())),
            }
        }
    }
}

/// Raw deflate (zip method 8) with an output cap.
pub(crate) fn inflate_raw(data: &[u8], cap: u64) -> Result<Decompressed, ArchiveError> {
    drain(flate2::read::DeflateDecoder::new(data), cap, "deflate")
}

/// Reads `r` to its end or to `cap` bytes, in bounded chunks.
pub(crate) fn drain<R: Read>(
    mut r: R,
    cap: u64,
    format: &'static str,
) -> Result<Decompressed, ArchiveError> {
    const CHUNK: usize = 64 * 1024;
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        // Ask for one byte beyond the cap so "exactly cap bytes" and "more
        // than cap bytes" can be told apart.
        let room = cap.saturating_add(1).saturating_sub(out.len() as u64);
        if room == 0 {
            break;
        }
        let want = (room.min(CHUNK as u64)) as usize;
        match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if out.is_empty() {
                    return Err(ArchiveError::Corrupt {
                        format,
                        reason: e.to_string(),
                    });
                }
                return Ok(Decompressed {
                    bytes: out,
                    truncated_at_limit: false,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    let truncated = out.len() as u64 > cap;
    if truncated {
        out.truncate(cap as usize);
    }
    Ok(Decompressed {
        bytes: out,
        truncated_at_limit: truncated,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sniffs_magics() {
        assert_eq!(
            sniff_compression(&[0x1f, 0x8b, 8, 0]),
            Some(Compression::Gzip)
        );
        assert_eq!(sniff_compression(&[0x78, 0x9c, 1]), Some(Compression::Zlib));
        assert_eq!(sniff_compression(&[0x78, 0x9d, 1]), None);
        assert_eq!(
            sniff_compression(b"\xfd7zXZ\x00\x00"),
            Some(Compression::Xz)
        );
        assert_eq!(
            sniff_compression(&[4, 0x22, 0x4d, 0x18, 0]),
            Some(Compression::Lz4)
        );
        assert_eq!(sniff_compression(b"\x80\x04\x95"), None);
        assert_eq!(sniff_compression(b"PK\x03\x04"), None);
        assert_eq!(sniff_compression(b""), None);
    }

    #[test]
    fn legacy_joblib_zfile() {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"\x80\x02K\x01.").unwrap();
        let mut f = format!("ZF{:<19}", "0x5").into_bytes();
        f.extend(e.finish().unwrap());
        let (z, n) = joblib_zfile(&f).unwrap();
        assert_eq!(n, 5);
        let d = decompress(z, Compression::Zlib, &Limits::default()).unwrap();
        assert_eq!(d.bytes, b"\x80\x02K\x01.");
        assert!(joblib_zfile(b"ZFnot a joblib file at all").is_none());
    }

    #[test]
    fn zlib_roundtrip_and_cap() {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&[7u8; 100_000]).unwrap();
        let z = e.finish().unwrap();
        let d = decompress(&z, Compression::Zlib, &Limits::default()).unwrap();
        assert_eq!(d.bytes.len(), 100_000);
        assert!(!d.truncated_at_limit);
        let d = decompress_capped(&z, Compression::Zlib, 100_000).unwrap();
        assert!(
            !d.truncated_at_limit,
            "exactly at the cap is not truncation"
        );
        let d = decompress_capped(&z, Compression::Zlib, 99_999).unwrap();
        assert!(d.truncated_at_limit);
        assert_eq!(d.bytes.len(), 99_999);
    }

    #[test]
    fn corrupt_stream_errors_or_reports_partial() {
        assert!(decompress(
            &[0x78, 0x9c, 0xff, 0xff, 0xff],
            Compression::Zlib,
            &Limits::default()
        )
        .is_err());
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let payload: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        e.write_all(&payload).unwrap();
        let mut g = e.finish().unwrap();
        let n = g.len();
        g.truncate(n - 100);
        let d = decompress(&g, Compression::Gzip, &Limits::default()).unwrap();
        assert!(d.error.is_some());
        assert!(!d.bytes.is_empty() && d.bytes.len() < payload.len());
        assert_eq!(&d.bytes[..], &payload[..d.bytes.len()]);
    }

    #[test]
    fn zstd_frames_back_to_back_and_skippable() {
        let a = ruzstd::encoding::compress_to_vec(
            &b"first frame "[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let b = ruzstd::encoding::compress_to_vec(
            &b"second frame"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let mut data = a.clone();
        // a skippable frame (magic 0x184D2A50..5F, length, payload)
        data.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        data.extend_from_slice(&b);
        assert_eq!(sniff_compression(&data), Some(Compression::Zstd));
        let out = decompress(&data, Compression::Zstd, &Limits::default()).unwrap();
        assert_eq!(out.bytes, b"first frame second frame");
        assert_eq!(out.error, None);
        // corrupt tail after a good frame: output kept, error reported
        let mut bad = a;
        bad.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff]);
        let out = decompress(&bad, Compression::Zstd, &Limits::default()).unwrap();
        assert_eq!(out.bytes, b"first frame ");
        assert!(out.error.is_some());
        // a header asking for a huge window is refused, not allocated
        let huge = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0, 0, 0];
        assert!(decompress(&huge, Compression::Zstd, &Limits::default()).is_err());
    }
}
