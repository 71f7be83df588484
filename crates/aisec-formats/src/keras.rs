//! Keras model-configuration analysis.
//!
//! One JSON walker serves three containers: the `model_config` root attribute
//! of legacy `.h5` files (Keras 2 / tf.keras), the `config.json` member of
//! Keras 3 `.keras` zips, and the per-layer JSON metadata of
//! `keras_metadata.pb` in TF SavedModels. It reports:
//!
//! - `Lambda` layers whose function is marshalled Python bytecode: Keras 2
//!   stores `config.function` as base64 of `marshal.dumps(code)` (or a
//!   `[code, defaults, closure]` list, from `keras.utils.func_dump`), Keras 3
//!   as `{"class_name": "__lambda__", "config": {"code": ...}}` or, in other
//!   versions, `{"config": {"value": [code, defaults, closure]}}`. Keras rebuilds
//!   it with `marshal.loads` at load time (CVE-2024-3660; in `.h5` files
//!   safe_mode is ignored, CVE-2025-9905). The bytecode is never run: its
//!   string constants and names are recovered by a byte-level scan of the
//!   marshal stream and shown as evidence.
//! - Module/function references (`"class_name": "function"` and `module`
//!   fields outside Keras): Keras 3 imports the module and resolves the name,
//!   which crafted configs abuse to call arbitrary functions
//!   (CVE-2025-1550, GHSA-48g7-3x6r-xfhp) or `keras.models.load_model` with
//!   `safe_mode=False` (CVE-2025-9906); see the io-no/CVE-Reports write-ups.
//! - custom (non-built-in) classes, `TFOpLambda` layers naming file-system or
//!   Python-callback TensorFlow APIs, and `safe_mode: false` arguments.

use aisec_core::json::{JsonError, JsonLimits};
use aisec_core::{Confidence, Location, Severity};
use base64::Engine;
use serde_json::Value;

use crate::rules::*;
use crate::{clip, FormatReport};

/// Which container the JSON came from; shapes the evidence text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `model_config` attribute of an HDF5 file (safe_mode never applies).
    H5,
    /// Keras 3 `config.json`.
    KerasV3,
    /// `keras_metadata.pb` entry of a TF SavedModel.
    SavedModelMetadata,
}

/// Largest JSON document analysed; bigger ones are reported unverifiable.
pub const MAX_JSON: usize = JSON_LIMITS.max_bytes;
/// Bounds for every Keras configuration document (bytes, depth, elements):
/// see [`aisec_core::json`].
pub const JSON_LIMITS: JsonLimits = JsonLimits::SCAN;
const MAX_NODES: usize = 2_000_000;
const MAX_DEPTH: usize = 256;

/// Scans a Keras 3 `config.json` (also accepts Keras 2 `model_config` JSON).
pub fn scan_keras_config(json: &[u8], loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    if let Err(e) = analyze_bytes(json, loc, Origin::KerasV3, "config.json", &mut r) {
        r.set_malformed(format!("config.json is not valid JSON: {e}"));
    }
    r
}

/// Parses one configuration document within [`JSON_LIMITS`] and analyses
/// it. A document over a bound is never silently skipped: it gets a
/// [`KERAS_UNVERIFIABLE`] finding (high), and a byte search for serialized
/// Lambda layers runs over its text, so padding a config past the limit
/// cannot lower the verdict. Returns the syntax error of a document that
/// is within bounds but not valid JSON, for the caller to report.
pub fn analyze_bytes(
    json: &[u8],
    loc: &Location,
    origin: Origin,
    what: &str,
    r: &mut FormatReport,
) -> Result<(), serde_json::Error> {
    match aisec_core::json::parse_value(json, &JSON_LIMITS) {
        Ok(v) => {
            analyze(&v, loc, origin, r);
            Ok(())
        }
        Err(JsonError::Syntax(e)) => Err(e),
        Err(e) => {
            unverifiable(json, loc, what, &e.to_string(), r);
            Ok(())
        }
    }
}

/// Reports a configuration that could not be inspected (over a bound or
/// unreadable) and searches what bytes there are for Lambda layers.
pub fn unverifiable(text: &[u8], loc: &Location, what: &str, why: &str, r: &mut FormatReport) {
    r.push(KERAS_UNVERIFIABLE.finding(
        loc.clone(),
        format!("{what} could not be inspected for code: {why}"),
    ));
    lexical_lambda_search(text, loc, "in a configuration too large to parse", r);
}

