//! Transparency log (Rekor v1) evidence in a Sigstore bundle: the
//! RFC 6962 Merkle inclusion proof, the signed checkpoint (the
//! transparency-dev "signed note" format) and the signed entry timestamp
//! (SET, Rekor's ECDSA signature over the canonical JSON of the entry's
//! body, integrated time, log id and index). Written from RFC 6962 §2.1,
//! RFC 9162 §2.1.3.2 (the inclusion-proof check with the inner/border
//! decomposition), <https://github.com/transparency-dev/formats> (log
//! checkpoints and notes) and Rekor's documentation; all inputs untrusted
//! and bounded.

use sha2::{Digest as _, Sha256};

use crate::cert::EcKey;
use crate::trust_root::LogKey;

/// Longest inclusion proof accepted (a tree of 2^64 leaves needs 64).
pub const MAX_PROOF: usize = 64;
/// Largest checkpoint (signed note) read.
pub const MAX_CHECKPOINT: usize = 16 << 10;
/// Most signature lines read from a checkpoint.
pub const MAX_NOTE_SIGNATURES: usize = 16;

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// Checks that `leaf` is at `index` of a tree of `size` leaves with root
/// `root`, given the audit path `proof` (leaf to root order).
pub fn verify_inclusion(
    leaf: &[u8],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> Result<(), String> {
    if index >= size {
        return Err(format!(
            "inclusion proof: log index {index} is not below the tree size {size}"
        ));
    }
    if proof.len() > MAX_PROOF {
        return Err(format!(
            "inclusion proof has {} hashes (at most {MAX_PROOF})",
            proof.len()
        ));
    }
    // RFC 9162 2.1.3.2, as inner (below the split with the right border)
    // plus border hashes.
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner.min(63)).count_ones() as usize;
    let border = if inner >= 64 { 0 } else { border };
    if proof.len() != inner + border {
        return Err(format!(
            "inclusion proof has {} hashes; a tree of {size} leaves needs {} for index {index}",
            proof.len(),
            inner + border
        ));
    }
    let mut h = leaf_hash(leaf);
    for (i, p) in proof[..inner].iter().enumerate() {
        h = if (index >> i) & 1 == 0 {
            node_hash(&h, p)
        } else {
            node_hash(p, &h)
        };
    }
    for p in &proof[inner..] {
        h = node_hash(p, &h);
    }
    if &h == root {
        Ok(())
    } else {
        Err(format!(
            "inclusion proof does not lead to the root hash: computed {}, the proof says {}",
            crate::hex::encode(&h),
            crate::hex::encode(root)
        ))
    }
}

/// A parsed signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The signed text (origin, size, root hash and extension lines, each
    /// ending in a newline).
    pub note: String,
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Vec<u8>,
    /// Signatures: signer name, 4-byte key hint, signature bytes.
    pub signatures: Vec<(String, [u8; 4], Vec<u8>)>,
}

/// Parses a signed note holding a log checkpoint (as sigstore-python
/// reads it: one blank line between the text and the signature lines,
/// each `— NAME BASE64(hint ‖ signature)`).
pub fn parse_checkpoint(text: &str) -> Result<Checkpoint, String> {
    if text.len() > MAX_CHECKPOINT {
        return Err(format!(
            "checkpoint is {} bytes (at most {MAX_CHECKPOINT})",
            text.len()
        ));
    }
    if text.matches("\n\n").count() != 1 {
        return Err(
            "checkpoint: not a signed note (one blank line must separate the text from \
                    the signatures)"
                .into(),
        );
    }
    let Some(split) = text.find("\n\n") else {
        return Err("checkpoint: no blank line".into());
    };
    let note = &text[..split + 1];
    let sigs = &text[split + 2..];
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(
            "checkpoint: the signature block is empty or does not end with a newline".into(),
        );
    }
    let mut lines = note.lines();
    let origin = lines.next().unwrap_or("");
    if origin.is_empty() {
        return Err("checkpoint: empty origin line".into());
    }
    let size: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("checkpoint: the second line is not a tree size")?;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let root = lines
        .next()
        .and_then(|l| b64.decode(l.as_bytes()).ok())
        .ok_or("checkpoint: the third line is not a base64 root hash")?;
    let mut signatures = Vec::new();
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let (Some(name), Some(sig), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if name.is_empty() || sig.is_empty() {
            continue;
        }
        let raw = b64
            .decode(sig.as_bytes())
            .map_err(|_| format!("checkpoint: the signature of {name} is not base64"))?;
        if raw.len() < 5 {
            return Err(format!("checkpoint: the signature of {name} is too short"));
        }
        if signatures.len() >= MAX_NOTE_SIGNATURES {
            return Err(format!(
                "checkpoint: more than {MAX_NOTE_SIGNATURES} signatures"
            ));
        }
        let mut hint = [0u8; 4];
        hint.copy_from_slice(&raw[..4]);
        signatures.push((name.to_string(), hint, raw[4..].to_vec()));
    }
    Ok(Checkpoint {
        note: note.to_string(),
        origin: origin.to_string(),
        size,
        root,
        signatures,
    })
}

/// The Rekor keys to try for `log_id`: the key with that id, or every key
/// when none has it (sigstore-python's keyring: the id is only a hint).
pub fn keys_for<'a>(keys: &'a [LogKey], log_id: &[u8]) -> Vec<&'a LogKey> {
    let exact: Vec<&LogKey> = keys.iter().filter(|k| k.log_id == log_id).collect();
    if exact.is_empty() {
        keys.iter().collect()
    } else {
        exact
    }
}

