//! `aisec-remote`: scan models where they are stored.
//!
//! Sources are Hugging Face hub repositories (`hf://ORG/NAME[@REV]`, read
//! through the hub's listing and `resolve` API), S3-compatible buckets
//! (`s3://BUCKET/PREFIX`, through `object_store`) and plain `http(s)://`
//! URLs. Each object is read with ranged requests following a per-format
//! [`plan`](crate::plan): only the bytes the scanner parses travel (a zip's
//! central directory, local headers and pickles; a safetensors or GGUF
//! header; an HDF5 file's metadata), and the rest of the object is a hole
//! in a sparse scan image.
//! The image is a temporary folder of sparse files with the objects'
//! names and sizes, so the unchanged local scanner reads it exactly as it
//! reads the same files on disk (sibling files included: a config's
//! `auto_map` modules), and findings are then renamed to the remote
//! objects (`hf://org/name@sha/path`, `s3://bucket/key`, the URL).
//!
//! Requests are retried with exponential backoff (429/503 honour
//! `Retry-After`), time out, share a per-host concurrency limit, and every
//! object's reads stop at `max_object_bytes`.

mod digest;
mod http;
mod hub;
pub mod hubserver;
mod image;
mod plan;
mod s3;
pub mod source;

use std::sync::Arc;
use std::time::Duration;

use aisec_core::Finding;
use aisec_scan::Scanner;
use serde::{Deserialize, Serialize};

pub use digest::ObjectDigest;
pub use source::{stable_hash, Shard, Source};

/// Errors of remote reading.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The source string is not one this crate reads.
    #[error("{0}")]
    Source(String),
    /// Transport failure after retries.
    #[error("{0}")]
    Http(String),
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// What was asked for.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Reading would pass a bound.
    #[error("{what} needs more than the {limit}-byte bound")]
    TooLarge {
        /// What was being read.
        what: String,
        /// The bound.
        limit: u64,
    },
    /// A listing that does not parse.
    #[error("{0}")]
    Listing(String),
    /// The object store said no.
    #[error("{0}")]
    Store(String),
    /// Writing the scan image failed.
    #[error("scan image: {0}")]
    Io(#[from] std::io::Error),
}

/// Tuning for remote reads.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Most bytes read from one object (default 256 MiB).
    pub max_object_bytes: u64,
    /// Objects up to this size are read whole in one request (default
    /// 256 KiB: above it, a sniff of an unknown file, about 80 KiB, saves
    /// more than two thirds of the bytes for a few more requests).
    pub whole_below: u64,
    /// Most objects taken from one source (default 100 000).
    pub max_objects: usize,
    /// Requests in flight per host (default 8).
    pub per_host: usize,
    /// Retries after the first attempt (default 4).
    pub retries: u32,
    /// First backoff; doubles each retry (default 250 ms).
    pub backoff: Duration,
    /// Connection timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout (default 120 s).
    pub request_timeout: Duration,
    /// Hub endpoint (default `HF_ENDPOINT` or `https://huggingface.co`).
    pub hf_endpoint: String,
    /// Hub token (default `HF_TOKEN`).
    pub hf_token: Option<String>,
    /// S3 settings over those `object_store` reads from the environment.
    pub s3: S3Options,
}

/// S3 settings given explicitly; each `None` leaves the standard
/// environment variable (`AWS_ACCESS_KEY_ID`...) in charge.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible store (default `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret key.
    pub secret_access_key: Option<String>,
    /// Region.
    pub region: Option<String>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            max_object_bytes: 256 << 20,
            whole_below: 256 << 10,
            max_objects: 100_000,
            per_host: 8,
            retries: 4,
            backoff: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            hf_endpoint: std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "https://huggingface.co".into()),
            hf_token: std::env::var("HF_TOKEN").ok().filter(|s| !s.is_empty()),
            s3: S3Options {
                endpoint: std::env::var("AWS_ENDPOINT_URL")
                    .ok()
                    .filter(|s| !s.is_empty()),
                ..S3Options::default()
            },
        }
    }
}

