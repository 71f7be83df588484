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
/// error, whose message does not repeat the path (callers report it under
/// that path).
pub fn expand(path: &Path, follow_links: bool) -> io::Result<Vec<Input>> {
    let meta = std::fs::metadata(path)?;
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
            "not a regular file or directory",
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
            Ok(e) if e.file_type().is_symlink() => {
                // Without --follow-links, a Hugging Face cache's snapshot
                // links are still read: they point into the same repo's
                // blobs, so nothing outside the scanned folder is touched.
                if let Some(target) = hf_snapshot_target(e.path()) {
                    out.push(Input::File {
                        display: e.path().display().to_string(),
                        path: target,
                    });
                }
            }
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
    Ok(once_per_file(out))
}

/// Whether `name` is a Hugging Face hub cache repo folder
/// (`models--org--name`, `datasets--…`, `spaces--…`).
fn is_hf_repo(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    ["models--", "datasets--", "spaces--"]
        .iter()
        .any(|p| n.starts_with(p))
}

/// A blob of a Hugging Face cache (`models--org--name/blobs/<hash>`): the
/// content-addressed copy that snapshot links point to.
fn is_hf_blob(path: &Path) -> bool {
    let mut up = path.ancestors().skip(1);
    matches!(
        (up.next(), up.next()),
        (Some(b), Some(r)) if b.file_name().is_some_and(|n| n == "blobs")
            && r.file_name().is_some_and(is_hf_repo)
    )
}

/// For a link under `models--org--name/snapshots/REV/`, the regular file it
/// resolves to when that is inside the same repo's `blobs/` folder.
fn hf_snapshot_target(link: &Path) -> Option<PathBuf> {
    let repo = link
        .ancestors()
        .find(|a| a.file_name().is_some_and(is_hf_repo) && link.starts_with(a.join("snapshots")))?;
    let blobs = repo.join("blobs").canonicalize().ok()?;
    let target = link.canonicalize().ok()?;
    (target.starts_with(&blobs) && std::fs::metadata(&target).ok()?.is_file()).then_some(target)
}

/// A file's identity: device and inode on Unix, the canonical path
/// elsewhere.
fn identity(path: &Path) -> Option<(u64, u64, Option<PathBuf>)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some((m.dev(), m.ino(), None))
    }
    #[cfg(not(unix))]
    {
        Some((0, 0, Some(path.canonicalize().ok()?)))
    }
}

/// Keeps one input per file: with `--follow-links` (or a Hugging Face
/// cache) the same bytes are reached as `blobs/<hash>` and as every
/// snapshot link to them. The name kept is the first that is not a blob
/// path (`models--org--name/snapshots/REV/pytorch_model.bin`, which says
/// what the file is), else the first.
fn once_per_file(inputs: Vec<Input>) -> Vec<Input> {
    use std::collections::HashMap;
    let mut first: HashMap<(u64, u64, Option<PathBuf>), usize> = HashMap::new();
    let mut out: Vec<Input> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let Input::File { path, display } = &input else {
            out.push(input);
            continue;
        };
        let Some(id) = identity(path) else {
            out.push(input);
            continue;
        };
        match first.get(&id) {
            None => {
                first.insert(id, out.len());
                out.push(input);
            }
            Some(&i) => {
                if let Input::File { display: kept, .. } = &mut out[i] {
                    if is_hf_blob(Path::new(kept.as_str())) && !is_hf_blob(Path::new(display)) {
                        kept.clone_from(display);
                    }
                }
            }
        }
    }
    out
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
    file: Option<File>,
}

