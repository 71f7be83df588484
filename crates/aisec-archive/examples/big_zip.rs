//! Measures what parsing a large checkpoint-shaped zip costs: builds a
//! sparse file holding a small `archive/data.pkl` and a 1 GiB stored tensor
//! entry (its data a hole of zeros), memory-maps it, parses it and reads
//! the pickle, and reports wall time and how much of the mapping became
//! resident (pages actually touched).
//!
//! Run: `cargo run --release -p aisec-archive --example big_zip [GiB]`

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::time::Instant;

use aisec_archive::{Limits, ZipArchive};

fn local(name: &str, size: u32, crc: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

fn central(name: &str, size: u32, offset: u32, crc: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    h.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&[0; 12]);
    h.extend_from_slice(&offset.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssFile:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> std::io::Result<()> {
    let gib: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
        .clamp(1, 3);
    let tensor_len: u32 = (gib << 30) - 1;
    let pickle = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";
    let mut crc = flate2::Crc::new();
    crc.update(pickle);
    let dir = std::env::temp_dir().join(format!("aisec-big-zip-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("model.pt");
    let mut f = File::create(&path)?;
    let l1 = local("archive/data.pkl", pickle.len() as u32, crc.sum());
    f.write_all(&l1)?;
    f.write_all(pickle)?;
    let off2 = (l1.len() + pickle.len()) as u32;
    let l2 = local("archive/data/0", tensor_len, 0);
    f.write_all(&l2)?;
    let data_end = f.seek(SeekFrom::Current(tensor_len as i64))?;
    let mut cd = central("archive/data.pkl", pickle.len() as u32, 0, crc.sum());
    cd.extend(central("archive/data/0", tensor_len, off2, 0));
    let mut end = Vec::new();
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0, 0, 0, 0, 2, 0, 2, 0]);
    end.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    end.extend_from_slice(&(data_end as u32).to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    f.write_all(&cd)?;
    f.write_all(&end)?;
    drop(f);

    let file = File::open(&path)?;
    let map = map_file(&file)?;
    let before = resident_kib();
    let t = Instant::now();
    let z = ZipArchive::parse(&map).map_err(std::io::Error::other)?;
    let e = z
        .by_name("archive/data.pkl")
        .ok_or_else(|| std::io::Error::other("no pickle"))?;
    let pkl = z
        .read(e, &Limits::default())
        .map_err(std::io::Error::other)?;
    let took = t.elapsed();
    let after = resident_kib();
    println!(
        "file {} bytes, {} entries, pickle {} bytes, parse+read {:.3} ms, file pages made resident {} KiB, anomalies {}",
        map.len(),
        z.entries().len(),
        pkl.len(),
        took.as_secs_f64() * 1e3,
        after.saturating_sub(before),
        z.anomalies(&aisec_core::Location::path("model.pt")).len()
    );
    drop(map);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[allow(unsafe_code)]
fn map_file(f: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the file is private to this process for the example's lifetime.
    unsafe { memmap2::Mmap::map(f) }
}