/// Needles of a serialized Lambda layer (Keras 2 and Keras 3 spellings).
const LAMBDA_NEEDLES: [&[u8]; 4] = [
    b"\"class_name\": \"Lambda\"",
    b"\"class_name\":\"Lambda\"",
    b"\"__lambda__\"",
    b"\"function_type\": \"lambda\"",
];

/// Byte search for serialized Lambda layers where the structured reader
/// could not go; reports the first hit as [`KERAS_LAMBDA`] at medium
/// confidence. Returns whether one was found.
pub(crate) fn lexical_lambda_search(
    data: &[u8],
    loc: &Location,
    context: &str,
    r: &mut FormatReport,
) -> bool {
    lexical_lambda_search_in(&[(0, data)], loc, context, r)
}

/// [`lexical_lambda_search`] over pieces of one file, each with its
/// offset (in order): a match never spans two pieces.
pub(crate) fn lexical_lambda_search_in(
    segments: &[(u64, &[u8])],
    loc: &Location,
    context: &str,
    r: &mut FormatReport,
) -> bool {
    for n in LAMBDA_NEEDLES {
        let hit = segments
            .iter()
            .find_map(|(off, d)| memchr::memmem::find(d, n).map(|at| off + at as u64));
        if let Some(at) = hit {
            r.push(
                KERAS_LAMBDA
                    .finding(
                        loc.clone().with_offset(at),
                        format!(
                            "serialized Keras Lambda layer text found by byte search at offset {at}, {context}"
                        ),
                    )
                    .confidence(Confidence::Medium),
            );
            return true;
        }
    }
    false
}

/// Walks a parsed Keras configuration and adds findings to `r`.
pub fn analyze(v: &Value, loc: &Location, origin: Origin, r: &mut FormatReport) {
    let mut w = Walker {
        loc,
        origin,
        r,
        nodes: 0,
        lambdas: 0,
    };
    w.walk(v, 0, false);
    if w.nodes >= MAX_NODES {
        w.r.note("keras config: node limit reached; the rest was not inspected");
    }
}

struct Walker<'a> {
    loc: &'a Location,
    origin: Origin,
    r: &'a mut FormatReport,
    nodes: usize,
    lambdas: usize,
}

/// Module roots that ship with Keras or TensorFlow.
const KNOWN_ROOTS: &[&str] = &[
    "keras",
    "tf_keras",
    "tensorflow",
    "tf",
    "keras_hub",
    "keras_nlp",
    "keras_cv",
    "keras_rs",
];

/// Standard-library or common modules whose import in a model config means
/// code execution or file/network access.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "__builtin__",
    "sys",
    "importlib",
    "runpy",
    "shutil",
    "socket",
    "pickle",
    "marshal",
    "code",
    "codeop",
    "pty",
    "ctypes",
    "pathlib",
    "io",
    "webbrowser",
    "multiprocessing",
    "shelve",
    "tempfile",
    "urllib",
    "requests",
    "http",
    "platform",
    "commands",
    "asyncio",
    "threading",
    "pdb",
    "timeit",
    "dill",
    "cloudpickle",
    "joblib",
    "numpy.f2py",
];

/// Function names that are dangerous to resolve from a config, whatever the module.
const DANGEROUS_FUNCS: &[&str] = &[
    "load_model",
    "enable_unsafe_deserialization",
    "set_global_attribute",
    "get_file",
    "system",
    "popen",
    "eval",
    "exec",
    "compile",
    "__import__",
    "import_module",
    "open",
    "run",
    "call",
    "check_output",
    "check_call",
    "Popen",
    "getoutput",
    "spawn",
    "execv",
    "execve",
    "load",
    "loads",
    "rmtree",
    "remove",
    "unlink",
    "write_file",
    "read_file",
    "getattr",
    "setattr",
    "save_model",
    "save",
    "load_weights",
    "deserialize_keras_object",
];

/// Keras module path fragments whose functions are routinely serialized.
const BENIGN_FUNC_MODULES: &[&str] = &[
    "losses",
    "metrics",
    "activations",
    "initializers",
    "regularizers",
    "constraints",
    "ops",
    "backend",
    "math",
    "nn",
];

