//! `aisec provenance`: OpenSSF model-signing signatures and hash manifests.
//!
//! * `verify MODEL_DIR --public-key KEY [--signature SIG]`: checks the
//!   signature (default `MODEL_DIR/model.sig`) and compares the signed
//!   manifest with the files; `--certificate-chain ROOT.pem` instead of
//!   the key verifies a certificate-based signature (own PKI);
//!   `--trust-root JSON --identity ID --identity-provider URL` a Sigstore
//!   keyless one, offline; `--manifest FILE` compares with an unsigned
//!   manifest instead. Findings as every report (exit 0 clean, 1 findings at
//!   or above `--fail-on`, 2 the job could not be done).
//!   `hf://ORG/NAME[@REV]` or `s3://BUCKET/PREFIX` instead of the folder
//!   verifies the repository in place (aisec-remote streams every file
//!   through SHA-256).
//! * `manifest MODEL_DIR [-o FILE]`: writes the in-toto statement
//!   model-signing would sign for the folder.
//! * `sign MODEL_DIR --private-key KEY [--signature SIG]`: key-based
//!   signing into a Sigstore bundle that `model_signing verify key` accepts.

use std::path::{Path, PathBuf};

use aisec_core::Report;
use aisec_core::{Finding, Location};
use aisec_provenance::{
    manifest, Bundle, HashOptions, PrivateKey, PublicKey, Trust, TrustRoots, Verification,
};
use aisec_remote::{Remote, RemoteOptions, Source};
use anyhow::Context as _;

use crate::output::OutputArgs;

/// Arguments of `aisec provenance`.
#[derive(Debug, clap::Args)]
pub struct ProvenanceArgs {
    #[command(subcommand)]
    pub command: ProvenanceCommand,
}

/// The `aisec provenance` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ProvenanceCommand {
    /// Verify a model folder, or a hf:// or s3:// repository in place, against its model-signing signature (key-based, certificate-based or Sigstore keyless) or a manifest: unsigned, invalid, modified, missing and extra files.
    Verify(VerifyArgs),
    /// Write the hash manifest of a model folder (the in-toto statement model-signing signs).
    Manifest(ManifestArgs),
    /// Sign a model folder with a P-256 private key (model-signing's key method; writes a Sigstore bundle).
    Sign(SignArgs),
}

/// How the folder is hashed (the options model-signing has).
#[derive(Debug, Clone, clap::Args)]
pub struct HashArgs {
    /// Leave this path (a file, or a folder with everything in it) out; repeatable. Relative to the current folder when it exists there inside the model, else to the model folder.
    #[arg(long = "ignore-paths", value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,

    /// Hash .git, .gitattributes, .github and .gitignore too (ignored by default).
    #[arg(long)]
    pub no_ignore_git_paths: bool,

    /// Hash the targets of symbolic links to files (refused by default).
    #[arg(long)]
    pub allow_symlinks: bool,
}

impl HashArgs {
    fn options(&self, model: &Path, also: Option<&Path>) -> HashOptions {
        let mut ignore: Vec<String> = self
            .ignore_paths
            .iter()
            .filter_map(|p| {
                manifest::relative_inside(model, p).or_else(|| {
                    // Not found from here: read it relative to the model.
                    (p.is_relative() && !p.exists()).then(|| p.to_string_lossy().replace('\\', "/"))
                })
            })
            .collect();
        // The signature or manifest being written, when inside the folder.
        ignore.extend(also.and_then(|p| manifest::relative_inside(model, p)));
        ignore.sort();
        ignore.dedup();
        HashOptions {
            ignore_paths: ignore,
            ignore_git_paths: !self.no_ignore_git_paths,
            allow_symlinks: self.allow_symlinks,
            ..HashOptions::default()
        }
    }
}

