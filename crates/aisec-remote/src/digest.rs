//! Whole-object reads for provenance: a small object read whole (a
//! signature), and the SHA-256 of every listed object streamed through the
//! hasher as its body arrives, so memory stays bounded (one body chunk per
//! object in flight) whatever the object's size.
//!
//! A stream cut mid-body resumes with `Range: bytes=N-` (and starts over
//! when the server ignores the range), within the client's retry budget;
//! an object whose byte count differs from the listing's size is an error,
//! not a digest (a server cannot pass a longer file off as the signed one).

use std::sync::Arc;

use futures::StreamExt;
use reqwest::header::{HeaderValue, RANGE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::{Listing, ObjectMeta, Remote, RemoteError, Source};

/// The SHA-256 of one object and what travelled to compute it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDigest {
    /// SHA-256 of the object's bytes.
    pub sha256: [u8; 32],
    /// Bytes received (the object's size, plus any resent after a cut).
    pub bytes_read: u64,
}

impl Remote {
    /// Reads a listed object whole, refusing objects over `limit` bytes.
    pub fn read_object(
        &self,
        listing: &Listing,
        o: &ObjectMeta,
        limit: u64,
    ) -> Result<Vec<u8>, RemoteError> {
        if o.size > limit {
            return Err(RemoteError::TooLarge {
                what: o.name.clone(),
                limit,
            });
        }
        let store = self.store_for(listing)?;
        self.rt.block_on(async {
            let mut out = Vec::with_capacity(o.size as usize);
            self.stream(o, store, &mut |b| out.extend_from_slice(b))
                .await
                .map(|_| out)
        })
    }

    /// The SHA-256 of each object, streamed; at most `per_host` objects in
    /// flight. Results are in the order of `objects`.
    pub fn sha256_objects(
        &self,
        listing: &Listing,
        objects: &[&ObjectMeta],
    ) -> Result<Vec<Result<ObjectDigest, RemoteError>>, RemoteError> {
        let store = self.store_for(listing)?;
        let in_flight = self.opts.per_host.max(1);
        Ok(self.rt.block_on(async {
            futures::stream::iter(objects.iter().map(|o| {
                let store = store.clone();
                async move {
                    let mut h = Sha256::new();
                    let moved = self.stream(o, store, &mut |b| h.update(b)).await?;
                    Ok(ObjectDigest {
                        sha256: h.finalize().into(),
                        bytes_read: moved,
                    })
                }
            }))
            .buffered(in_flight)
            .collect()
            .await
        }))
    }

    fn store_for(
        &self,
        listing: &Listing,
    ) -> Result<Option<Arc<dyn object_store::ObjectStore>>, RemoteError> {
        Ok(match Source::parse(&listing.source)? {
            Source::S3 { bucket, .. } => Some(crate::s3::store(&self.opts, &bucket)?),
            _ => None,
        })
    }

    /// Feeds the object's bytes to `sink` in order, exactly `o.size` of
    /// them; returns the bytes received.
    async fn stream(
        &self,
        o: &ObjectMeta,
        store: Option<Arc<dyn object_store::ObjectStore>>,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<u64, RemoteError> {
        match store {
            Some(store) => {
                let path = object_store::path::Path::from(o.url.as_str());
                let r = store
                    .get(&path)
                    .await
                    .map_err(|e| RemoteError::Store(format!("{}: {}", o.name, crate::chain(&e))))?;
                let mut s = r.into_stream();
                let mut n = 0u64;
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.map_err(|e| {
                        RemoteError::Store(format!("{}: {}", o.name, crate::chain(&e)))
                    })?;
                    n += chunk.len() as u64;
                    if n > o.size {
                        return Err(longer(o));
                    }
                    sink(&chunk);
                }
                if n != o.size {
                    return Err(shorter(o, n));
                }
                Ok(n)
            }
            None => self.stream_http(o, sink).await,
        }
    }

    async fn stream_http(
        &self,
        o: &ObjectMeta,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<u64, RemoteError> {
        let token = if o.name.starts_with("hf://") {
            self.opts.hf_token.as_deref()
        } else {
            None
        };
        let mut done = 0u64;
        let mut moved = 0u64;
        let mut attempt = 0u32;
        loop {
            let mut h = crate::http::auth(token);
            if done > 0 {
                let v = HeaderValue::from_str(&format!("bytes={done}-"))
                    .map_err(|e| RemoteError::Http(e.to_string()))?;
                h.insert(RANGE, v);
            }
            // `send` retries the request itself; a body cut below is retried here.
            let r = self.http.send(Method::GET, &o.url, &h).await?;
            if done > 0 {
                let resumed_at = crate::http::content_range_start(r.headers());
                if r.status() != StatusCode::PARTIAL_CONTENT || resumed_at != Some(done) {
                    // The range was not honoured: the digest cannot resume.
                    return Err(RemoteError::Http(format!(
                        "{}: the transfer was cut at byte {done} and the server does not resume it",
                        o.name
                    )));
                }
            }
            let mut body = r.bytes_stream();
            let mut cut = None;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => {
                        moved += c.len() as u64;
                        done += c.len() as u64;
                        if done > o.size {
                            return Err(longer(o));
                        }
                        sink(&c);
                    }
                    Err(e) => {
                        cut = Some(crate::chain(&e));
                        break;
                    }
                }
            }
            match cut {
                None if done == o.size => return Ok(moved),
                None => return Err(shorter(o, done)),
                Some(why) if attempt < self.opts.retries && done < o.size => {
                    tracing::debug!(object = %o.name, done, why, "body cut; resuming");
                    attempt += 1;
                    let wait = self.opts.backoff.saturating_mul(1 << attempt.min(16));
                    tokio::time::sleep(wait.min(std::time::Duration::from_secs(60))).await;
                }
                Some(why) => {
                    return Err(RemoteError::Http(format!(
                        "{}: transfer cut at byte {done}: {why}",
                        o.name
                    )))
                }
            }
        }
    }
}

