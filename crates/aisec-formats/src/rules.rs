//! Static rule definitions for every finding this crate reports.
//!
//! Code-execution rules carry ATLAS AML.T0011.000 (Unsafe AI Artifacts) and
//! AML.T0010.003 (Supply Chain Compromise: Model); integrity and parser-abuse
//! rules carry AML.T0010.003 alone. All map to OWASP LLM03 (Supply Chain).

use aisec_core::{Rule, Severity};

const EXEC: &[&str] = &["AML.T0011.000", "AML.T0010.003"];
const INTEGRITY: &[&str] = &["AML.T0010.003"];
const LLM03: &[&str] = &["LLM03"];

macro_rules! rule {
    ($ident:ident, $id:expr, $name:expr, $sev:ident, $atlas:expr, $title:expr, $desc:expr, $fix:expr) => {
        #[doc = $title]
        pub static $ident: Rule = Rule {
            id: $id,
            name: $name,
            title: $title,
            description: $desc,
            default_severity: Severity::$sev,
            atlas: $atlas,
            owasp: LLM03,
            remediation: $fix,
        };
    };
}

// ---- HDF5 -------------------------------------------------------------
rule!(H5_EXTERNAL_LINK, "AISEC-H5-001", "h5-external-link", Medium, INTEGRITY,
    "HDF5 external link to another file",
    "The HDF5 file contains an external link: opening the linked object makes the HDF5 library open another file named by the artifact, which can pull attacker-chosen content into the model or probe the local file system.",
    "Remove external links (h5py: copy the linked objects into the file) and only load files whose every object is stored inside them.");
rule!(H5_EXTERNAL_STORAGE, "AISEC-H5-002", "h5-external-raw-storage", Medium, INTEGRITY,
    "HDF5 dataset stored in external raw files",
    "A dataset's raw data lives in external files named by the artifact (External Data Files message). Loading the weights reads those files, which may be arbitrary local files (for example /etc/passwd) turned into tensors.",
    "Re-save the model with all datasets stored inside the HDF5 file; reject files with external storage.");
rule!(H5_BAD_CONFIG, "AISEC-H5-003", "h5-unparseable-model-config", Low, INTEGRITY,
    "Keras model_config attribute is not valid JSON",
    "The root attribute model_config could not be parsed as JSON, so the model architecture could not be inspected for Lambda layers or custom objects. Keras would fail to load it, or a different parser could read it differently.",
    "Re-export the model from a trusted source; inspect the attribute by hand.");

// ---- Keras ------------------------------------------------------------
rule!(KERAS_LAMBDA, "AISEC-KERAS-001", "keras-lambda-bytecode", Critical, EXEC,
    "Keras Lambda layer with serialized Python code",
    "A Lambda layer stores its function as marshalled Python bytecode (base64). Keras rebuilds the function with marshal.loads when the model is loaded (Keras 2 and .h5 files always — CVE-2024-3660, CVE-2025-9905 — and Keras 3 when safe_mode=False), so loading the model runs attacker code.",
    "Do not load the model. If the Lambda is legitimate, replace it with a registered custom layer whose code you review, and load with safe_mode=True from a Keras version >= 3.9.");
rule!(KERAS_FUNCTION_REF, "AISEC-KERAS-002", "keras-function-reference", High, EXEC,
    "Keras config references a Python function to import and call",
    "A serialized object names a module and function (class_name 'function', or a Lambda whose function is a module reference). Keras imports and calls it during deserialization; crafted configs use this to reach functions such as keras.models.load_model or keras.config.enable_unsafe_deserialization and bypass safe_mode (CVE-2025-1550, CVE-2025-9906).",
    "Do not load the model with a Keras version older than 3.11; review every module/function reference in config.json and remove any that is not a standard loss, metric or activation.");
rule!(KERAS_FOREIGN_MODULE, "AISEC-KERAS-003", "keras-foreign-module", High, EXEC,
    "Keras config imports a module outside Keras",
    "A serialized object's 'module' field names a Python module outside keras/tensorflow. Keras 3 imports that module to resolve the class, so the model can make the loader import and instantiate arbitrary code (CVE-2025-1550). Dangerous standard-library modules (os, subprocess, builtins...) are reported as critical.",
    "Only load the model if the named package is one you trust and have installed on purpose; otherwise reject it.");