/// Arguments of `aisec provenance verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The model folder, or a remote repository verified in place: hf://ORG/NAME[@REV] (token from HF_TOKEN, endpoint from HF_ENDPOINT) or s3://BUCKET/PREFIX (credentials the standard AWS way); every listed file is streamed through SHA-256, nothing is stored.
    #[arg(value_name = "MODEL_DIR|hf://ORG/NAME[@REV]|s3://BUCKET/PREFIX")]
    pub model: PathBuf,

    /// The signature (Sigstore bundle); default MODEL_DIR/model.sig. For a remote source: its path in the repository (default model.sig), or a local file when one exists at that path.
    #[arg(long, short = 's', value_name = "FILE", conflicts_with = "manifest")]
    pub signature: Option<PathBuf>,

    /// The signer's public key (PEM, ECDSA P-256), for a key-based signature (`model_signing sign key`).
    #[arg(long, short = 'k', value_name = "FILE")]
    pub public_key: Option<PathBuf>,

    /// Trusted root certificate(s), PEM, for a certificate-based signature (`model_signing sign certificate`): the chain from the bundle's signing certificate must end at a self-signed certificate of these files (intermediates may be in them too). Repeatable; model-signing's `--certificate_chain`.
    #[arg(
        long = "certificate-chain",
        visible_alias = "root",
        alias = "certificate_chain",
        value_name = "PEM",
        conflicts_with_all = ["public_key", "manifest"]
    )]
    pub certificate_chain: Vec<PathBuf>,

    /// Sigstore trust root for a keyless signature (`model_signing sign sigstore`): a trusted_root.json or the client trust config JSON that model-signing's `--trust_config` takes (Fulcio CAs, Rekor and CT log keys). Verified offline: Fulcio chain at the log's integrated time, embedded SCT, identity, Rekor inclusion proof, checkpoint and signed entry timestamp, then the DSSE signature. Needs --identity and --identity-provider.
    #[arg(
        long = "trust-root",
        visible_alias = "trust-config",
        alias = "trust_config",
        value_name = "JSON",
        conflicts_with_all = ["public_key", "manifest", "certificate_chain"]
    )]
    pub trust_root: Option<PathBuf>,

    /// The signer expected in a keyless signature's certificate: an e-mail or URI subject alternative name (model-signing's `--identity`).
    #[arg(long, value_name = "ID", requires = "trust_root")]
    pub identity: Option<String>,

    /// The OIDC issuer expected in a keyless signature's certificate, e.g. https://accounts.google.com (model-signing's `--identity_provider`).
    #[arg(
        long = "identity-provider",
        alias = "identity_provider",
        value_name = "URL",
        requires = "trust_root"
    )]
    pub identity_provider: Option<String>,

    /// Compare with this unsigned manifest (from `aisec provenance manifest`) instead of a signature.
    #[arg(long, value_name = "FILE", conflicts_with = "public_key")]
    pub manifest: Option<PathBuf>,

    #[command(flatten)]
    pub hash: HashArgs,

    /// Remote requests in flight per host (hf://, s3:// sources).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub per_host: usize,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `aisec provenance manifest`.
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// The model folder.
    #[arg(value_name = "MODEL_DIR")]
    pub model: PathBuf,

    /// Write the manifest here (ignored when inside the folder) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub hash: HashArgs,
}

/// Arguments of `aisec provenance sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The model folder.
    #[arg(value_name = "MODEL_DIR")]
    pub model: PathBuf,

    /// The private key (PEM, unencrypted PKCS#8 or SEC1, ECDSA P-256).
    #[arg(long, short = 'k', value_name = "FILE")]
    pub private_key: PathBuf,

    /// Where to write the signature; default MODEL_DIR/model.sig (ignored when inside the folder).
    #[arg(long, short = 's', value_name = "FILE")]
    pub signature: Option<PathBuf>,

    #[command(flatten)]
    pub hash: HashArgs,
}

/// Runs `aisec provenance …`.
pub fn run(args: ProvenanceArgs) -> anyhow::Result<i32> {
    match args.command {
        ProvenanceCommand::Verify(a) => verify(a),
        ProvenanceCommand::Manifest(a) => write_manifest(a),
        ProvenanceCommand::Sign(a) => sign(a),
    }
}

fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    anyhow::ensure!(
        meta.is_file() && meta.len() <= 1 << 20,
        "{what} {} is not a key file (not a regular file of at most 1 MiB)",
        path.display()
    );
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn verify(a: VerifyArgs) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let mut report = Report::new("provenance verify");
    report.add_rules(aisec_provenance::RULES);
    let model_str = a.model.to_string_lossy().to_string();
    if !Source::is_remote(&model_str) {
        // Say that the model is missing before asking for a key or a root.
        std::fs::metadata(&a.model)
            .with_context(|| format!("cannot read the model {}", a.model.display()))?;
    }
    let v = if Source::is_remote(&model_str) {
        verify_remote(&a, &model_str, &mut report)?
    } else if let Some(m) = &a.manifest {
        let opts = a.hash.options(&a.model, None);
        report
            .data
            .insert("manifest".into(), m.display().to_string().into());
        aisec_provenance::verify_manifest(&a.model, m, &opts)?
    } else {
        let trust = trust(&a)?;
        let sig = a
            .signature
            .clone()
            .unwrap_or_else(|| a.model.join(manifest::DEFAULT_SIGNATURE));
        let opts = a.hash.options(&a.model, None);
        report
            .data
            .insert("signature".into(), sig.display().to_string().into());
        match &trust {
            Trust::Key(key) => {
                report
                    .data
                    .insert("key_hint".into(), key.hint.clone().into());
            }
            Trust::Roots(r) => {
                report
                    .data
                    .insert("trusted_certificates".into(), (r.len() as u64).into());
            }
            Trust::Sigstore(k) => keyless_data(&mut report, k),
        }
        aisec_provenance::verify_signature_with(&a.model, &sig, &trust, &opts)?
    };
    let mut tail = String::new();
    if let Some(s) = &v.signer {
        report.data.insert("signer".into(), signer_json(s));
        tail = if let Some(k) = &s.keyless {
            format!(
                "Signed by {} (OIDC issuer {}), logged in Rekor at index {} at {} s since the \
                 epoch, while the certificate was valid (chain: {})\n",
                k.identity,
                k.issuer,
                k.log_index,
                k.integrated_time,
                s.chain.join(" <- ")
            )
        } else {
            format!(
                "Signed by {} (chain: {}){}\n",
                s.subject,
                s.chain.join(" <- "),
                if s.expired {
                    "; the signing certificate has expired since (accepted, as model-signing does: \
                 the chain is checked at its start)"
                } else {
                    ""
                }
            )
        };
    }
    report.extend(v.findings);
    report.summary.items = v.files_hashed as u64;
    report.summary.bytes = v.bytes;
    report.summary.seconds = started.elapsed().as_secs_f64();
    report
        .data
        .insert("model".into(), a.model.display().to_string().into());
    report
        .data
        .insert("signature_valid".into(), v.signature_valid.into());
    report
        .data
        .insert("signed_files".into(), (v.signed_files as u64).into());
    report
        .data
        .insert("files_hashed".into(), (v.files_hashed as u64).into());
    if let Some(d) = &v.root_digest {
        report.data.insert("root_digest".into(), d.clone().into());
    }
    let reference = if a.manifest.is_some() {
        "manifest"
    } else {
        "signature"
    };
    let status = if !v.signature_valid {
        format!("{reference}: not verified")
    } else {
        format!(
            "{reference}: {}, {} signed files, {} files hashed ({} bytes)",
            if a.manifest.is_some() {
                "read"
            } else {
                "valid"
            },
            v.signed_files,
            v.files_hashed,
            v.bytes
        )
    };
    crate::run::finish_with_tail(report, &a.output, &format!("Provenance {status}\n{tail}"))
}

/// Largest signature or manifest read from a remote repository.
const MAX_REMOTE_DOC: u64 = 96 << 20;