/// Verifies an ECDSA signature over `data` with a log key, with the hash
/// its curve goes with (the trust root's `keyDetails`).
pub fn verify_with(key: &EcKey, data: &[u8], der_sig: &[u8]) -> bool {
    key.verify_message(data, der_sig)
}

/// Checks the checkpoint's signature by the log `log_id` names, and that it
/// commits to `root`.
pub fn verify_checkpoint(
    cp: &Checkpoint,
    keys: &[LogKey],
    log_id: &[u8],
    root: &[u8],
) -> Result<(), String> {
    let Some(hint) = log_id.get(..4) else {
        return Err("the log id is shorter than 4 bytes".into());
    };
    let Some((name, _, sig)) = cp.signatures.iter().find(|(_, h, _)| h == hint) else {
        return Err(format!(
            "checkpoint: no signature by the log {} (key hint {})",
            crate::hex::encode(log_id),
            crate::hex::encode(hint)
        ));
    };
    if !keys_for(keys, log_id)
        .iter()
        .any(|k| verify_with(&k.key, cp.note.as_bytes(), sig))
    {
        return Err(format!(
            "checkpoint: the signature of {name} does not verify with the trust root's Rekor key"
        ));
    }
    if cp.root != root {
        return Err(format!(
            "checkpoint: its root hash {} is not the inclusion proof's {}",
            crate::hex::encode(&cp.root),
            crate::hex::encode(root)
        ));
    }
    Ok(())
}

/// The canonical JSON (RFC 8785) Rekor signs as the signed entry
/// timestamp. Keys in sorted order; base64 and hex need no escaping.
#[derive(serde::Serialize)]
struct SetPayload<'a> {
    body: &'a str,
    #[serde(rename = "integratedTime")]
    integrated_time: u64,
    #[serde(rename = "logID")]
    log_id: &'a str,
    #[serde(rename = "logIndex")]
    log_index: u64,
}

/// Checks a signed entry timestamp.
pub fn verify_set(
    keys: &[LogKey],
    body_b64: &str,
    integrated_time: u64,
    log_id: &[u8],
    log_index: u64,
    set: &[u8],
) -> Result<(), String> {
    let payload = serde_json::to_vec(&SetPayload {
        body: body_b64,
        integrated_time,
        log_id: &crate::hex::encode(log_id),
        log_index,
    })
    .map_err(|e| e.to_string())?;
    if keys_for(keys, log_id)
        .iter()
        .any(|k| verify_with(&k.key, &payload, set))
    {
        Ok(())
    } else {
        Err(
            "the signed entry timestamp (inclusion promise) does not verify with the trust \
             root's Rekor key"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaf_hash(&leaves[0]);
        }
        let k = split(leaves.len());
        node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    // RFC 6962 2.1.1 PATH(m, D[n]).
    fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<[u8; 32]> {
        if leaves.len() == 1 {
            return vec![];
        }
        let k = split(leaves.len());
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn every_leaf_of_every_small_tree_verifies_and_tampering_does_not() {
        for n in 1..=17usize {
            let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("leaf {i}").into_bytes()).collect();
            let root = mth(&leaves);
            for m in 0..n {
                let p = path(m, &leaves);
                verify_inclusion(&leaves[m], m as u64, n as u64, &p, &root).unwrap();
                assert!(verify_inclusion(b"other", m as u64, n as u64, &p, &root).is_err());
                if !p.is_empty() {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_inclusion(&leaves[m], m as u64, n as u64, &bad, &root).is_err());
                    assert!(
                        verify_inclusion(&leaves[m], m as u64, n as u64, &p[1..], &root)
                            .unwrap_err()
                            .contains("needs")
                    );
                }
            }
            assert!(verify_inclusion(&leaves[0], n as u64, n as u64, &[], &root).is_err());
        }
        // Huge sizes do not overflow.
        assert!(verify_inclusion(b"x", u64::MAX - 1, u64::MAX, &[[0; 32]; 64], &[0; 32]).is_err());
        assert!(verify_inclusion(b"x", 0, u64::MAX, &[], &[0; 32]).is_err());
    }

    #[test]
    fn checkpoints_parse_strictly() {
        let ok = "origin - 1\n7\nAAAA\n\n\u{2014} name AQIDBAU=\n";
        let cp = parse_checkpoint(ok).unwrap();
        assert_eq!((cp.size, cp.root.clone()), (7, vec![0, 0, 0]));
        assert_eq!(cp.note, "origin - 1\n7\nAAAA\n");
        assert_eq!(cp.signatures, vec![("name".into(), [1, 2, 3, 4], vec![5])]);
        for bad in [
            "",
            "origin\n7\nAAAA\n",
            "origin\n7\nAAAA\n\n",
            "origin\n7\nAAAA\n\n\u{2014} name AQIDBAU=",
            "origin\nseven\nAAAA\n\n\u{2014} name AQIDBAU=\n",
            "origin\n7\n!!\n\n\u{2014} name AQIDBAU=\n",
            "\n7\nAAAA\n\n\u{2014} name AQIDBAU=\n",
            "origin\n7\nAAAA\n\n\u{2014} name AQID\n",
            "origin\n7\nAAAA\n\n\n\n\u{2014} name AQIDBAU=\n",
        ] {
            assert!(parse_checkpoint(bad).is_err(), "{bad:?}");
        }
        let many = format!("o\n1\nAAAA\n\n{}", "\u{2014} n AQIDBAU=\n".repeat(17));
        assert!(parse_checkpoint(&many).unwrap_err().contains("more than"));
        assert!(parse_checkpoint(&"x".repeat(MAX_CHECKPOINT + 1)).is_err());
    }
}
