//! Fuzz every compressed-stream decoder behind the bounded reader. The first
//! byte picks the format when the sniffer does not recognise one, so all
//! decoders see arbitrary bytes.
#![no_main]

use aisec_archive::{decompress, sniff_compression, Compression, Limits};
use libfuzzer_sys::fuzz_target;

const ALL: [Compression; 7] = [
    Compression::Gzip,
    Compression::Zlib,
    Compression::Bzip2,
    Compression::Xz,
    Compression::Lzma,
    Compression::Lz4,
    Compression::Zstd,
];

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_entry_bytes: 1 << 20,
        max_ratio: 100,
        ..Limits::default()
    };
    let (c, body) = match sniff_compression(data) {
        Some(c) => (c, data),
        None => match data.split_first() {
            Some((&k, rest)) => (ALL[k as usize % ALL.len()], rest),
            None => return,
        },
    };
    if let Ok(out) = decompress(body, c, &limits) {
        assert!(out.bytes.len() as u64 <= limits.output_cap(body.len() as u64));
    }
});