/// `aisec provenance verify hf://ORG/NAME[@REV]` (or `s3://BUCKET/PREFIX`):
/// the signature is read from the repository (`--signature` names it there,
/// default `model.sig`, unless it names a local file), every listed file is
/// streamed through SHA-256, and the findings are those of a local verify,
/// named by remote object (`hf://ORG/NAME@SHA/path`).
fn verify_remote(a: &VerifyArgs, src: &str, report: &mut Report) -> anyhow::Result<Verification> {
    let source = Source::parse(src)?;
    if matches!(source, Source::Url(_)) {
        anyhow::bail!(
            "{src}: a single URL has no file listing; verify a hub repository (hf://ORG/NAME[@REV]) \
             or a bucket prefix (s3://BUCKET/PREFIX), or download the folder and verify it locally"
        );
    }
    let remote = Remote::new(RemoteOptions {
        per_host: a.per_host.max(1),
        ..RemoteOptions::default()
    })?;
    let listing = remote
        .list(&source)
        .with_context(|| format!("cannot list {src}"))?;
    let base = match (&source, &listing.revision) {
        (Source::Hub { repo, .. }, Some(sha)) => format!("hf://{repo}@{sha}"),
        _ => listing.source.trim_end_matches('/').to_string(),
    };
    report.data.insert("source".into(), src.into());
    if let Some(rev) = &listing.revision {
        report.data.insert("revision".into(), rev.clone().into());
    }
    let at = |rel: &str| Location::path(format!("{base}/{rel}"));
    let opts = HashOptions {
        ignore_paths: a
            .hash
            .ignore_paths
            .iter()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .collect(),
        ignore_git_paths: !a.hash.no_ignore_git_paths,
        allow_symlinks: a.hash.allow_symlinks,
        ..HashOptions::default()
    };
    let find = |key: &str| listing.objects.iter().find(|o| o.key == key);
    // The reference: a local manifest, or the signature (local or in the repo).
    let (expected, signer, sig_key) = if let Some(m) = &a.manifest {
        let bytes = std::fs::read(m).with_context(|| format!("cannot read {}", m.display()))?;
        let man = aisec_provenance::statement::parse(&bytes)?.map_err(|why| {
            anyhow::anyhow!("{}: not a model-signing manifest: {}", m.display(), why.0)
        })?;
        report
            .data
            .insert("manifest".into(), m.display().to_string().into());
        (man, None, None)
    } else {
        let trust = trust(a)?;
        if let Trust::Sigstore(k) = &trust {
            keyless_data(report, k);
        }
        let sig_arg = a
            .signature
            .clone()
            .unwrap_or_else(|| PathBuf::from(manifest::DEFAULT_SIGNATURE));
        let (bytes, sig_name, sig_key) = if sig_arg.is_file() {
            let b = std::fs::read(&sig_arg)
                .with_context(|| format!("cannot read {}", sig_arg.display()))?;
            (b, sig_arg.display().to_string(), None)
        } else {
            let key = sig_arg.to_string_lossy().replace('\\', "/");
            let Some(o) = find(&key) else {
                report
                    .data
                    .insert("signature".into(), format!("{base}/{key}").into());
                return Ok(Verification {
                    findings: vec![aisec_provenance::UNSIGNED_MODEL.finding(
                        Location::path(base.clone()),
                        format!("no signature file {key} in {src}"),
                    )],
                    ..Verification::default()
                });
            };
            let b = remote
                .read_object(&listing, o, MAX_REMOTE_DOC)
                .with_context(|| format!("cannot read the signature {}", o.name))?;
            (b, o.name.clone(), Some(key))
        };
        report
            .data
            .insert("signature".into(), sig_name.clone().into());
        let invalid = |why: aisec_provenance::Invalid| Verification {
            findings: vec![aisec_provenance::INVALID_SIGNATURE
                .finding(Location::path(sig_name.clone()), why.0)],
            ..Verification::default()
        };
        let bundle = match Bundle::parse(&bytes)? {
            Ok(b) => b,
            Err(why) => return Ok(invalid(why)),
        };
        match aisec_provenance::signed_manifest(&bundle, &trust)? {
            Ok((m, signer)) => (m, signer, sig_key),
            Err(why) => return Ok(invalid(why)),
        }
    };
    let opts = aisec_provenance::verification_options(&expected, &opts, sig_key);
    let objects: Vec<&aisec_remote::ObjectMeta> = listing
        .objects
        .iter()
        .filter(|o| !opts.ignores(&o.key))
        .collect();
    let digests = remote.sha256_objects(&listing, &objects)?;
    let mut actual = std::collections::BTreeMap::new();
    let mut bytes = 0u64;
    for (o, d) in objects.iter().zip(digests) {
        let d = d.with_context(|| format!("cannot hash {}", o.name))?;
        bytes += d.bytes_read;
        actual.insert(o.key.clone(), d.sha256);
    }
    let findings: Vec<Finding> = aisec_provenance::compare_files(&expected, &actual, &[], &at);
    Ok(Verification {
        findings,
        signed_files: expected.files.len(),
        files_hashed: actual.len(),
        bytes,
        signature_valid: true,
        root_digest: Some(aisec_provenance::hex::encode(&expected.root_digest())),
        signer,
    })
}

