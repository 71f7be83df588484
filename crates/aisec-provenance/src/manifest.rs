//! Hash manifests of a model folder, the way OpenSSF `model-signing`
//! (v1.1, `files` serialization) builds them.
//!
//! Semantics follow `model_signing/_serialization/file.py` and
//! `model_signing/hashing.py` (read, not copied):
//! - every regular file under the model folder is hashed with SHA-256 over
//!   its contents and recorded under its path relative to the folder, with
//!   `/` separators;
//! - a path is ignored when it equals an ignore path or lies below one
//!   (component-wise, as `PurePath.is_relative_to`); `.git`, `.gitattributes`,
//!   `.github` and `.gitignore` are ignored unless asked otherwise, and the
//!   signature file when it lies inside the folder;
//! - symbolic links are refused unless allowed; when allowed, a link to a
//!   file is hashed as that file's contents and a link to a folder is not
//!   followed (`Path.glob("**/*")` does not descend into linked folders);
//! - anything that is neither a file nor a folder (a FIFO, a socket, a
//!   broken link) is refused (and never opened, so a FIFO cannot hang us);
//! - the manifest is ordered by path components (Python's `PurePosixPath`
//!   ordering), and the statement's subject digest is SHA-256 over the raw
//!   file digests in that order.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::{hex, ProvenanceError};

/// The paths model-signing ignores by default (its `ignore_git_paths`).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// The signature file name model-signing writes by default.
pub const DEFAULT_SIGNATURE: &str = "model.sig";

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// How a folder is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashOptions {
    /// Paths relative to the model folder (with `/`) that are left out,
    /// with everything below them.
    pub ignore_paths: Vec<String>,
    /// Also leave out [`GIT_PATHS`].
    pub ignore_git_paths: bool,
    /// Hash the targets of symbolic links to files instead of refusing them.
    pub allow_symlinks: bool,
    /// Most files hashed before giving up (bounds memory on hostile trees).
    pub max_files: usize,
}

impl Default for HashOptions {
    fn default() -> Self {
        HashOptions {
            ignore_paths: Vec::new(),
            ignore_git_paths: true,
            allow_symlinks: false,
            max_files: 1_000_000,
        }
    }
}

impl HashOptions {
    /// Every ignored path: the given ones, then the git paths if asked.
    pub fn effective_ignores(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ignore_paths
            .iter()
            .map(|p| normalise(p))
            .filter(|p| !p.is_empty())
            .collect();
        if self.ignore_git_paths {
            v.extend(GIT_PATHS.iter().map(|s| s.to_string()));
        }
        v.sort();
        v.dedup();
        v
    }
}

/// `a/./b/` -> `a/b`; leading `./` and trailing `/` dropped.
fn normalise(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl HashOptions {
    /// Whether the relative path `rel` is left out (for listings that are
    /// not a local folder: a remote repository's files).
    pub fn ignores(&self, rel: &str) -> bool {
        self.effective_ignores().iter().any(|i| is_below(rel, i))
    }
}

/// True when `rel` equals `ignore` or lies below it.
fn is_below(rel: &str, ignore: &str) -> bool {
    rel == ignore
        || (rel.len() > ignore.len()
            && rel.starts_with(ignore)
            && rel.as_bytes().get(ignore.len()) == Some(&b'/'))
}

/// The sort key model-signing's manifest uses: path components, compared
/// one by one (Python `PurePosixPath` ordering). Rust compares `str` by
/// UTF-8 bytes, which orders like Unicode code points, as Python does.
pub fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// The serialization parameters recorded in a signed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    /// Always `files` here (the `shards` method is not supported).
    pub method: String,
    /// Always `sha256` here.
    pub hash_type: String,
    /// Whether symbolic links were hashed.
    pub allow_symlinks: bool,
    /// Ignored paths, relative to the model folder.
    pub ignore_paths: Vec<String>,
}

/// A model's manifest: every file and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Informative only (the folder's name).
    pub model_name: String,
    /// How it was made.
    pub serialization: Serialization,
    /// Files by relative path (`/`-separated).
    pub files: BTreeMap<String, Sha256Digest>,
}

impl Manifest {
    /// The files in manifest order (see [`path_order`]).
    pub fn ordered(&self) -> Vec<(&str, &Sha256Digest)> {
        let mut v: Vec<(&str, &Sha256Digest)> =
            self.files.iter().map(|(k, d)| (k.as_str(), d)).collect();
        v.sort_by(|a, b| path_order(a.0, b.0));
        v
    }

    /// The subject digest: SHA-256 over the raw file digests in manifest order.
    pub fn root_digest(&self) -> Sha256Digest {
        let mut h = Sha256::new();
        for (_, d) in self.ordered() {
            h.update(d);
        }
        h.finalize().into()
    }