rule!(KERAS_CUSTOM_OBJECT, "AISEC-KERAS-004", "keras-custom-object", Low, EXEC,
    "Keras config uses a custom (non-built-in) object",
    "A layer or object class is not one Keras ships, so loading requires custom_objects or a registered class from outside the artifact. The code that runs is whatever the loader supplies under that name.",
    "Make sure the custom class comes from reviewed code that you control, not from the model's distribution.");
rule!(KERAS_TFOPLAMBDA, "AISEC-KERAS-005", "keras-tfoplambda-dangerous-api", High, EXEC,
    "TFOpLambda layer calls a file-system or Python-callback TensorFlow API",
    "A TFOpLambda layer replays a named TensorFlow API at call time. This one names an API that reads or writes files or calls back into Python (tf.io.*, tf.py_function, tf.numpy_function, tf.raw_ops.*), which runs whenever the model runs.",
    "Reject the model or replace the layer with reviewed code.");
rule!(KERAS_LAMBDA_NAMED, "AISEC-KERAS-006", "keras-lambda-named-function", Medium, EXEC,
    "Keras Lambda layer refers to a function by name",
    "A Lambda layer's function is stored as a name (function_type 'raw' or a string), which Keras resolves from custom_objects or module globals at load time. Less direct than bytecode, but the behaviour depends on code outside the artifact.",
    "Check which function the name resolves to in your loader and prefer a registered custom layer.");
rule!(KERAS_UNSAFE_FLAG, "AISEC-KERAS-007", "keras-safe-mode-disabled", High, EXEC,
    "Keras config tries to disable safe_mode",
    "An argument in the config sets safe_mode to false or calls enable_unsafe_deserialization; this is how nested-model loads bypass safe_mode (CVE-2025-9906).",
    "Reject the model.");

// ---- TensorFlow ------------------------------------------------------
rule!(TF_PYFUNC, "AISEC-TF-001", "tf-python-callback-op", Critical, EXEC,
    "TensorFlow graph calls back into Python",
    "The graph contains PyFunc, PyFuncStateless or EagerPyFunc. These ops call a Python function registered in the loading process; combined with a crafted loader or pickled function they run arbitrary Python, and a model has no legitimate reason to ship one.",
    "Do not serve the model; re-export it without tf.py_function / tf.numpy_function.");
rule!(TF_FILE_READ, "AISEC-TF-002", "tf-file-read-op", High, EXEC,
    "TensorFlow graph reads files at run time",
    "The graph contains an op that reads or lists files (ReadFile, MatchingFiles, file-reading dataset ops...). When the model runs it can read arbitrary local files, for example to exfiltrate them through outputs (modelscan flags ReadFile/WriteFile; TensorAbuse attacks).",
    "Reject the model unless the file access is expected and the path is fixed and benign.");
rule!(TF_FILE_WRITE, "AISEC-TF-003", "tf-file-write-op", High, EXEC,
    "TensorFlow graph writes files at run time",
    "The graph contains WriteFile, or PrintV2 / summary ops that write to a file. Running the model can plant files (shell profiles, cron jobs, Python modules) on the serving host.",
    "Reject the model.");
rule!(TF_CKPT_IO, "AISEC-TF-004", "tf-checkpoint-io-outside-saver", Medium, INTEGRITY,
    "Checkpoint save/restore op outside the saver",
    "SaveV2/RestoreV2/MergeV2Checkpoints appear in every SavedModel's saver functions, but this one sits in an ordinary function or the main graph where it runs with the model, reading or writing checkpoint files at attacker-chosen paths.",
    "Inspect the function; re-export the model from source.");
rule!(TF_DEBUG_OP, "AISEC-TF-005", "tf-debug-op", High, INTEGRITY,
    "TensorFlow debug op that sends tensors to a file or URL",
    "Debug ops (DebugIdentity, DebugNanCount, DebugNumericSummary...) stream tensor values to the debug_urls they name (file:// or grpc://), which can exfiltrate inputs and outputs.",
    "Strip debug ops before deployment; reject models that carry them.");
rule!(TF_MEMMAP, "AISEC-TF-006", "tf-immutable-const-memory-region", Medium, INTEGRITY,
    "ImmutableConst maps a named memory region / file",
    "ImmutableConst loads a tensor from the memory region (file) named in its memory_region_name attribute, so the graph reads data from outside the artifact.",
    "Make sure the named region is part of the trusted deployment.");