impl Walker<'_> {
    fn walk(&mut self, v: &Value, depth: usize, in_layers: bool) {
        if depth > MAX_DEPTH || self.nodes >= MAX_NODES {
            return;
        }
        self.nodes += 1;
        match v {
            Value::Array(a) => {
                for x in a {
                    self.walk(x, depth + 1, in_layers);
                }
            }
            Value::Object(o) => {
                self.object(o, in_layers);
                for (k, x) in o {
                    self.walk(x, depth + 1, k == "layers");
                }
            }
            _ => {}
        }
    }

    fn finding(&mut self, f: aisec_core::Finding) {
        self.r.push(f);
    }

    fn object(&mut self, o: &serde_json::Map<String, Value>, in_layers: bool) {
        if o.get("safe_mode") == Some(&Value::Bool(false)) {
            self.finding(KERAS_UNSAFE_FLAG.finding(
                self.loc.clone(),
                "an object passes safe_mode=false (nested unsafe load, CVE-2025-9906 pattern)",
            ));
        }
        let Some(class) = o.get("class_name").and_then(Value::as_str) else {
            return;
        };
        let module = o.get("module").and_then(Value::as_str);
        let config = o.get("config");
        let name = config
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .or_else(|| o.get("name").and_then(Value::as_str))
            .unwrap_or("?");
        match class {
            "Lambda" => self.lambda_layer(name, config),
            "__lambda__" => {
                // Keras 3 writes {"code": b64} or {"value": func_dump(...)} (a
                // [code, defaults, closure] list) depending on the version.
                let code = config.and_then(|c| {
                    c.get("code")
                        .and_then(Value::as_str)
                        .or_else(|| match c.get("value") {
                            Some(Value::Array(a)) => a.first().and_then(Value::as_str),
                            Some(Value::String(s)) => Some(s.as_str()),
                            _ => None,
                        })
                });
                self.lambda_code(name, code.unwrap_or(""), "Keras 3 __lambda__");
            }
            "function" => self.function_ref(module, config),
            "TFOpLambda" => self.tfoplambda(name, config),
            "TorchModuleWrapper" => self.torch_module_wrapper(name, config),
            _ => {}
        }
        self.file_reading_config(class, name, config);
        if !matches!(class, "function" | "__lambda__") {
            if let Some(m) = module {
                self.module_ref(m, class);
            }
        }
        if let Some(reg) = o.get("registered_name").and_then(Value::as_str) {
            let package = reg.split('>').next().unwrap_or("");
            if reg.contains('>')
                && !KNOWN_ROOTS.contains(&package)
                && module.map(root_known).unwrap_or(true)
            {
                self.finding(KERAS_CUSTOM_OBJECT.finding(
                    self.loc.clone(),
                    format!(
                        "registered custom object '{}' (class {})",
                        clip(reg, 120),
                        clip(class, 80)
                    ),
                ));
            }
        }
        if in_layers
            && module.is_none()
            && !KNOWN_LAYERS.contains(&class)
            && !matches!(class, "Lambda" | "TFOpLambda")
        {
            self.finding(
                KERAS_CUSTOM_OBJECT
                    .finding(
                        self.loc.clone(),
                        format!(
                            "layer '{}' has class '{}', which is not a built-in Keras layer",
                            clip(name, 80),
                            clip(class, 80)
                        ),
                    )
                    .confidence(Confidence::Medium),
            );
        }
    }

    fn lambda_layer(&mut self, name: &str, config: Option<&Value>) {
        let Some(c) = config else { return };
        for (field, ty_field) in [
            ("function", "function_type"),
            ("output_shape", "output_shape_type"),
        ] {
            let f = c.get(field);
            let ty = c.get(ty_field).and_then(Value::as_str);
            let code = match f {
                Some(Value::Array(a)) => a.first().and_then(Value::as_str),
                Some(Value::String(s))
                    if ty == Some("lambda")
                        || (field == "function" && ty.is_none() && looks_b64(s)) =>
                {
                    Some(s.as_str())
                }
                Some(Value::String(s)) if field == "function" => {
                    let module = c.get("module").and_then(Value::as_str).unwrap_or("?");
                    self.finding(KERAS_LAMBDA_NAMED.finding(
                        self.loc.clone(),
                        format!(
                            "Lambda layer '{}' calls function '{}' from module '{}'",
                            clip(name, 80),
                            clip(s, 120),
                            clip(module, 120)
                        ),
                    ));
                    None
                }
                _ => None,
            };
            if let Some(code) = code {
                self.lambda_code(
                    name,
                    code,
                    if field == "function" {
                        "Lambda function"
                    } else {
                        "Lambda output_shape"
                    },
                );
            }
        }
    }

    fn lambda_code(&mut self, name: &str, code_b64: &str, what: &str) {
        self.lambdas += 1;
        let decoded = decode_b64(code_b64);
        let mut evidence = format!(
            "{what} of layer '{}' is marshalled Python bytecode",
            clip(name, 80)
        );
        match &decoded {
            Some(bytes) => {
                let strings = marshal_strings(bytes, 40);
                let risky: Vec<&str> = strings
                    .iter()
                    .map(String::as_str)
                    .filter(|s| RISKY_NAMES.contains(s))
                    .collect();
                evidence.push_str(&format!(" ({} bytes", bytes.len()));
                if !strings.is_empty() {
                    evidence.push_str(&format!(
                        "; names/strings: {}",
                        clip(&strings.join(", "), 300)
                    ));
                }
                if !risky.is_empty() {
                    evidence.push_str(&format!("; risky: {}", risky.join(", ")));
                }
                evidence.push(')');
            }
            None => evidence.push_str(" (base64 did not decode)"),
        }
        evidence.push_str(match self.origin {
            Origin::H5 => "; HDF5 models ignore safe_mode (CVE-2025-9905), so load_model runs it",
            Origin::KerasV3 => {
                "; runs at load when safe_mode=False or on Keras < 3 (CVE-2024-3660)"
            }
            Origin::SavedModelMetadata => "; runs when the Keras SavedModel is revived",
        });
        self.finding(KERAS_LAMBDA.finding(self.loc.clone(), evidence));
    }

    fn function_ref(&mut self, module: Option<&str>, config: Option<&Value>) {
        let module = module.unwrap_or("");
        let func = match config {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Object(o)) => o.get("name").and_then(Value::as_str).unwrap_or("?"),
            _ => "?",
        };
        let known = root_known(module);
        let last = func.rsplit('.').next().unwrap_or(func);
        let dangerous = DANGEROUS_FUNCS.contains(&last) || is_dangerous_module(module);
        if known
            && !dangerous
            && BENIGN_FUNC_MODULES
                .iter()
                .any(|m| module.split('.').any(|p| p == *m))
        {
            return;
        }
        let sev = if dangerous {
            Severity::Critical
        } else {
            Severity::High
        };
        self.finding(
            KERAS_FUNCTION_REF
                .finding(
                    self.loc.clone(),
                    format!(
                        "config makes Keras import '{}' and call '{}'",
                        clip(module, 120),
                        clip(func, 120)
                    ),
                )
                .severity(sev),
        );
    }

    fn module_ref(&mut self, module: &str, class: &str) {
        if root_known(module) {
            return;
        }
        // What the resolved class or function can do, from the pickle
        // crate's generated capability table (stdlib, torch, numpy, ...).
        let cap = aisec_pickle::capability::lookup(module, class);
        let sev = if is_dangerous_module(module) || cap.is_some() {
            Severity::Critical
        } else if aisec_pickle::capability::module_known(module) {
            // A standard-library or ML-library module that is not Keras
            // (`pydoc`, `torch.utils...`): no model needs its classes.
            Severity::High
        } else {
            Severity::Medium
        };
        let can = cap
            .map(|c| format!(" ({}, reaches {})", c.caps.describe(), c.via))
            .unwrap_or_default();
        self.finding(
            KERAS_FOREIGN_MODULE
                .finding(
                    self.loc.clone(),
                    format!(
                        "class '{}' is resolved from module '{}'{can}",
                        clip(class, 80),
                        clip(module, 120)
                    ),
                )
                .severity(sev),
        );
    }

    /// Layer configs that make the loader read a local file while the layer
    /// is built (safe mode does not stop it): a lookup layer's vocabulary,
    /// IDF weights or stop words given as a path are read with
    /// `tf.io.gfile` and become part of the model (huntr reports on Keras
    /// `StringLookup(vocabulary="/proc/self/environ")`).
    fn file_reading_config(&mut self, class: &str, name: &str, config: Option<&Value>) {
        let Some(Value::Object(c)) = config else {
            return;
        };
        for key in [
            "vocabulary",
            "idf_weights",
            "stop_words",
            "vocabulary_file",
            "path",
        ] {
            let Some(Value::String(p)) = c.get(key) else {
                continue;
            };
            let p = p.trim();
            if p.is_empty() || !(p.contains('/') || p.contains('\\') || p.starts_with('~')) {
                continue;
            }
            self.finding(KERAS_FILE_READ.finding(
                self.loc.clone(),
                format!(
                    "{} layer '{}' reads '{}' from the loading machine ({key})",
                    clip(class, 60),
                    clip(name, 80),
                    clip(p, 160)
                ),
            ));
        }
    }

    /// Keras 3 `TorchModuleWrapper.from_config` base64-decodes
    /// `config["module"]` and passes it to `torch.load(weights_only=False)`:
    /// the decoded checkpoint is handed to the driver to be scanned.
    fn torch_module_wrapper(&mut self, name: &str, config: Option<&Value>) {
        let Some(Value::String(m)) = config.and_then(|c| c.get("module")) else {
            return;
        };
        match decode_b64(m) {
            Some(bytes) => {
                self.r.note(format!(
                    "TorchModuleWrapper layer '{}' embeds a {}-byte torch checkpoint (scanned)",
                    clip(name, 80),
                    bytes.len()
                ));
                self.r.embed(
                    format!("<TorchModuleWrapper {} module>", clip(name, 60)),
                    bytes,
                );
            }
            None => self.finding(
                KERAS_FOREIGN_MODULE
                    .finding(
                        self.loc.clone(),
                        format!(
                            "TorchModuleWrapper layer '{}' has a module that is not valid base64",
                            clip(name, 80)
                        ),
                    )
                    .severity(Severity::Medium),
            ),
        }
    }

    fn tfoplambda(&mut self, name: &str, config: Option<&Value>) {
        let Some(f) = config
            .and_then(|c| c.get("function"))
            .and_then(Value::as_str)
        else {
            return;
        };
        let lower = f.to_ascii_lowercase();
        let bad = [
            "io.",
            "py_function",
            "numpy_function",
            "py_func",
            "raw_ops",
            "read_file",
            "write_file",
            "gfile",
            "print",
            "debugging",
            "saved_model",
            "load_op_library",
            "load_library",
        ]
        .iter()
        .any(|p| lower.contains(p));
        if bad {
            self.finding(KERAS_TFOPLAMBDA.finding(
                self.loc.clone(),
                format!(
                    "TFOpLambda layer '{}' calls tf.{}",
                    clip(name, 80),
                    clip(f, 120)
                ),
            ));
        } else {
            self.r.note(format!(
                "TFOpLambda layer '{}' calls tf.{}",
                clip(name, 80),
                clip(f, 120)
            ));
        }
    }
}

