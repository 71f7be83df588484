//! Bounded decoding of compressed upstream responses.
//!
//! The guard asks the upstream for `Accept-Encoding: identity`, but an
//! upstream (or a middlebox) may compress anyway; a compressed body the
//! guard cannot read would reach the client unscanned. So `gzip`, `x-gzip`
//! and `deflate` are decoded here, incrementally and within a byte bound
//! (a decompression bomb stops at the bound instead of filling memory), and
//! any other coding (`br`, `zstd`, `compress`, stacked codings) is refused.

use std::io::{self, Write};

use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Why a response body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A coding the guard cannot scan through.
    #[error("unsupported content-encoding `{0}`")]
    Unsupported(String),
    /// The decoded body passed the bound.
    #[error("decoded response larger than {0} bytes")]
    TooLarge(usize),
    /// The compressed stream is corrupt.
    #[error("corrupt {coding} response body: {source}")]
    Corrupt {
        /// The coding.
        coding: &'static str,
        /// The decoder's error.
        source: io::Error,
    },
}

/// A `Vec` that refuses to grow past a limit; the decoder's sink.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(b.len()) > self.limit {
            self.over = true;
            return Err(io::Error::other("decoded size limit"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Identity,
    Gzip(MultiGzDecoder<Capped>),
    /// `deflate` is zlib-wrapped by the standard, raw by some servers: the
    /// first two bytes decide.
    Deflate(
        Option<ZlibDecoder<Capped>>,
        Option<DeflateDecoder<Capped>>,
        Vec<u8>,
    ),
}

/// An incremental decoder for one response body.
pub struct BodyDecoder {
    inner: Inner,
    limit: usize,
    total: usize,
    chunk_limit: usize,
}

/// The coding named by `content-encoding` values (`None` for identity).
pub fn coding_of<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<&'static str>, DecodeError> {
    let mut found: Vec<String> = Vec::new();
    for v in values {
        for part in String::from_utf8_lossy(v).split(',') {
            let c = part.trim().to_ascii_lowercase();
            if !c.is_empty() && c != "identity" {
                found.push(c);
            }
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [c] if c == "gzip" || c == "x-gzip" => Ok(Some("gzip")),
        [c] if c == "deflate" => Ok(Some("deflate")),
        _ => Err(DecodeError::Unsupported(found.join(", "))),
    }
}

impl BodyDecoder {
    /// A decoder for `coding` (from [`coding_of`]) whose output may total at most `limit` bytes.
    pub fn new(coding: Option<&'static str>, limit: usize) -> BodyDecoder {
        let sink = || Capped {
            buf: Vec::new(),
            limit,
            over: false,
        };
        let inner = match coding {
            Some("gzip") => Inner::Gzip(MultiGzDecoder::new(sink())),
            Some(_) => Inner::Deflate(None, None, Vec::new()),
            None => Inner::Identity,
        };
        BodyDecoder {
            inner,
            limit,
            total: 0,
            chunk_limit: usize::MAX,
        }
    }

    /// Also bounds what one [`BodyDecoder::push`] may produce (for streams, whose total is
    /// bounded elsewhere but whose every chunk must stay small).
    pub fn with_chunk_limit(mut self, n: usize) -> BodyDecoder {
        self.chunk_limit = n;
        let cap = self.limit.min(n);
        match &mut self.inner {
            Inner::Gzip(d) => d.get_mut().limit = cap,
            Inner::Deflate(..) | Inner::Identity => {}
        }
        self
    }

    fn cap(&self) -> usize {
        self.limit.saturating_sub(self.total).min(self.chunk_limit)
    }

    /// Whether the body is compressed.
    pub fn is_identity(&self) -> bool {
        matches!(self.inner, Inner::Identity)
    }

    fn take(&mut self, sink: &mut Capped) -> Vec<u8> {
        let out = std::mem::take(&mut sink.buf);
        self.total += out.len();
        // The sink's limit is what may still be produced.
        sink.limit = self.cap();
        out
    }

    fn fail(&self, coding: &'static str, sink_over: bool, e: io::Error) -> DecodeError {
        if sink_over {
            DecodeError::TooLarge(self.limit.min(self.chunk_limit))
        } else {
            DecodeError::Corrupt { coding, source: e }
        }
    }

    /// Feeds compressed bytes; returns the bytes decoded so far.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut inner = std::mem::replace(&mut self.inner, Inner::Identity);
        let r = self.push_inner(&mut inner, data);
        self.inner = inner;
        r
    }

    fn push_inner(&mut self, inner: &mut Inner, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        match inner {
            Inner::Identity => {
                if self.total.saturating_add(data.len()) > self.limit {
                    return Err(DecodeError::TooLarge(self.limit));
                }
                self.total += data.len();
                Ok(data.to_vec())
            }
            Inner::Gzip(d) => {
                // `flush` pushes what was decoded out to the sink now, not on the next write.
                if let Err(e) = d.write_all(data).and_then(|_| d.flush()) {
                    return Err(self.fail("gzip", d.get_ref().over, e));
                }
                Ok(self.take(d.get_mut()))
            }
            Inner::Deflate(z, raw, head) => {
                if z.is_none() && raw.is_none() {
                    head.extend_from_slice(data);
                    if head.len() < 2 {
                        return Ok(Vec::new());
                    }
                    let sink = Capped {
                        buf: Vec::new(),
                        limit: self.cap(),
                        over: false,
                    };
                    // A zlib header: CM = 8 and the 16-bit check value divides by 31.
                    let zlib = head[0] & 0x0f == 8
                        && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
                    if zlib {
                        *z = Some(ZlibDecoder::new(sink));
                    } else {
                        *raw = Some(DeflateDecoder::new(sink));
                    }
                    let first = std::mem::take(head);
                    return self.push_inner(inner, &first);
                }
                let (r, over) = match (z.as_mut(), raw.as_mut()) {
                    (Some(d), _) => {
                        let r = d.write_all(data).and_then(|_| d.flush());
                        let over = d.get_ref().over;
                        (r.map(|_| self.take(d.get_mut())), over)
                    }
                    (None, Some(d)) => {
                        let r = d.write_all(data).and_then(|_| d.flush());
                        let over = d.get_ref().over;
                        (r.map(|_| self.take(d.get_mut())), over)
                    }
                    (None, None) => (Ok(Vec::new()), false),
                };
                r.map_err(|e| self.fail("deflate", over, e))
            }
        }
    }

    /// Ends the body; returns the last decoded bytes. A truncated stream is an error.
    pub fn finish(mut self) -> Result<Vec<u8>, DecodeError> {
        let inner = std::mem::replace(&mut self.inner, Inner::Identity);
        match inner {
            Inner::Identity => Ok(Vec::new()),
            Inner::Gzip(mut d) => match d.try_finish() {
                Ok(()) => Ok(self.take(d.get_mut())),
                Err(e) => Err(self.fail("gzip", d.get_ref().over, e)),
            },
            Inner::Deflate(Some(mut d), _, _) => match d.try_finish() {
                Ok(()) => Ok(self.take(d.get_mut())),
                Err(e) => Err(self.fail("deflate", d.get_ref().over, e)),
            },
            Inner::Deflate(None, Some(mut d), _) => match d.try_finish() {
                Ok(()) => Ok(self.take(d.get_mut())),
                Err(e) => Err(self.fail("deflate", d.get_ref().over, e)),
            },
            Inner::Deflate(None, None, head) => {
                if head.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err(DecodeError::Corrupt {
                        coding: "deflate",
                        source: io::Error::from(io::ErrorKind::UnexpectedEof),
                    })
                }
            }
        }
    }

    /// Decodes a whole body at once.
    pub fn decode_all(
        coding: Option<&'static str>,
        body: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, DecodeError> {
        let mut d = BodyDecoder::new(coding, limit);
        let mut out = d.push(body)?;
        out.extend(d.finish()?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings_are_recognised_or_refused() {
        let one = |s: &'static str| coding_of(std::iter::once(s.as_bytes()));
        assert_eq!(one("identity").unwrap(), None);
        assert_eq!(one("GZIP").unwrap(), Some("gzip"));
        assert_eq!(one("x-gzip").unwrap(), Some("gzip"));
        assert_eq!(one("deflate").unwrap(), Some("deflate"));
        assert!(matches!(one("br"), Err(DecodeError::Unsupported(_))));
        assert!(matches!(
            one("gzip, gzip"),
            Err(DecodeError::Unsupported(_))
        ));
        assert_eq!(coding_of(std::iter::empty()).unwrap(), None);
    }

    #[test]
    fn gzip_and_both_deflates_decode_in_pieces() {
        let text = b"the canary CANARY-1234 is here ".repeat(50);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&text).unwrap();
        for (coding, enc) in [
            ("gzip", gz(&text)),
            ("deflate", z.finish().unwrap()),
            ("deflate", r.finish().unwrap()),
        ] {
            let mut d = BodyDecoder::new(Some(coding), 1 << 20);
            let mut out = Vec::new();
            for piece in enc.chunks(7) {
                out.extend(d.push(piece).unwrap());
            }
            out.extend(d.finish().unwrap());
            assert_eq!(out, text, "{coding}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_bound() {
        let bomb = gz(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100 << 10);
        let e = BodyDecoder::decode_all(Some("gzip"), &bomb, 1 << 20).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge(_)), "{e}");
    }

    #[test]
    fn a_chunk_limit_bounds_each_push() {
        let bomb = gz(&vec![0u8; 8 << 20]);
        let mut d = BodyDecoder::new(Some("gzip"), usize::MAX).with_chunk_limit(1 << 20);
        assert!(matches!(d.push(&bomb), Err(DecodeError::TooLarge(_))));
        let small = gz(&vec![b'a'; 100 << 10]);
        let mut d = BodyDecoder::new(Some("gzip"), usize::MAX).with_chunk_limit(1 << 20);
        let mut out = d.push(&small).unwrap();
        out.extend(d.finish().unwrap());
        assert_eq!(out.len(), 100 << 10);
    }

    #[test]
    fn truncated_and_corrupt_streams_are_errors() {
        let g = gz(b"hello hello hello");
        let e = BodyDecoder::decode_all(Some("gzip"), &g[..g.len() - 5], 1 << 20).unwrap_err();
        assert!(matches!(e, DecodeError::Corrupt { .. }), "{e}");
        let e = BodyDecoder::decode_all(Some("gzip"), b"not gzip at all", 1 << 20).unwrap_err();
        assert!(matches!(e, DecodeError::Corrupt { .. }), "{e}");
        let e = BodyDecoder::decode_all(Some("deflate"), b"x", 1 << 20).unwrap_err();
        assert!(matches!(e, DecodeError::Corrupt { .. }), "{e}");
    }
}