/// The key, the trusted certificates or the Sigstore trust root given.
fn trust(a: &VerifyArgs) -> anyhow::Result<Trust> {
    let given = TrustInput {
        public_key: a.public_key.as_deref(),
        certificate_chain: &a.certificate_chain,
        trust_root: a.trust_root.as_deref(),
        identity: a.identity.as_deref(),
        identity_provider: a.identity_provider.as_deref(),
    };
    given.load(&VERIFY_FLAGS)?.context(
        "give --public-key FILE (key-based signature), --certificate-chain ROOT.pem \
         (certificate-based), --trust-root FILE with --identity and --identity-provider \
         (Sigstore keyless) or --manifest FILE",
    )
}

/// How one command spells the flags that say what a signature is trusted
/// with (`provenance verify --public-key`, `scan --verify-signatures`).
pub struct TrustFlags {
    pub public_key: &'static str,
    pub certificate_chain: &'static str,
    pub trust_root: &'static str,
    pub identity: &'static str,
    pub identity_provider: &'static str,
}

const VERIFY_FLAGS: TrustFlags = TrustFlags {
    public_key: "--public-key",
    certificate_chain: "--certificate-chain",
    trust_root: "--trust-root",
    identity: "--identity",
    identity_provider: "--identity-provider",
};

/// What was given to trust a signature with: a public key, root
/// certificates, or a Sigstore trust root with the expected signer.
pub struct TrustInput<'a> {
    pub public_key: Option<&'a Path>,
    pub certificate_chain: &'a [PathBuf],
    pub trust_root: Option<&'a Path>,
    pub identity: Option<&'a str>,
    pub identity_provider: Option<&'a str>,
}

impl TrustInput<'_> {
    /// Reads the trust anchor given, `None` when nothing was; `flags` names
    /// the command's options in its errors.
    pub fn load(&self, flags: &TrustFlags) -> anyhow::Result<Option<Trust>> {
        if let Some(p) = self.trust_root {
            let bytes = read_doc(
                p,
                "trust root",
                aisec_provenance::trust_root::LIMITS.max_bytes,
            )?;
            let trust = aisec_provenance::SigstoreTrust::parse(&bytes)
                .with_context(|| format!("{} {}", flags.trust_root, p.display()))?;
            let identity = self.identity.map(str::to_owned).with_context(|| {
                format!(
                    "a keyless signature is checked against an expected signer: give {} \
                     (the certificate's e-mail or URI) with {}",
                    flags.identity, flags.trust_root
                )
            })?;
            let issuer = self.identity_provider.map(str::to_owned).with_context(|| {
                format!(
                    "a keyless signature is checked against an expected OIDC issuer: give \
                     {} URL with {}",
                    flags.identity_provider, flags.trust_root
                )
            })?;
            return Ok(Some(Trust::Sigstore(Box::new(aisec_provenance::Keyless {
                trust,
                policy: aisec_provenance::Policy { identity, issuer },
            }))));
        }
        if !self.certificate_chain.is_empty() {
            let mut roots = TrustRoots::default();
            for p in self.certificate_chain {
                let text = read_text(p, "certificate chain")?;
                roots
                    .add_pem(&text, &p.display().to_string())
                    .with_context(|| format!("{} {}", flags.certificate_chain, p.display()))?;
            }
            return Ok(Some(Trust::Roots(roots)));
        }
        let Some(key_path) = self.public_key else {
            return Ok(None);
        };
        let key = PublicKey::from_pem(&read_text(key_path, "public key")?)
            .with_context(|| format!("{} {}", flags.public_key, key_path.display()))?;
        Ok(Some(Trust::Key(key)))
    }
}

fn signer_json(s: &aisec_provenance::Signer) -> serde_json::Value {
    let mut v = serde_json::json!({
        "subject": s.subject,
        "chain": s.chain,
        "not_before": s.not_before,
        "not_after": s.not_after,
        "expired": s.expired,
        "curve": s.curve,
    });
    if let (Some(k), Some(o)) = (&s.keyless, v.as_object_mut()) {
        o.insert("identity".into(), k.identity.clone().into());
        o.insert("oidc_issuer".into(), k.issuer.clone().into());
        o.insert("integrated_time".into(), k.integrated_time.into());
        o.insert("log_index".into(), k.log_index.into());
    }
    v
}

