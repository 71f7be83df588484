//! The Hugging Face hub: `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`
//! lists a revision's files (`siblings`, with sizes and blob ids) and its
//! commit (`sha`); files are read from `{endpoint}/{repo}/resolve/{sha}/{path}`
//! with `Range`. The token comes from `HF_TOKEN`, the endpoint from
//! `HF_ENDPOINT`.

use serde::Deserialize;

use crate::http::Http;
use crate::plan::{Fetch, RangeGet};
use crate::{Listing, ObjectMeta, RemoteError, RemoteOptions};

/// Largest listing document read (a repo of 100k files is ~15 MB).
const MAX_LISTING: u64 = 64 << 20;

#[derive(Deserialize)]
struct Info {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    size: Option<u64>,
    sha256: Option<String>,
}

/// Percent-encodes one path segment.
fn enc(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn enc_path(p: &str) -> String {
    p.split('/').map(enc).collect::<Vec<_>>().join("/")
}

pub(crate) async fn list(
    http: &Http,
    opts: &RemoteOptions,
    repo: &str,
    rev: &str,
) -> Result<Listing, RemoteError> {
    let base = opts.hf_endpoint.trim_end_matches('/');
    let url = format!(
        "{base}/api/models/{}/revision/{}?blobs=true",
        enc_path(repo),
        enc(rev)
    );
    let body = http
        .get_limited(&url, opts.hf_token.as_deref(), MAX_LISTING)
        .await?;
    let info: Info = serde_json::from_slice(&body).map_err(|e| {
        RemoteError::Listing(format!("hf://{repo}@{rev}: listing does not parse: {e}"))
    })?;
    let sha = info
        .sha
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            RemoteError::Listing(format!("hf://{repo}@{rev}: listing has no commit sha"))
        })?;
    let mut objects = Vec::new();
    for s in info.siblings {
        if !crate::source::safe_key(&s.rfilename) {
            tracing::warn!(file = %s.rfilename, "hub listing names a file outside the repo; ignored");
            continue;
        }
        let size = s.lfs.as_ref().and_then(|l| l.size).or(s.size);
        let Some(size) = size else {
            return Err(RemoteError::Listing(format!(
                "hf://{repo}@{rev}: no size for {} (the hub was asked for blobs=true)",
                s.rfilename
            )));
        };
        let version = s
            .lfs
            .as_ref()
            .and_then(|l| l.sha256.clone())
            .or(s.blob_id)
            .or_else(|| Some(sha.clone()));
        objects.push(ObjectMeta {
            id: format!("hf://{repo}/{}", s.rfilename),
            name: format!("hf://{repo}@{sha}/{}", s.rfilename),
            url: format!(
                "{base}/{}/resolve/{sha}/{}",
                enc_path(repo),
                enc_path(&s.rfilename)
            ),
            key: s.rfilename,
            size,
            version,
        });
    }
    Ok(Listing {
        source: format!("hf://{repo}@{rev}"),
        revision: Some(sha),
        objects,
    })
}

/// Reads ranges of one URL.
pub(crate) struct Getter<'a> {
    pub(crate) http: &'a Http,
    pub(crate) url: String,
    pub(crate) token: Option<String>,
}

impl RangeGet for Getter<'_> {
    fn get(&self, start: u64, end: u64) -> Fetch<'_> {
        Box::pin(
            self.http
                .get_range(&self.url, self.token.as_deref(), start, end),
        )
    }
}