enum Inner {
    /// A map and its SIGBUS registration (declared first: unregistered
    /// before the map goes away).
    #[cfg(unix)]
    Map(crate::sigbus::MapGuard, memmap2::Mmap),
    #[cfg(not(unix))]
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Mapped {
    /// Opens and maps `path`.
    // unsafe: memory-mapping a file is unsafe in Rust (another process may
    // change it); mapping is what lets a scan of a multi-gigabyte checkpoint
    // touch only the pages its parsers read. See the SAFETY note below.
    #[allow(unsafe_code)]
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
                file: None,
            });
        }
        // SAFETY: the map is read-only and private to this process. If
        // another process truncates the file while it is mapped, reads past
        // the new end fault (SIGBUS); the handler in `sigbus` turns that
        // into zero pages and a flag, and `changed` reports it. A map that
        // cannot be registered with the handler is not used.
        let mapped = unsafe { memmap2::Mmap::map(&file) };
        #[cfg(unix)]
        let mapped = mapped.and_then(|m| match crate::sigbus::register(m.as_ptr(), m.len()) {
            Some(g) => Ok((g, m)),
            None => Err(io::Error::other("no SIGBUS guard")),
        });
        match mapped {
            Ok(m) => {
                // Parsers jump to a few places (a zip's central directory,
                // its pickle members); the kernel's default read-ahead would
                // pull megabytes of tensor data around each touch.
                // Small files keep the default: their few pages are cheaper
                // to fault in together.
                #[cfg(unix)]
                let advise = |m: &(crate::sigbus::MapGuard, memmap2::Mmap)| {
                    m.1.advise(memmap2::Advice::Random)
                };
                #[cfg(not(unix))]
                let advise = |m: &memmap2::Mmap| m.advise(memmap2::Advice::Random);
                if len >= RANDOM_ACCESS_FROM {
                    let _ = advise(&m);
                }
                #[cfg(unix)]
                let inner = Inner::Map(m.0, m.1);
                #[cfg(not(unix))]
                let inner = Inner::Map(m);
                Ok(Mapped {
                    inner,
                    len,
                    file: Some(file),
                })
            }
            Err(_) => {
                let mut buf = Vec::new();
                (&file)
                    .take(len)
                    .read_to_end(&mut buf)
                    .map_err(|e| annotate(path, e))?;
                Ok(Mapped {
                    len: buf.len() as u64,
                    inner: Inner::Owned(buf),
                    file: None,
                })
            }
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.inner {
            #[cfg(unix)]
            Inner::Map(_, m) => m,
            #[cfg(not(unix))]
            Inner::Map(m) => m,
            Inner::Owned(v) => v,
        }
    }

    /// Why the bytes can no longer be trusted, if the file changed under
    /// the map: a read faulted (truncation), or its length differs now.
    /// Files read into memory never change.
    pub fn changed(&self) -> Option<String> {
        #[cfg(unix)]
        if let Inner::Map(g, _) = &self.inner {
            if g.faulted() {
                return Some("it was truncated under the memory map".into());
            }
        }
        let file = self.file.as_ref()?;
        match file.metadata() {
            Ok(m) if m.len() == self.len => None,
            Ok(m) => Some(format!(
                "its length went from {} to {} bytes",
                self.len,
                m.len()
            )),
            Err(e) => Some(format!("it could not be checked again: {e}")),
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
        // the error says why; the scan report names the path once, as its subject
        let e = expand(Path::new("/definitely/not/here"), false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let scanner = crate::Scanner::new(crate::ScanOptions::default());
        let r = scanner.scan_paths(&[std::path::PathBuf::from("/definitely/not/here")], &|_| {});
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].subject, "/definitely/not/here");
        assert!(
            !r.errors[0].message.contains("/definitely"),
            "{}",
            r.errors[0].message
        );
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

    /// A Hugging Face cache: `blobs/<hash>` files with `snapshots/REV/NAME`
    /// links to them. Each blob is read once and named by its snapshot path,
    /// with or without --follow-links; an unreferenced blob keeps its name.
    #[cfg(unix)]
    #[test]
    fn hugging_face_cache_files_are_named_by_snapshot_and_read_once() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("hub/models--org--name");
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/rev1")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/rev2")).unwrap();
        std::fs::write(repo.join("blobs/aaaa"), b"weights").unwrap();
        std::fs::write(repo.join("blobs/bbbb"), b"config").unwrap();
        std::fs::write(repo.join("blobs/cccc"), b"orphan").unwrap();
        for (rev, name, blob) in [
            ("rev1", "pytorch_model.bin", "aaaa"),
            ("rev1", "config.json", "bbbb"),
            ("rev2", "pytorch_model.bin", "aaaa"),
        ] {
            std::os::unix::fs::symlink(
                format!("../../blobs/{blob}"),
                repo.join(format!("snapshots/{rev}/{name}")),
            )
            .unwrap();
        }
        for follow in [false, true] {
            let v = expand(&d.path().join("hub"), follow).unwrap();
            let names: Vec<String> = v
                .iter()
                .map(|i| match i {
                    Input::File { display, .. } => display
                        .strip_prefix(&d.path().display().to_string())
                        .unwrap()
                        .to_string(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                [
                    "/hub/models--org--name/blobs/cccc",
                    "/hub/models--org--name/snapshots/rev1/config.json",
                    "/hub/models--org--name/snapshots/rev1/pytorch_model.bin",
                ],
                "follow_links {follow}"
            );
        }
    }

    /// Issue 19: truncating a mapped file mid-scan killed the process with
    /// SIGBUS. Now the file is flagged and the scanner reports an error for
    /// it alone.
    #[cfg(unix)]
    #[test]
    fn truncation_under_the_map_is_an_error_not_a_crash() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.pkl");
        // A pickle that is large enough to be mapped.
        let mut pk = b"\x80\x02X".to_vec();
        let body = vec![b'a'; (SMALL_FILE as usize) * 4];
        pk.extend_from_slice(&(body.len() as u32).to_le_bytes());
        pk.extend_from_slice(&body);
        pk.extend_from_slice(b"cposix\nsystem\n.");
        std::fs::write(&p, &pk).unwrap();
        let m = Mapped::open(&p).unwrap();
        assert!(matches!(m.inner, Inner::Map(..)));
        assert!(m.changed().is_none());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let r = crate::Scanner::default().scan_mapped(&m, "big.pkl");
        let err = r.error.expect("an error for the truncated file");
        assert!(err.contains("truncated under the memory map"), "{err}");
        assert!(r.findings.is_empty());
        // Untouched files are unaffected.
        std::fs::write(&p, &pk).unwrap();
        let m = Mapped::open(&p).unwrap();
        let r = crate::Scanner::default().scan_mapped(&m, "big.pkl");
        assert!(r.error.is_none());
        assert!(!r.findings.is_empty());
    }
}
