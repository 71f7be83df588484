//! Remote source strings: `hf://ORG/NAME[@REV]`, `s3://BUCKET[/PREFIX]`,
//! `http(s)://HOST/PATH`.

use crate::RemoteError;

/// A place to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Hugging Face hub model repository at a revision (default `main`).
    Hub {
        /// `org/name`.
        repo: String,
        /// Branch, tag or commit.
        rev: String,
    },
    /// Every object below a prefix of an S3-compatible bucket.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix (may be empty).
        prefix: String,
    },
    /// One object at an HTTP(S) URL.
    Url(String),
}

impl Source {
    /// Whether `s` names a remote source rather than a local path.
    pub fn is_remote(s: &str) -> bool {
        ["hf://", "s3://", "http://", "https://"]
            .iter()
            .any(|p| s.starts_with(p))
    }

    /// Parses a source string.
    pub fn parse(s: &str) -> Result<Source, RemoteError> {
        let bad = |why: &str| RemoteError::Source(format!("{s}: {why}"));
        if let Some(rest) = s.strip_prefix("hf://") {
            let rest = rest.strip_prefix("models/").unwrap_or(rest);
            let (repo, rev) = match rest.split_once('@') {
                Some((r, v)) => (r, v),
                None => (rest, "main"),
            };
            let repo = repo.trim_end_matches('/');
            let parts: Vec<&str> = repo.split('/').collect();
            let ok_part = |p: &str| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            if parts.len() != 2 || !parts.iter().all(|p| ok_part(p)) {
                return Err(bad("expected hf://ORG/NAME[@REV]"));
            }
            if rev.is_empty()
                || rev.len() > 256
                || rev.contains("..")
                || rev.bytes().any(|b| b.is_ascii_control() || b == b' ')
            {
                return Err(bad("bad revision"));
            }
            return Ok(Source::Hub {
                repo: repo.to_string(),
                rev: rev.to_string(),
            });
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.len() > 255 {
                return Err(bad("expected s3://BUCKET[/PREFIX]"));
            }
            return Ok(Source::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            let url = reqwest::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
            if url.host_str().is_none() {
                return Err(bad("URL has no host"));
            }
            return Ok(Source::Url(s.to_string()));
        }
        Err(bad(
            "not a remote source (hf://, s3://, http:// or https://)",
        ))
    }

    /// The source as written, normalised.
    pub fn display(&self) -> String {
        match self {
            Source::Hub { repo, rev } => format!("hf://{repo}@{rev}"),
            Source::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Source::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Source::Url(u) => u.clone(),
        }
    }
}

/// A stable 64-bit hash of a source string (FNV-1a): the same on every
/// machine, platform and aisec version, so shards never move.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.trim().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A shard `K/N` (0 <= K < N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker's index, from 0.
    pub index: u64,
    /// How many workers.
    pub count: u64,
}

impl Shard {
    /// Parses `K/N`.
    pub fn parse(s: &str) -> Result<Shard, RemoteError> {
        let bad = || RemoteError::Source(format!("--shard {s}: expected K/N with 0 <= K < N"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard owns `source`.
    pub fn owns(&self, source: &str) -> bool {
        stable_hash(source) % self.count == self.index
    }
}

/// Hub-side path check: a file name from a listing becomes a path below
/// the scan image, so it must stay there.
pub(crate) fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 4096
        && !key.starts_with('/')
        && !key.contains('\0')
        && !key.contains('\\')
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            Source::parse("hf://openai-community/gpt2").unwrap(),
            Source::Hub {
                repo: "openai-community/gpt2".into(),
                rev: "main".into()
            }
        );
        assert_eq!(
            Source::parse("hf://a/b@v1.0").unwrap(),
            Source::Hub {
                repo: "a/b".into(),
                rev: "v1.0".into()
            }
        );
        assert_eq!(
            Source::parse("s3://bkt/some/prefix").unwrap(),
            Source::S3 {
                bucket: "bkt".into(),
                prefix: "some/prefix".into()
            }
        );
        assert!(Source::parse("hf://a").is_err());
        assert!(Source::parse("hf://a/../b").is_err());
        assert!(Source::parse("hf://a/b/c").is_err());
        assert!(Source::parse("s3://").is_err());
        assert!(Source::parse("ftp://x/y").is_err());
        assert!(Source::parse("https://").is_err());
    }

    #[test]
    fn shards_cover_a_list_exactly_once() {
        let list: Vec<String> = (0..2000)
            .map(|i| format!("hf://org{}/m{i}", i % 7))
            .collect();
        for n in [1u64, 2, 3, 8, 13] {
            let mut owners = vec![0u32; list.len()];
            for k in 0..n {
                let s = Shard { index: k, count: n };
                for (i, src) in list.iter().enumerate() {
                    if s.owns(src) {
                        owners[i] += 1;
                    }
                }
            }
            assert!(owners.iter().all(|&c| c == 1), "n={n}");
        }
        // Balanced enough: no shard of 8 gets more than twice its share.
        let per: Vec<usize> = (0..8)
            .map(|k| {
                list.iter()
                    .filter(|s| Shard { index: k, count: 8 }.owns(s))
                    .count()
            })
            .collect();
        assert!(per.iter().all(|&c| c > 125 && c < 500), "{per:?}");
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { index: 2, count: 5 });
    }

    #[test]
    fn keys_stay_inside_the_image() {
        assert!(safe_key("a/b.bin"));
        for k in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a\\b",
            "./a",
        ] {
            assert!(!safe_key(k), "{k}");
        }
    }

    #[test]
    fn the_hash_is_fixed() {
        // FNV-1a test vector: any change here moves every shard.
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
