//! Turning the user's paths into inputs, and reading them without copying.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One thing to scan.
#[derive(Debug, Clone)]
pub enum Input {
    /// A regular file.
    File {
        /// Where it is.
        path: PathBuf,
        /// How to name it in the report.
        display: String,
    },
    /// Standard input.
    Stdin,
    /// A path found during the walk that could not be read.
    Unreadable {
        /// How to name it in the report.
        display: String,
        /// Why.
        message: String,
    },
}

/// Expands a path: a file is itself, a directory is every regular file
/// below it (sorted, so reports are stable). Errors below a directory
/// become [`Input::Unreadable`] entries; a missing top-level path is an
/// error.
pub fn expand(path: &Path, follow_links: bool) -> io::Result<Vec<Input>> {
    let meta = std::fs::metadata(path).map_err(|e| annotate(path, e))?;
    let display = path.display().to_string();
    if meta.is_file() {
        return Ok(vec![Input::File {
            path: path.to_path_buf(),
            display,
        }]);
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{display}: not a regular file or directory"),
        ));
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(path)
        .follow_links(follow_links)
        .sort_by_file_name()
    {
        match entry {
            Ok(e) if e.file_type().is_file() => out.push(Input::File {
                display: e.path().display().to_string(),
                path: e.into_path(),
            }),
            Ok(_) => {}
            Err(e) => out.push(Input::Unreadable {
                display: e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| display.clone()),
                message: e.to_string(),
            }),
        }
    }
    Ok(out)
}

fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Mapped files from this size on are read without kernel read-ahead.
const RANDOM_ACCESS_FROM: u64 = 64 << 20;

/// Files up to this size are read rather than mapped.
const SMALL_FILE: u64 = 256 << 10;

/// A file's bytes: memory-mapped read-only when possible (only pages a
/// parser touches are read), read into memory otherwise.
pub struct Mapped {
    inner: Inner,
    len: u64,
}

enum Inner {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapped {
    /// Opens and maps `path`.
    pub fn open(path: &Path) -> io::Result<Mapped> {
        let file = File::open(path).map_err(|e| annotate(path, e))?;
        let meta = file.metadata().map_err(|e| annotate(path, e))?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a regular file", path.display()),
            ));
        }
        let len = meta.len();
        if len <= SMALL_FILE {
            // Setting up and tearing down a map costs more than copying a
            // small file.
            let mut buf = Vec::with_capacity(len as usize);
            (&file)
                .take(SMALL_FILE)
                .read_to_end(&mut buf)
                .map_err(|e| annotate(path, e))?;
            return Ok(Mapped {
                len: buf.len() as u64,
                inner: Inner::Owned(buf),
            });
        }
        // SAFETY: the map is read-only and private to this process. If
        // another process truncates the file while it is mapped, reads past
        // the new end fault; that is the accepted cost of not copying
        // multi-gigabyte checkpoints (ripgrep makes the same trade).
        match unsafe { memmap2::Mmap::map(&file) } {
            Ok(m) => {
                // Parsers jump to a few places (a zip's central directory,
                // its pickle members); the kernel's default read-ahead would
                // pull megabytes of tensor data around each touch.
                // Small files keep the default: their few pages are cheaper
                // to fault in together.
                if len >= RANDOM_ACCESS_FROM {
                    let _ = m.advise(memmap2::Advice::Random);
                }
                Ok(Mapped {
                    inner: Inner::Map(m),
                    len,
                })
            }
            Err(_) => {
                let mut buf = Vec::new();
                (&file)
                    .take(len)
                    .read_to_end(&mut buf)
                    .map_err(|e| annotate(path, e))?;
                Ok(Mapped {
                    inner: Inner::Owned(buf),
                    len,
                })
            }
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Map(m) => m,
            Inner::Owned(v) => v,
        }
    }

    /// File length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Reads standard input, refusing more than `max` bytes.
pub fn read_stdin(max: u64) -> io::Result<Vec<u8>> {
    read_bounded(io::stdin().lock(), max, "standard input")
}

/// Reads `r` in 1 MiB chunks, stopping with an error as soon as more than
/// `max` bytes arrive: an endless source (`/dev/zero`) costs `max` bytes
/// and the time to read them, never more.
pub fn read_bounded(mut r: impl Read, max: u64, what: &str) -> io::Result<Vec<u8>> {
    const CHUNK: usize = 1 << 20;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.len() as u64 + n as u64 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} is larger than the {max}-byte limit"),
            ));
        }
        if buf.capacity() - buf.len() < n {
            // Grow by doubling, but never past the bound.
            let want = (buf.capacity().max(CHUNK) * 2).min(max as usize);
            buf.reserve_exact(want.saturating_sub(buf.len()).max(n));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_input_stops_at_the_bound() {
        // io::repeat never ends, like /dev/zero.
        let e = read_bounded(io::repeat(0), 8 << 20, "standard input").unwrap_err();
        assert!(e.to_string().contains("8388608-byte limit"), "{e}");
        let v = read_bounded(&b"abc"[..], 3, "x").unwrap();
        assert_eq!(v, b"abc");
        assert!(read_bounded(&b"abcd"[..], 3, "x").is_err());
        // Capacity never exceeds the bound (no doubling past it).
        let v = read_bounded(io::repeat(1).take(5 << 20), 6 << 20, "x").unwrap();
        assert_eq!(v.len(), 5 << 20);
        assert!(v.capacity() <= 6 << 20, "{}", v.capacity());
    }

    #[test]
    fn missing_path_is_a_clear_error() {
        let e = expand(Path::new("/definitely/not/here"), false).unwrap_err();
        assert!(e.to_string().contains("/definitely/not/here"), "{e}");
    }

    #[test]
    fn directory_walk_is_sorted_and_maps_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.bin"), b"bb").unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/x.pkl"), b"").unwrap();
        let v = expand(d.path(), false).unwrap();
        let names: Vec<String> = v
            .iter()
            .map(|i| match i {
                Input::File { display, .. } => display.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            names[0].ends_with("a/x.pkl") && names[1].ends_with("b.bin"),
            "{names:?}"
        );
        let m = Mapped::open(&d.path().join("b.bin")).unwrap();
        assert_eq!(m.bytes(), b"bb");
        assert!(Mapped::open(&d.path().join("a/x.pkl")).unwrap().is_empty());
    }
}