rule!(
    TF_UNKNOWN_PB,
    "AISEC-TF-007",
    "tf-keras-metadata-unparseable",
    Low,
    INTEGRITY,
    "keras_metadata.pb entry is not valid JSON",
    "A keras_metadata.pb entry could not be parsed as JSON, so its layer could not be inspected.",
    "Inspect the file by hand or re-export the model."
);

// ---- ONNX -----------------------------------------------------------
rule!(ONNX_EXTERNAL_PATH, "AISEC-ONNX-001", "onnx-external-data-path-traversal", High, INTEGRITY,
    "ONNX external data location escapes the model directory",
    "A tensor's external_data 'location' is absolute, climbs out of the model folder with '..', uses a URL scheme or names a device/special file. Loaders that follow it read arbitrary files into the model (CVE-2022-25882, CVE-2024-27318 in onnx).",
    "Reject the model; external data must be relative paths inside the model directory. Use onnx >= 1.16 which validates locations.");
rule!(ONNX_CUSTOM_DOMAIN, "AISEC-ONNX-002", "onnx-custom-op-domain", Medium, EXEC,
    "ONNX model uses a custom operator domain",
    "Nodes use an operator domain outside the ONNX standard ones. Running them requires registering a custom-op shared library (native code) with the runtime.",
    "Only run the model with custom-op libraries you built or reviewed; never load libraries shipped next to the model.");
rule!(ONNX_FUNCTIONS, "AISEC-ONNX-003", "onnx-model-local-functions", Info, INTEGRITY,
    "ONNX model defines model-local functions",
    "The model defines its own functions (ModelProto.functions); they expand to standard ops but can hide a subgraph's real behaviour from a quick review.",
    "Review the function bodies.");
rule!(ONNX_METADATA, "AISEC-ONNX-004", "onnx-suspicious-metadata", Low, INTEGRITY,
    "ONNX metadata contains code, URLs or paths",
    "metadata_props or doc strings carry text that looks like code, shell commands or URLs. Tooling that renders or evaluates metadata could be attacked through it.",
    "Review the metadata; strip it if it is not needed.");
rule!(ONNX_RELATIVE_DOTDOT, "AISEC-ONNX-005", "onnx-external-data-dotdot", Low, INTEGRITY,
    "ONNX external data location uses '..' but stays inside the model directory",
    "A location contains '..' components that do not leave the model folder. Harmless as written, but unusual.",
    "Normalise the path when re-exporting.");

// ---- GGUF ------------------------------------------------------------
rule!(GGUF_SSTI, "AISEC-GGUF-001", "gguf-chat-template-ssti", Critical, EXEC,
    "GGUF chat template reaches Python internals (Jinja SSTI)",
    "The tokenizer.chat_template Jinja template accesses Python object internals (__class__, __globals__, __subclasses__, __builtins__...) or command-running functions. Servers that render the template with an unsandboxed Jinja environment execute code (CVE-2024-34359, llama-cpp-python).",
    "Do not serve the model; replace the chat template with a reviewed one and render templates only in a sandboxed Jinja environment.");
rule!(GGUF_TEMPLATE_SUSPICIOUS, "AISEC-GGUF-002", "gguf-chat-template-suspicious", Medium, EXEC,
    "GGUF chat template uses unusual constructs",
    "The chat template uses constructs that real chat templates do not need (attr filters, escaped underscores, Jinja globals gadgets, mentions of os/eval/exec) that are typical of template-injection payloads.",
    "Review the template by hand.");
rule!(GGUF_MALFORMED, "AISEC-GGUF-003", "gguf-malformed-header", Medium, INTEGRITY,
    "GGUF header has impossible counts or offsets",
    "Tensor or metadata counts, string lengths, dimensions or tensor offsets exceed what the file can hold. Loaders that trust them over-allocate or read out of bounds (several llama.cpp GGUF parser CVEs).",
    "Reject the file; re-download or re-convert the model.");

// ---- safetensors ----------------------------------------------------
rule!(ST_HEADER_SIZE, "AISEC-SAFETENSORS-001", "safetensors-header-size", High, INTEGRITY,
    "safetensors header length is oversized or beyond the file",
    "The 8-byte header length exceeds the 100 MB cap of the reference loader or the file size. Loaders that trust it allocate huge buffers or read out of bounds.",
    "Reject the file.");