fn root_known(module: &str) -> bool {
    let root = module.split('.').next().unwrap_or("");
    KNOWN_ROOTS.contains(&root)
}

fn is_dangerous_module(module: &str) -> bool {
    let root = module.split('.').next().unwrap_or("");
    DANGEROUS_MODULES.contains(&root) || DANGEROUS_MODULES.contains(&module)
}

fn looks_b64(s: &str) -> bool {
    s.len() >= 16
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r'))
}

/// Decodes base64 as written by `codecs.encode(..., "base64")` (MIME lines)
/// or `base64.b64encode` (one line), with or without padding.
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let e = base64::engine::general_purpose::STANDARD;
    e.decode(clean.as_bytes())
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(clean.trim_end_matches('=').as_bytes())
        })
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(clean.trim_end_matches('=').as_bytes())
        })
        .ok()
}

/// Names that make a Lambda's bytecode clearly dangerous when they appear
/// among its names or constants.
pub const RISKY_NAMES: &[&str] = &[
    "os",
    "system",
    "popen",
    "subprocess",
    "eval",
    "exec",
    "__import__",
    "builtins",
    "socket",
    "Popen",
    "check_output",
    "getattr",
    "compile",
    "marshal",
    "pickle",
    "urllib",
    "requests",
    "open",
    "remove",
    "rmtree",
    "spawn",
    "execve",
    "connect",
    "urlopen",
];

