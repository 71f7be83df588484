//! S3-compatible stores through `object_store`: credentials and region the
//! standard way (`AmazonS3Builder::from_env`: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`...), the endpoint from
//! `AWS_ENDPOINT_URL` for stores other than AWS.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use crate::plan::{Fetch, RangeGet};
use crate::{Listing, ObjectMeta, RemoteError, RemoteOptions};

/// The store for `bucket`.
pub(crate) fn store(
    opts: &RemoteOptions,
    bucket: &str,
) -> Result<Arc<dyn ObjectStore>, RemoteError> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(opts.connect_timeout)
                .with_timeout(opts.request_timeout)
                .with_pool_max_idle_per_host(opts.per_host),
        )
        .with_retry(RetryConfig {
            max_retries: opts.retries as usize,
            retry_timeout: opts.request_timeout,
            backoff: object_store::BackoffConfig {
                init_backoff: opts.backoff,
                max_backoff: std::time::Duration::from_secs(30),
                base: 2.0,
            },
        });
    if let Some(ep) = &opts.s3.endpoint {
        b = b
            .with_allow_http(ep.starts_with("http://"))
            .with_endpoint(ep);
    }
    if let Some(k) = &opts.s3.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &opts.s3.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    if let Some(r) = &opts.s3.region {
        b = b.with_region(r);
    }
    let s = b
        .build()
        .map_err(|e| RemoteError::Store(format!("s3://{bucket}: {}", crate::chain(&e))))?;
    Ok(Arc::new(object_store::limit::LimitStore::new(
        s,
        opts.per_host.max(1),
    )))
}

pub(crate) async fn list(
    opts: &RemoteOptions,
    bucket: &str,
    prefix: &str,
) -> Result<Listing, RemoteError> {
    let store = store(opts, bucket)?;
    let p = Path::from(prefix.trim_end_matches('/'));
    let src = if prefix.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{prefix}")
    };
    let mut objects = Vec::new();
    let mut stream = store.list(if prefix.is_empty() { None } else { Some(&p) });
    while let Some(m) = stream
        .try_next()
        .await
        .map_err(|e| RemoteError::Store(format!("{src}: {}", crate::chain(&e))))?
    {
        if objects.len() >= opts.max_objects {
            return Err(RemoteError::TooLarge {
                what: format!("{src}: listing"),
                limit: opts.max_objects as u64,
            });
        }
        let full = m.location.to_string();
        // The key below the prefix names the file in the scan image.
        let key = full
            .strip_prefix(p.as_ref())
            .map(|k| k.trim_start_matches('/'))
            .filter(|k| !k.is_empty())
            .unwrap_or(&full)
            .to_string();
        if !crate::source::safe_key(&key) {
            tracing::warn!(key = %full, "object key cannot be a file name; ignored");
            continue;
        }
        objects.push(ObjectMeta {
            id: format!("s3://{bucket}/{full}"),
            name: format!("s3://{bucket}/{full}"),
            url: full,
            key,
            size: m.size,
            version: m.e_tag.or(m.version).or_else(|| {
                Some(format!(
                    "{}:{}",
                    m.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    m.size
                ))
            }),
        });
    }
    Ok(Listing {
        source: src,
        revision: None,
        objects,
    })
}

/// Reads ranges of one object.
pub(crate) struct Getter {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) key: String,
}

impl RangeGet for Getter {
    fn get(&self, start: u64, end: u64) -> Fetch<'_> {
        Box::pin(async move {
            let b = self
                .store
                .get_range(&Path::from(self.key.as_str()), start..end)
                .await
                .map_err(|e| RemoteError::Store(format!("{}: {}", self.key, crate::chain(&e))))?;
            let n = b.len() as u64;
            if n != end - start {
                return Err(RemoteError::Store(format!(
                    "{}: asked for {} bytes at {start}, got {n}",
                    self.key,
                    end - start
                )));
            }
            Ok((b.to_vec(), n))
        })
    }
}