fn keyless_data(report: &mut Report, k: &aisec_provenance::Keyless) {
    report.data.insert(
        "trust_root".into(),
        serde_json::json!({
            "certificate_authorities": k.trust.authorities.len(),
            "tlog_keys": k.trust.tlogs.len(),
            "ct_log_keys": k.trust.ctlogs.len(),
            "skipped_keys": k.trust.skipped_keys,
        }),
    );
    report
        .data
        .insert("identity".into(), k.policy.identity.clone().into());
    report
        .data
        .insert("identity_provider".into(), k.policy.issuer.clone().into());
}

/// Reads a regular file of at most `max` bytes.
fn read_doc(path: &Path, what: &str, max: usize) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    anyhow::ensure!(
        meta.is_file() && meta.len() <= max as u64,
        "{what} {} is not a regular file of at most {max} bytes",
        path.display()
    );
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// `aisec scan --verify-signatures KEY` (or `--verify-certificate-chain`,
/// `--verify-trust-root`): every folder among `paths` that carries a
/// `model.sig` is verified with what was given; its findings and any failure
/// to verify join the scan report (`data.provenance` lists the folders
/// checked and, for a certificate or keyless signature, the signer).
pub fn verify_for_scan(report: &mut Report, paths: &[PathBuf], trust: &Trust) {
    report.add_rules(aisec_provenance::RULES);
    let mut checked = Vec::new();
    for dir in paths.iter().filter(|p| p.is_dir()) {
        let sig = dir.join(manifest::DEFAULT_SIGNATURE);
        if !sig.is_file() {
            continue;
        }
        match aisec_provenance::verify_signature_with(dir, &sig, trust, &HashOptions::default()) {
            Ok(v) => {
                let mut entry = serde_json::json!({
                    "folder": dir.display().to_string(),
                    "signature_valid": v.signature_valid,
                    "signed_files": v.signed_files,
                    "findings": v.findings.len(),
                });
                if let (Some(s), Some(o)) = (&v.signer, entry.as_object_mut()) {
                    o.insert("signer".into(), signer_json(s));
                }
                checked.push(entry);
                report.extend(v.findings);
            }
            Err(e) => report.error(
                dir.display().to_string(),
                format!("cannot verify its signature: {e}"),
            ),
        }
    }
    report
        .data
        .insert("provenance".into(), serde_json::Value::Array(checked));
}

fn write_manifest(a: ManifestArgs) -> anyhow::Result<i32> {
    let opts = a.hash.options(&a.model, a.output.as_deref());
    let out = aisec_provenance::hash_folder(&a.model, &opts)
        .with_context(|| format!("cannot hash {}", a.model.display()))?;
    let mut text = serde_json::to_string_pretty(&out.manifest.statement())?;
    text.push('\n');
    match &a.output {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?;
            crate::run::note(format!(
                "wrote the manifest of {} files ({} bytes hashed) to {}\n",
                out.manifest.files.len(),
                out.bytes,
                p.display()
            ));
        }
        None => print!("{text}"),
    }
    Ok(0)
}

fn sign(a: SignArgs) -> anyhow::Result<i32> {
    let key = PrivateKey::from_pem(&read_text(&a.private_key, "private key")?)
        .with_context(|| format!("private key {}", a.private_key.display()))?;
    let sig = a
        .signature
        .clone()
        .unwrap_or_else(|| a.model.join(manifest::DEFAULT_SIGNATURE));
    let opts = a.hash.options(&a.model, Some(&sig));
    let (m, bundle) = aisec_provenance::sign(&a.model, &key, &opts)
        .with_context(|| format!("cannot sign {}", a.model.display()))?;
    std::fs::write(&sig, bundle).with_context(|| format!("cannot write {}", sig.display()))?;
    crate::run::note(format!(
        "signed {} files of {} into {}\n",
        m.files.len(),
        a.model.display(),
        sig.display()
    ));
    Ok(0)
}