/// Recovers identifier-like strings from a Python `marshal` stream without
/// interpreting it: scans for the string type codes of the marshal format
/// (`z`/`Z` short ASCII with a 1-byte length; `a`/`A`/`u`/`t`/`s` with a
/// 4-byte little-endian length; each optionally OR-ed with the 0x80 ref
/// flag) and keeps printable payloads. Returns at most `max` unique strings
/// in order of appearance.
pub fn marshal_strings(data: &[u8], max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0usize;
    while i < data.len() && out.len() < max {
        let t = data[i] & 0x7f;
        let (len, start) = match t {
            b'z' | b'Z' => match data.get(i + 1) {
                Some(&l) => (l as usize, i + 2),
                None => break,
            },
            b'a' | b'A' | b'u' | b't' | b's' => match data.get(i + 1..i + 5) {
                Some(b) => (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, i + 5),
                None => break,
            },
            _ => {
                i += 1;
                continue;
            }
        };
        if (2..=200).contains(&len) {
            if let Some(s) = data.get(start..start + len) {
                if s.iter().all(|&b| (0x20..0x7f).contains(&b))
                    && s.iter().any(|b| b.is_ascii_alphabetic())
                {
                    let st = String::from_utf8_lossy(s).into_owned();
                    if !out.contains(&st) {
                        out.push(st);
                    }
                    i = start + len;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// Built-in Keras layer class names (Keras 2.x and 3.x), used to tell custom
/// layers apart in legacy configs that carry no `module` field.
pub const KNOWN_LAYERS: &[&str] = &[
    "InputLayer",
    "Dense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "SeparableConv1D",
    "SeparableConv2D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
    "ActivityRegularization",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ThresholdedReLU",
    "Softmax",
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "UnitNormalization",
    "SyncBatchNormalization",
    "Normalization",
    "Embedding",
    "Masking",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "LSTMCell",
    "GRUCell",
    "SimpleRNNCell",
    "RNN",
    "StackedRNNCells",
    "Bidirectional",
    "TimeDistributed",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
    "Attention",
    "AdditiveAttention",
    "MultiHeadAttention",
    "GroupQueryAttention",
    "EinsumDense",
    "Identity",
    "Rescaling",
    "Resizing",
    "CenterCrop",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomContrast",
    "RandomBrightness",
    "RandomTranslation",
    "TextVectorization",
    "StringLookup",
    "IntegerLookup",
    "CategoryEncoding",
    "Hashing",
    "Discretization",
    "HashedCrossing",
    "Functional",
    "Sequential",
    "Model",
    "TFOpLambda",
    "SlicingOpLambda",
    "Lambda",
    "InputSpec",
    "Wrapper",
    "AbstractRNNCell",
    "CuDNNLSTM",
    "CuDNNGRU",
    "LocallyConnected1D",
    "LocallyConnected2D",
    "SpectralNormalization",
    "TorchModuleWrapper",
    "Pipeline",
    "MelSpectrogram",
    "STFTSpectrogram",
    "AutoContrast",
    "Solarization",
    "RandomGrayscale",
    "RandomHue",
    "RandomSaturation",
    "RandomSharpness",
    "RandomShear",
    "RandomPosterization",
    "RandomErasing",
    "RandomGaussianBlur",
    "RandomColorJitter",
    "RandomColorDegeneration",
    "RandomInvert",
    "RandomPerspective",
    "RandAugment",
    "AugMix",
    "CutMix",
    "MixUp",
    "Equalization",
    "MaxNumBoundingBoxes",
    "RMSNormalization",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> FormatReport {
        scan_keras_config(s.as_bytes(), &Location::path("config.json"))
    }

    #[test]
    fn marshal_scan_finds_names() {
        // A hand-assembled fragment: short-ascii 'os', interned 'system', unicode 'echo hi'.
        let mut m = vec![0xe3, 0, 0];
        m.extend_from_slice(&[b'z', 2, b'o', b's', 0xda, 6]);
        m.extend_from_slice(b"system");
        m.push(b'u');
        m.extend_from_slice(&7u32.to_le_bytes());
        m.extend_from_slice(b"echo hi");
        let s = marshal_strings(&m, 10);
        assert_eq!(s, vec!["os", "system", "echo hi"]);
    }

    #[test]
    fn keras3_lambda_is_critical() {
        let code =
            base64::engine::general_purpose::STANDARD.encode(b"\xe3\x00\x00z\x02osZ\x06system");
        let j = format!(
            r#"{{"module":"keras","class_name":"Sequential","config":{{"layers":[{{"module":"keras.layers","class_name":"Lambda","config":{{"name":"l","function":{{"class_name":"__lambda__","config":{{"code":"{code}","defaults":null,"closure":null}}}}}},"registered_name":null}}]}}}}"#
        );
        let r = scan(&j);
        assert!(r.malformed.is_none());
        let f = r
            .findings
            .iter()
            .find(|f| f.rule_id == "AISEC-KERAS-001")
            .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.evidence.contains("risky: os, system"), "{}", f.evidence);
        let j2 =
            format!(r#"{{"class_name":"__lambda__","config":{{"value":["{code}",null,null]}}}}"#);
        assert!(scan(&j2)
            .findings
            .iter()
            .any(|f| f.rule_id == "AISEC-KERAS-001"));
    }

    fn lambda_config(padding: &str) -> String {
        let code =
            base64::engine::general_purpose::STANDARD.encode(b"\xe3\x00\x00z\x02osZ\x06system");
        format!(
            r#"{{"module":"keras","class_name":"Sequential","config":{{"layers":[{{"module":"keras.layers","class_name":"Lambda","config":{{"name":"l","function":{{"class_name":"__lambda__","config":{{"code":"{code}","defaults":null,"closure":null}}}}}},"registered_name":null}}],"pad":{padding}}}}}"#
        )
    }

    /// Issue 19: padding a config past a bound must never lower the verdict.
    #[test]
    fn padded_lambda_config_stays_critical() {
        // Element padding: 300,000 one-entry objects (900,000 elements, 2 MB).
        let pad = format!("[{}{{\"\":0}}]", r#"{"":0},"#.repeat(299_999));
        let r = scan(&lambda_config(&pad));
        let ids: Vec<(&str, Severity)> = r
            .findings
            .iter()
            .map(|f| (f.rule_id.as_str(), f.severity))
            .collect();
        assert!(
            ids.contains(&("AISEC-KERAS-008", Severity::High)),
            "{ids:?}"
        );
        assert!(
            ids.contains(&("AISEC-KERAS-001", Severity::Critical)),
            "{ids:?}"
        );
        assert!(r.malformed.is_none());
        // Byte padding: whitespace past 64 MiB.
        let pad = format!("{}0", " ".repeat(MAX_JSON));
        let r = scan(&lambda_config(&pad));
        let ids: Vec<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert!(ids.contains(&"AISEC-KERAS-008"), "{ids:?}");
        assert!(ids.contains(&"AISEC-KERAS-001"), "{ids:?}");
        // The same padding without a Lambda is still high (unverifiable), never quiet.
        let r = scan(&format!(r#"{{"class_name":"Sequential","pad":{pad}}}"#));
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        assert_eq!(r.findings[0].severity, Severity::High);
        // Unpadded: parsed and critical, no unverifiable finding.
        let r = scan(&lambda_config("0"));
        assert!(r.findings.iter().all(|f| f.rule_id != "AISEC-KERAS-008"));
        assert!(r.findings.iter().any(|f| f.rule_id == "AISEC-KERAS-001"));
    }

    #[test]
    fn cve_2025_1550_module_gadget() {
        let j = r#"{"module":"keras.layers","class_name":"Lambda","config":{"name":"x","function":{"module":"keras.models","class_name":"function","config":"load_model","registered_name":"function"},"arguments":{"safe_mode":false}}}"#;
        let r = scan(j);
        assert!(r
            .findings
            .iter()
            .any(|f| f.rule_id == "AISEC-KERAS-002" && f.severity == Severity::Critical));
        assert!(r.findings.iter().any(|f| f.rule_id == "AISEC-KERAS-007"));
        let j2 = r#"{"module":"os","class_name":"system","config":{"command":"id"}}"#;
        let r2 = scan(j2);
        assert!(r2
            .findings
            .iter()
            .any(|f| f.rule_id == "AISEC-KERAS-003" && f.severity == Severity::Critical));
    }

    #[test]
    fn stdlib_module_classes_are_high_and_file_reading_configs_found() {
        // A class resolved from a standard-library module (pydoc): at least high.
        let r = scan(r#"{"module":"pydoc","class_name":"Helper","config":{}}"#);
        let f = r
            .findings
            .iter()
            .find(|f| f.rule_id == "AISEC-KERAS-003")
            .expect("foreign module finding");
        assert!(f.severity >= Severity::High, "{f:?}");
        // One whose class can run processes per the capability table: critical.
        let r = scan(r#"{"module":"pydoc","class_name":"pipepager","config":{}}"#);
        assert!(r
            .findings
            .iter()
            .any(|f| f.rule_id == "AISEC-KERAS-003" && f.severity == Severity::Critical));
        // An unknown third-party package stays medium (custom layers).
        let r = scan(r#"{"module":"my_pkg.layers","class_name":"Block","config":{}}"#);
        assert!(r
            .findings
            .iter()
            .all(|f| f.rule_id != "AISEC-KERAS-003" || f.severity == Severity::Medium));
        // A lookup layer whose vocabulary is a local path.
        let r = scan(
            r#"{"module":"keras.layers","class_name":"StringLookup","config":{"name":"lk","vocabulary":"/proc/self/environ"}}"#,
        );
        assert!(r
            .findings
            .iter()
            .any(|f| f.rule_id == "AISEC-KERAS-009" && f.evidence.contains("/proc/self/environ")));
        // A vocabulary given as a list is data, not a path.
        let r = scan(
            r#"{"module":"keras.layers","class_name":"StringLookup","config":{"name":"lk","vocabulary":["a","b/c"]}}"#,
        );
        assert!(r.findings.iter().all(|f| f.rule_id != "AISEC-KERAS-009"));
    }

    #[test]
    fn torch_module_wrapper_payload_is_handed_on() {
        let r = scan(
            r#"{"module":"keras.layers","class_name":"TorchModuleWrapper","config":{"name":"t","module":"gAJjcG9zaXgKc3lzdGVtClgCAAAAaWSFUi4="}}"#,
        );
        assert_eq!(r.embedded.len(), 1);
        assert!(r.embedded[0].bytes.starts_with(b"\x80\x02cposix"));
    }

    #[test]
    fn benign_functional_is_quiet() {
        let j = r#"{"module":"keras","class_name":"Functional","config":{"name":"m","layers":[{"module":"keras.layers","class_name":"InputLayer","config":{"batch_shape":[null,4]},"registered_name":null},{"module":"keras.layers","class_name":"Dense","config":{"units":2,"activation":"relu","kernel_initializer":{"module":"keras.initializers","class_name":"GlorotUniform","config":{"seed":null},"registered_name":null}},"registered_name":null}]},"compile_config":{"loss":{"module":"keras.losses","class_name":"function","config":"mean_squared_error","registered_name":null}}}"#;
        let r = scan(j);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    #[test]
    fn keras2_tfoplambda_named_lambda_and_custom_layer() {
        let j = r#"{"class_name":"Functional","config":{"layers":[
            {"class_name":"TFOpLambda","config":{"name":"tf.io.write_file","function":"io.write_file"}},
            {"class_name":"TFOpLambda","config":{"name":"tf.math.add","function":"math.add"}},
            {"class_name":"Lambda","config":{"name":"l","function":"my_fn","function_type":"raw","module":"mylib"}},
            {"class_name":"MyAttention","config":{"name":"att"}}]}}"#;
        let r = scan(j);
        let ids: Vec<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(
            ids.iter().filter(|i| **i == "AISEC-KERAS-005").count(),
            1,
            "{ids:?}"
        );
        assert!(ids.contains(&"AISEC-KERAS-006"));
        assert!(ids.contains(&"AISEC-KERAS-004"));
        assert!(r.notes.iter().any(|n| n.contains("math.add")));
    }

    #[test]
    fn invalid_and_deep_json_are_malformed() {
        assert!(scan("{not json").malformed.is_some());
        // Nesting past the bound (Python's json goes deeper, so Keras could
        // still load it): unverifiable, high.
        let deep = "[".repeat(100_000);
        let r = scan(&deep);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule_id == "AISEC-KERAS-008" && f.severity == Severity::High),
            "{:?}",
            r.findings
        );
    }
}