    /// The in-toto statement model-signing signs for this manifest.
    pub fn statement(&self) -> serde_json::Value {
        let resources: Vec<serde_json::Value> = self
            .ordered()
            .into_iter()
            .map(|(name, d)| {
                serde_json::json!({"name": name, "algorithm": "sha256", "digest": hex::encode(d)})
            })
            .collect();
        let mut ser = serde_json::json!({
            "method": self.serialization.method,
            "hash_type": self.serialization.hash_type,
            "allow_symlinks": self.serialization.allow_symlinks,
        });
        if !self.serialization.ignore_paths.is_empty() {
            ser["ignore_paths"] = serde_json::json!(self.serialization.ignore_paths);
        }
        serde_json::json!({
            "_type": crate::statement::STATEMENT_TYPE,
            "subject": [{"name": self.model_name, "digest": {"sha256": hex::encode(&self.root_digest())}}],
            "predicateType": crate::statement::PREDICATE_TYPE,
            "predicate": {"serialization": ser, "resources": resources},
        })
    }
}

/// What hashing a folder produced.
#[derive(Debug, Clone)]
pub struct HashOutcome {
    /// The manifest of the files hashed.
    pub manifest: Manifest,
    /// Symbolic links met while links were not allowed (relative paths);
    /// they are not in the manifest.
    pub symlinks: Vec<String>,
    /// Bytes read.
    pub bytes: u64,
}

/// Hashes `root` into a manifest, refusing symbolic links unless allowed
/// (as model-signing does when creating a manifest).
pub fn hash_folder(root: &Path, opts: &HashOptions) -> Result<HashOutcome, ProvenanceError> {
    let out = walk(root, opts)?;
    if let Some(link) = out.symlinks.first() {
        return Err(ProvenanceError::Symlink(link.clone()));
    }
    Ok(out)
}

/// Hashes `root`, recording symbolic links (when not allowed) instead of
/// refusing them; the verifier turns them into findings.
pub(crate) fn walk(root: &Path, opts: &HashOptions) -> Result<HashOutcome, ProvenanceError> {
    let meta = fs::metadata(root).map_err(|e| ProvenanceError::io(root, e))?;
    if !meta.is_dir() {
        return Err(ProvenanceError::NotAFolder(root.display().to_string()));
    }
    let ignores = opts.effective_ignores();
    let ignored = |rel: &str| ignores.iter().any(|i| is_below(rel, i));
    let mut files = BTreeMap::new();
    let mut symlinks = Vec::new();
    let mut bytes = 0u64;
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| ProvenanceError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ProvenanceError::io(&dir, e))?;
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| ProvenanceError::BadName(entry.path().display().to_string()))?;
            let rel = if rel_dir.is_empty() {
                name.to_string()
            } else {
                format!("{rel_dir}/{name}")
            };
            if ignored(&rel) {
                continue;
            }
            let path = entry.path();
            let ft = entry
                .file_type()
                .map_err(|e| ProvenanceError::io(&path, e))?;
            if ft.is_symlink() {
                if !opts.allow_symlinks {
                    symlinks.push(rel);
                    continue;
                }
                // Followed: a file is hashed, a folder is not descended.
                let target = fs::metadata(&path).map_err(|e| ProvenanceError::io(&path, e))?;
                if target.is_dir() {
                    continue;
                }
                if !target.is_file() {
                    return Err(ProvenanceError::Special(rel));
                }
            } else if ft.is_dir() {
                stack.push((path, rel));
                continue;
            } else if !ft.is_file() {
                return Err(ProvenanceError::Special(rel));
            }
            if files.len() >= opts.max_files {
                return Err(ProvenanceError::TooManyFiles(opts.max_files));
            }
            let (digest, n) = hash_file(&path)?;
            bytes += n;
            files.insert(rel, digest);
        }
    }
    symlinks.sort_by(|a, b| path_order(a, b));
    Ok(HashOutcome {
        manifest: Manifest {
            model_name: model_name(root),
            serialization: Serialization {
                method: "files".into(),
                hash_type: "sha256".into(),
                allow_symlinks: opts.allow_symlinks,
                ignore_paths: ignores,
            },
            files,
        },
        symlinks,
        bytes,
    })
}

/// The folder's last component (resolved when it is `.` or `..`).
fn model_name(root: &Path) -> String {
    match root.file_name().and_then(|n| n.to_str()) {
        Some(n) if !n.is_empty() && n != ".." => n.to_string(),
        _ => fs::canonicalize(root)
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .unwrap_or_default(),
    }
}