/// One object of a source, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Path inside the source (`config.json`, `sub/model.pt`).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// What changes when the content does: the hub's blob id, the S3 ETag,
    /// the HTTP ETag or Last-Modified.
    pub version: Option<String>,
    /// Stable identity without the revision (`hf://org/name/path`), the
    /// key of incremental state.
    pub id: String,
    /// How findings name it (`hf://org/name@sha/path`).
    pub name: String,
    /// Where its bytes are read: a URL, or the key in an S3 bucket.
    pub url: String,
}

/// A listed source.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The source as given.
    pub source: String,
    /// The resolved revision (a hub commit), when the source has one.
    pub revision: Option<String>,
    /// Its objects, sorted by key.
    pub objects: Vec<ObjectMeta>,
}

/// The scan of one remote object: one JSON Lines record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectScan {
    /// The source it came from.
    pub source: String,
    /// The object's name in findings.
    pub object: String,
    /// Identity without revision (incremental state key).
    pub id: String,
    /// Version (blob id / ETag).
    #[serde(default)]
    pub version: Option<String>,
    /// Bytes stored.
    pub size: u64,
    /// Bytes that travelled.
    pub bytes_read: u64,
    /// The fetch plan used (`whole`, `zip`, `safetensors`, `gguf`, `hdf5`,
    /// `sniff`).
    #[serde(default)]
    pub plan: String,
    /// Detected format.
    pub format: String,
    /// Findings in it.
    pub findings: Vec<Finding>,
    /// Why it could not be scanned.
    #[serde(default)]
    pub error: Option<String>,
}

/// Reads remote sources and scans them.
pub struct Remote {
    opts: RemoteOptions,
    http: http::Http,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("opts", &self.opts).finish()
    }
}