fn longer(o: &ObjectMeta) -> RemoteError {
    RemoteError::Http(format!(
        "{}: the server sent more than the {} bytes the listing gives",
        o.name, o.size
    ))
}

fn shorter(o: &ObjectMeta, n: u64) -> RemoteError {
    RemoteError::Http(format!(
        "{}: the server sent {n} bytes, the listing gives {}",
        o.name, o.size
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RemoteOptions;

    #[test]
    fn hub_objects_hash_like_the_files_and_a_wrong_size_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("org/m");
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(repo.join("big.bin"), &big).unwrap();
        std::fs::write(repo.join("sub/empty"), b"").unwrap();
        std::fs::write(repo.join("model.sig"), b"{}").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(crate::hubserver::serve(root.path(), false))
            .unwrap();
        let remote = Remote::new(RemoteOptions {
            hf_endpoint: server.url.clone(),
            hf_token: None,
            retries: 1,
            ..RemoteOptions::default()
        })
        .unwrap();
        let listing = remote.list(&Source::parse("hf://org/m").unwrap()).unwrap();
        let objs: Vec<&ObjectMeta> = listing.objects.iter().collect();
        let got = remote.sha256_objects(&listing, &objs).unwrap();
        for (o, d) in objs.iter().zip(&got) {
            let want: [u8; 32] = Sha256::digest(std::fs::read(repo.join(&o.key)).unwrap()).into();
            let d = d.as_ref().unwrap();
            assert_eq!(d.sha256, want, "{}", o.key);
            assert_eq!(d.bytes_read, o.size);
        }
        let sig = listing
            .objects
            .iter()
            .find(|o| o.key == "model.sig")
            .unwrap();
        assert_eq!(remote.read_object(&listing, sig, 1 << 20).unwrap(), b"{}");
        assert!(matches!(
            remote.read_object(&listing, sig, 1),
            Err(RemoteError::TooLarge { .. })
        ));
        // A listing that disagrees with the bytes served is refused both ways.
        for size in [big.len() as u64 - 1, big.len() as u64 + 1] {
            let mut o = listing
                .objects
                .iter()
                .find(|o| o.key == "big.bin")
                .unwrap()
                .clone();
            o.size = size;
            let err = remote
                .sha256_objects(&listing, &[&o])
                .unwrap()
                .remove(0)
                .unwrap_err();
            assert!(err.to_string().contains("listing gives"), "{err}");
        }
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;
    use crate::RemoteOptions;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A server that cuts the first body halfway, then answers a ranged
    /// request with the rest (206) when `honour_range`, or 200 otherwise.
    fn cutting_server(rt: &tokio::runtime::Runtime, body: Vec<u8>, honour_range: bool) -> String {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            let mut first = true;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let mut req = vec![0u8; 4096];
                let n = sock.read(&mut req).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&req[..n]).to_lowercase();
                let from = req
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes="))
                    .and_then(|r| r.trim().trim_end_matches('-').parse::<usize>().ok());
                let total = body.len();
                let head = match from {
                    Some(f) if honour_range => format!(
                        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {f}-{}/{total}\r\nconnection: close\r\n\r\n",
                        total - f,
                        total - 1
                    ),
                    _ => format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {total}\r\nconnection: close\r\n\r\n"
                    ),
                };
                let part = match from {
                    Some(f) if honour_range => &body[f..],
                    _ => &body[..],
                };
                let _ = sock.write_all(head.as_bytes()).await;
                if first {
                    first = false;
                    let _ = sock.write_all(&part[..part.len() / 2]).await;
                } else {
                    let _ = sock.write_all(part).await;
                }
                let _ = sock.shutdown().await;
            }
        });
        format!("http://{addr}/model.bin")
    }

    fn digest_of(url: &str, size: u64) -> Result<ObjectDigest, RemoteError> {
        let remote = Remote::new(RemoteOptions {
            retries: 2,
            backoff: std::time::Duration::from_millis(1),
            ..RemoteOptions::default()
        })
        .unwrap();
        let o = ObjectMeta {
            key: "model.bin".into(),
            size,
            version: None,
            id: url.into(),
            name: url.into(),
            url: url.into(),
        };
        let listing = Listing {
            source: url.into(),
            revision: None,
            objects: vec![o.clone()],
        };
        remote.sha256_objects(&listing, &[&o]).unwrap().remove(0)
    }

    #[test]
    fn a_cut_body_resumes_with_a_range_and_hashes_the_whole_object() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let want: [u8; 32] = Sha256::digest(&body).into();
        let url = cutting_server(&rt, body.clone(), true);
        let d = digest_of(&url, body.len() as u64).unwrap();
        assert_eq!(d.sha256, want);
        // Half the body, then the other half: nothing hashed twice.
        assert_eq!(d.bytes_read, body.len() as u64);
        // A server that ignores the range cannot be resumed: an error, not a digest.
        let url = cutting_server(&rt, body.clone(), false);
        let err = digest_of(&url, body.len() as u64).unwrap_err();
        assert!(err.to_string().contains("does not resume"), "{err}");
    }
}