/// SHA-256 of a file's contents, streamed; returns the digest and length.
pub fn hash_file(path: &Path) -> Result<(Sha256Digest, u64), ProvenanceError> {
    let mut f = fs::File::open(path).map_err(|e| ProvenanceError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| ProvenanceError::io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((h.finalize().into(), n))
}

/// Where a signature path lies inside `root`, as an ignore path (`None`
/// when it is outside the folder).
pub fn relative_inside(root: &Path, path: &Path) -> Option<String> {
    let root = fs::canonicalize(root).ok()?;
    let abs = match fs::canonicalize(path) {
        Ok(p) => p,
        // Not written yet: resolve its folder instead.
        Err(_) => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = fs::canonicalize(parent.unwrap_or(Path::new("."))).ok()?;
            parent.join(path.file_name()?)
        }
    };
    let rel = abs.strip_prefix(&root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let s = parts?.join("/");
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    #[test]
    fn order_is_by_components_like_python_purepath() {
        let mut v = vec!["a-c", "a/b", "B", "a", "a/b/c", "ab"];
        v.sort_by(|a, b| path_order(a, b));
        // '/' sorts after '-' as a character, but "a" < "a-c" as a component.
        assert_eq!(v, ["B", "a", "a/b", "a/b/c", "a-c", "ab"]);
    }

    #[test]
    fn hashes_files_relative_and_ignores_git_and_given_paths() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("m");
        write(&root, "config.json", b"hello\n");
        write(&root, "sub/w.bin", b"weights");
        write(&root, ".git/HEAD", b"x");
        write(&root, "model.sig", b"{}");
        write(&root, "notes/a.txt", b"n");
        let opts = HashOptions {
            ignore_paths: vec!["model.sig".into(), "./notes/".into()],
            ..HashOptions::default()
        };
        let out = hash_folder(&root, &opts).unwrap();
        let m = &out.manifest;
        assert_eq!(m.model_name, "m");
        assert_eq!(
            m.files.keys().collect::<Vec<_>>(),
            ["config.json", "sub/w.bin"]
        );
        // The digests model-signing 1.1.1 recorded for these two files.
        assert_eq!(
            hex::encode(&m.files["config.json"]),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(
            hex::encode(&m.root_digest()),
            "08c7b4ddfc91981ca1271c1ba5f71bb9ba85966d83de5e78b9f026c961f09f65"
        );
        assert_eq!(out.bytes, 13);
        assert!(m.serialization.ignore_paths.contains(&"notes".to_string()));
        let st = m.statement();
        assert_eq!(st["predicate"]["resources"][1]["name"], "sub/w.bin");
        assert_eq!(st["predicate"]["serialization"]["allow_symlinks"], false);
    }

    #[test]
    fn ignore_is_component_wise() {
        assert!(is_below(".git/HEAD", ".git"));
        assert!(is_below(".git", ".git"));
        assert!(!is_below(".gitfoo", ".git"));
        assert!(!is_below("a/.git", ".git"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_unless_allowed_and_fifos_never_opened() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(root, "real.bin", b"abc");
        std::os::unix::fs::symlink(root.join("real.bin"), root.join("link.bin")).unwrap();
        std::os::unix::fs::symlink(root, root.join("loop")).unwrap();
        let err = hash_folder(root, &HashOptions::default()).unwrap_err();
        assert!(
            matches!(err, ProvenanceError::Symlink(ref p) if p == "link.bin"),
            "{err}"
        );
        let opts = HashOptions {
            allow_symlinks: true,
            ..HashOptions::default()
        };
        let out = hash_folder(root, &opts).unwrap();
        // The file link is hashed as its target; the folder link is not followed.
        assert_eq!(out.manifest.files.len(), 2);
        assert_eq!(
            out.manifest.files["link.bin"],
            out.manifest.files["real.bin"]
        );
        let fifo = root.join("pipe");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            let err = hash_folder(root, &opts).unwrap_err();
            assert!(
                matches!(err, ProvenanceError::Special(ref p) if p == "pipe"),
                "{err}"
            );
        }
    }

    #[test]
    fn file_count_is_bounded() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..5 {
            write(t.path(), &format!("f{i}"), b"x");
        }
        let opts = HashOptions {
            max_files: 3,
            ..HashOptions::default()
        };
        assert!(matches!(
            hash_folder(t.path(), &opts),
            Err(ProvenanceError::TooManyFiles(3))
        ));
    }

    #[test]
    fn signature_inside_the_folder_becomes_an_ignore_path() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "a/b.bin", b"x");
        assert_eq!(
            relative_inside(t.path(), &t.path().join("a/model.sig")).as_deref(),
            Some("a/model.sig")
        );
        let other = tempfile::tempdir().unwrap();
        assert_eq!(relative_inside(t.path(), &other.path().join("m.sig")), None);
    }
}