impl Remote {
    /// A reader with these options (and its own async runtime).
    pub fn new(opts: RemoteOptions) -> Result<Remote, RemoteError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let http = http::Http::new(&opts)?;
        Ok(Remote { opts, http, rt })
    }

    /// The options in use.
    pub fn options(&self) -> &RemoteOptions {
        &self.opts
    }

    /// Lists a source's objects.
    pub fn list(&self, source: &Source) -> Result<Listing, RemoteError> {
        self.rt.block_on(self.list_async(source))
    }

    async fn list_async(&self, source: &Source) -> Result<Listing, RemoteError> {
        let mut l = match source {
            Source::Hub { repo, rev } => hub::list(&self.http, &self.opts, repo, rev).await?,
            Source::S3 { bucket, prefix } => s3::list(&self.opts, bucket, prefix).await?,
            Source::Url(url) => {
                let h = self.http.head(url, None).await?;
                let key = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| {
                        u.path_segments()
                            .and_then(|mut s| s.next_back().map(str::to_string))
                    })
                    .filter(|k| source::safe_key(k))
                    .unwrap_or_else(|| "object".into());
                Listing {
                    source: url.clone(),
                    revision: None,
                    objects: vec![ObjectMeta {
                        key,
                        size: h.size,
                        version: h.etag,
                        id: url.clone(),
                        name: url.clone(),
                        url: url.clone(),
                    }],
                }
            }
        };
        l.objects.sort_by(|a, b| a.key.cmp(&b.key));
        if l.objects.len() > self.opts.max_objects {
            return Err(RemoteError::TooLarge {
                what: format!("{}: listing of {} objects", l.source, l.objects.len()),
                limit: self.opts.max_objects as u64,
            });
        }
        Ok(l)
    }

    /// Fetches the listed objects for which `wanted` says yes (per plan),
    /// builds the scan image, scans it, and returns one record per object.
    pub fn scan(
        &self,
        scanner: &Scanner,
        listing: &Listing,
        wanted: &dyn Fn(&ObjectMeta) -> bool,
    ) -> Result<Vec<ObjectScan>, RemoteError> {
        let objects: Vec<&ObjectMeta> = listing.objects.iter().filter(|o| wanted(o)).collect();
        let img = image::Image::new()?;
        let store: Option<Arc<dyn object_store::ObjectStore>> =
            match Source::parse(&listing.source)? {
                Source::S3 { bucket, .. } => Some(s3::store(&self.opts, &bucket)?),
                _ => None,
            };
        // Objects in flight at once: each holds at most `max_object_bytes`
        // until it is written to the image.
        let in_flight = self.opts.per_host.max(1);
        let fetched: Vec<Result<(plan::Sparse, std::path::PathBuf), (RemoteError, u64)>> =
            self.rt.block_on(async {
                use futures::StreamExt;
                futures::stream::iter(objects.iter().map(|o| {
                    let store = store.clone();
                    let img = &img;
                    async move {
                        let get = self.getter(o, store);
                        let mut sparse = plan::fetch(
                            get.as_ref(),
                            &o.key,
                            o.size,
                            self.opts.whole_below,
                            self.opts.max_object_bytes,
                        )
                        .await?;
                        let path = img
                            .write(&o.key, &sparse)
                            .map_err(|e| (RemoteError::Io(e), sparse.moved))?;
                        sparse.ranges = Vec::new();
                        Ok((sparse, path))
                    }
                }))
                .buffered(in_flight)
                .collect()
                .await
            });
        let mut out = Vec::with_capacity(objects.len());
        let mut paths = Vec::new();
        for (o, f) in objects.iter().zip(fetched) {
            let mut rec = ObjectScan {
                source: listing.source.clone(),
                object: o.name.clone(),
                id: o.id.clone(),
                version: o.version.clone(),
                size: o.size,
                bytes_read: 0,
                plan: String::new(),
                format: "unknown".into(),
                findings: Vec::new(),
                error: None,
            };
            match f {
                Ok((sparse, path)) => {
                    rec.bytes_read = sparse.moved;
                    rec.plan = sparse.plan.to_string();
                    paths.push(Some(path));
                }
                Err((e, moved)) => {
                    // What travelled before the plan stopped still counts.
                    rec.bytes_read = moved;
                    rec.error = Some(format!("not scanned: {e}"));
                    paths.push(None);
                }
            }
            out.push(rec);
        }
        // Every object is on disk before any is scanned: a config's
        // auto_map reads its sibling modules.
        let prefix = img.prefix();
        let results: Vec<Option<aisec_scan::FileResult>> = {
            use rayon::prelude::*;
            paths
                .par_iter()
                .map(|p| {
                    p.as_ref()
                        .map(|p| scanner.scan_file(p, &p.display().to_string()))
                })
                .collect()
        };
        for ((rec, r), o) in out.iter_mut().zip(results).zip(&objects) {
            let Some(r) = r else { continue };
            // Image paths (the object's and its siblings') become remote names.
            let base = format!("{}/", listing_base(o));
            rec.format = r.format.name().to_string();
            rec.error = r.error.map(|e| rename(&e, &prefix, &base));
            rec.findings = r
                .findings
                .into_iter()
                .map(|mut f| {
                    f.location.path = rename(&f.location.path, &prefix, &base);
                    f.evidence = rename(&f.evidence, &prefix, &base);
                    f
                })
                .collect();
        }
        Ok(out)
    }

    fn getter<'a>(
        &'a self,
        o: &'a ObjectMeta,
        store: Option<Arc<dyn object_store::ObjectStore>>,
    ) -> Box<dyn plan::RangeGet + Send + 'a> {
        match store {
            Some(store) => Box::new(s3::Getter {
                store,
                key: o.url.clone(),
            }),
            None => Box::new(hub::Getter {
                http: &self.http,
                url: o.url.clone(),
                token: if o.name.starts_with("hf://") {
                    self.opts.hf_token.clone()
                } else {
                    None
                },
            }),
        }
    }
}

/// An error with its `source()` chain (`error sending request: client
/// error (Connect): tcp connect error: Connection refused (os error 111)`):
/// the outermost message alone often hides the cause. A source whose text
/// the message already holds is not repeated.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(s) = cur {
        let t = s.to_string();
        if !t.is_empty() && !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        depth += 1;
        if depth >= 16 {
            break;
        }
        cur = s.source();
    }
    msg
}

/// `name` without its key: the folder findings' evidence is renamed to.
fn listing_base(o: &ObjectMeta) -> String {
    o.name
        .strip_suffix(&o.key)
        .map(|s| s.trim_end_matches('/').to_string())
        .unwrap_or_else(|| o.name.clone())
}

/// Replaces the image path with the remote name.
fn rename(s: &str, local: &str, remote: &str) -> String {
    if s.contains(local) {
        s.replace(local, remote)
    } else {
        s.to_string()
    }
}