rule!(ST_HEADER_JSON, "AISEC-SAFETENSORS-002", "safetensors-header-json", Medium, INTEGRITY,
    "safetensors header is not a valid JSON object",
    "The header is not UTF-8 JSON or not an object of tensor entries, so conforming loaders refuse it and lenient ones may misread it.",
    "Reject the file.");
rule!(
    ST_DTYPE,
    "AISEC-SAFETENSORS-003",
    "safetensors-unknown-dtype",
    Medium,
    INTEGRITY,
    "safetensors tensor has an unknown dtype or bad entry",
    "A tensor entry has an unknown dtype or lacks a valid shape or data_offsets.",
    "Reject the file."
);
rule!(ST_SIZE_MISMATCH, "AISEC-SAFETENSORS-004", "safetensors-size-mismatch", High, INTEGRITY,
    "safetensors tensor size does not match its byte span",
    "shape × dtype size differs from the data_offsets span; loaders that trust one or the other read the wrong bytes or out of bounds.",
    "Reject the file.");
rule!(
    ST_OUT_OF_BOUNDS,
    "AISEC-SAFETENSORS-005",
    "safetensors-offsets-out-of-bounds",
    High,
    INTEGRITY,
    "safetensors tensor offsets point outside the data section",
    "A tensor's data_offsets are reversed or end beyond the data section.",
    "Reject the file."
);
rule!(ST_OVERLAP, "AISEC-SAFETENSORS-006", "safetensors-overlapping-tensors", High, INTEGRITY,
    "safetensors tensors overlap",
    "Two tensors share bytes. The reference loader rejects this; other loaders silently alias the weights, which can hide manipulated parameters.",
    "Reject the file.");
rule!(ST_GAP, "AISEC-SAFETENSORS-007", "safetensors-gap-or-trailing-data", Medium, INTEGRITY,
    "safetensors data section has gaps or unreferenced bytes",
    "Tensor data is not contiguous (gaps between tensors or bytes after the last one). The reference loader rejects it; the hidden bytes can smuggle a payload.",
    "Reject the file or re-save it with the reference library.");
rule!(ST_METADATA, "AISEC-SAFETENSORS-008", "safetensors-metadata-not-strings", Low, INTEGRITY,
    "safetensors __metadata__ holds non-string values",
    "The format only allows a string-to-string __metadata__ map; other values are rejected by the reference loader.",
    "Re-save the file.");
rule!(ST_DUP_KEY, "AISEC-SAFETENSORS-009", "safetensors-duplicate-key", Medium, INTEGRITY,
    "safetensors header has duplicate tensor names",
    "The same tensor name appears twice; parsers differ on which entry wins, so two tools can see different weights.",
    "Reject the file.");

/// Every rule, in id order.
pub static ALL: &[&Rule] = &[
    &H5_EXTERNAL_LINK,
    &H5_EXTERNAL_STORAGE,
    &H5_BAD_CONFIG,
    &KERAS_LAMBDA,
    &KERAS_FUNCTION_REF,
    &KERAS_FOREIGN_MODULE,
    &KERAS_CUSTOM_OBJECT,
    &KERAS_TFOPLAMBDA,
    &KERAS_LAMBDA_NAMED,
    &KERAS_UNSAFE_FLAG,
    &TF_PYFUNC,
    &TF_FILE_READ,
    &TF_FILE_WRITE,
    &TF_CKPT_IO,
    &TF_DEBUG_OP,
    &TF_MEMMAP,
    &TF_UNKNOWN_PB,
    &ONNX_EXTERNAL_PATH,
    &ONNX_CUSTOM_DOMAIN,
    &ONNX_FUNCTIONS,
    &ONNX_METADATA,
    &ONNX_RELATIVE_DOTDOT,
    &GGUF_SSTI,
    &GGUF_TEMPLATE_SUSPICIOUS,
    &GGUF_MALFORMED,
    &ST_HEADER_SIZE,
    &ST_HEADER_JSON,
    &ST_DTYPE,
    &ST_SIZE_MISMATCH,
    &ST_OUT_OF_BOUNDS,
    &ST_OVERLAP,
    &ST_GAP,
    &ST_METADATA,
    &ST_DUP_KEY,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_unique_and_taxonomy_known() {
        let mut ids: Vec<&str> = ALL.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        for r in ALL {
            for a in r.atlas {
                assert!(aisec_core::atlas(a).is_some(), "{a}");
            }
            assert_eq!(r.owasp, &["LLM03"]);
        }
    }
}
