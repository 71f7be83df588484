//! Static rule definitions for every finding this crate reports.
//!
//! Code-execution rules carry ATLAS AML.T0011.000 (Unsafe AI Artifacts) and
//! AML.T0010.003 (Supply Chain Compromise: Model); integrity and parser-abuse
//! rules carry AML.T0010.003 alone. All map to OWASP LLM03 (Supply Chain).

const EXEC: &[&str] = &["AML.T0011.000", "AML.T0010.003"];
const INTEGRITY: &[&str] = &["AML.T0010.003"];
const LLM03: &[&str] = &["LLM03"];

aisec_core::declare_rules! {
    // ---- HDF5 -------------------------------------------------------------

    /// ## What it detects
    /// An HDF5 external link: a link whose target is an object in another
    /// file named by the artifact.
    ///
    /// ## Why it matters
    /// Opening the linked object makes the HDF5 library open that other file,
    /// which can pull attacker-chosen content into the model or probe the
    /// local file system.
    ///
    /// ## Example
    /// A Keras `.h5` whose `model_weights/dense/kernel` is an external link to
    /// `/mnt/share/evil.h5:/kernel`.
    pub static H5_EXTERNAL_LINK = {
        id: "AISEC-H5-001",
        name: "h5-external-link",
        title: "HDF5 external link to another file",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Remove external links (h5py: copy the linked objects into the file) and only load files whose every object is stored inside them.",
    };

    /// ## What it detects
    /// An HDF5 dataset whose raw data lives in external files named by the
    /// artifact (the External Data Files message).
    ///
    /// ## Why it matters
    /// Loading the weights reads those files, which may be arbitrary local
    /// files (for example `/etc/passwd`) turned into tensors and later leaked
    /// through the model's outputs or a re-saved copy.
    ///
    /// ## Example
    /// A dataset `kernel` of 4 096 bytes stored externally in `/etc/passwd`
    /// at offset 0.
    pub static H5_EXTERNAL_STORAGE = {
        id: "AISEC-H5-002",
        name: "h5-external-raw-storage",
        title: "HDF5 dataset stored in external raw files",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Re-save the model with all datasets stored inside the HDF5 file; reject files with external storage.",
    };

    /// ## What it detects
    /// A Keras `.h5` whose root attribute `model_config` is not valid JSON.
    ///
    /// ## Why it matters
    /// The architecture could not be inspected for Lambda layers or custom
    /// objects. Keras would fail to load it, or a different parser could read
    /// it differently than aisec did.
    ///
    /// ## Example
    /// `model_config` = `{"class_name": "Sequential", "config": {` (cut off).
    pub static H5_BAD_CONFIG = {
        id: "AISEC-H5-003",
        name: "h5-unparseable-model-config",
        title: "Keras model_config attribute is not valid JSON",
        severity: Low,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Re-export the model from a trusted source; inspect the attribute by hand.",
    };

    // ---- Keras ------------------------------------------------------------

    /// ## What it detects
    /// A Keras Lambda layer whose function is stored as marshalled Python
    /// bytecode (base64), in an `.h5` `model_config`, a `.keras` archive's
    /// `config.json` or a SavedModel's `keras_metadata.pb`.
    ///
    /// ## Why it matters
    /// Keras rebuilds the function with `marshal.loads` when the model is
    /// loaded (Keras 2 and `.h5` files always: CVE-2024-3660, CVE-2025-9905;
    /// Keras 3 when `safe_mode=False`), so loading the model runs attacker
    /// code.
    ///
    /// ## Example
    /// ```text
    /// {"class_name": "Lambda", "config": {"function": ["4wEAAAAAAAAA...", null, null],
    ///  "function_type": "lambda", ...}}
    /// ```
    pub static KERAS_LAMBDA = {
        id: "AISEC-KERAS-001",
        name: "keras-lambda-bytecode",
        title: "Keras Lambda layer with serialized Python code",
        severity: Critical,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Do not load the model. If the Lambda is legitimate, replace it with a registered custom layer whose code you review, and load with safe_mode=True from a Keras version >= 3.9.",
    };

    /// ## What it detects
    /// A serialized Keras object that names a module and function to import
    /// and call (`class_name: "function"`, or a Lambda whose function is a
    /// module reference).
    ///
    /// ## Why it matters
    /// Keras imports and calls it during deserialization; crafted configs use
    /// this to reach functions such as `keras.models.load_model` or
    /// `keras.config.enable_unsafe_deserialization` and bypass `safe_mode`
    /// (CVE-2025-1550, CVE-2025-9906).
    ///
    /// ## Example
    /// ```text
    /// {"module": "keras.config", "class_name": "function",
    ///  "config": "enable_unsafe_deserialization"}
    /// ```
    pub static KERAS_FUNCTION_REF = {
        id: "AISEC-KERAS-002",
        name: "keras-function-reference",
        title: "Keras config references a Python function to import and call",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Do not load the model with a Keras version older than 3.11; review every module/function reference in config.json and remove any that is not a standard loss, metric or activation.",
    };

    /// ## What it detects
    /// A serialized Keras object whose `module` field names a Python module
    /// outside keras and tensorflow; dangerous standard-library modules (`os`,
    /// `subprocess`, `builtins`, ...) are reported as critical.
    ///
    /// ## Why it matters
    /// Keras 3 imports that module to resolve the class, so the model can make
    /// the loader import and instantiate arbitrary code (CVE-2025-1550).
    ///
    /// ## Example
    /// `{"module": "subprocess", "class_name": "Popen", "config": {...}}`
    pub static KERAS_FOREIGN_MODULE = {
        id: "AISEC-KERAS-003",
        name: "keras-foreign-module",
        title: "Keras config imports a module outside Keras",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Only load the model if the named package is one you trust and have installed on purpose; otherwise reject it.",
    };

    /// ## What it detects
    /// A layer config that names a file on the loading machine as its data:
    /// a `StringLookup`/`IntegerLookup`/`TextVectorization` vocabulary, IDF
    /// weights or stop words given as a path.
    ///
    /// ## Why it matters
    /// Keras reads the file while building the layer, even under
    /// `safe_mode=True`; its contents (`/proc/self/environ`, SSH keys) end up
    /// in the model's vocabulary, where outputs or a re-saved model leak them.
    ///
    /// ## Example
    /// `{"class_name": "StringLookup", "config": {"vocabulary": "/proc/self/environ"}}`
    pub static KERAS_FILE_READ = {
        id: "AISEC-KERAS-009",
        name: "keras-config-reads-file",
        title: "Keras layer config makes the loader read a local file",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Ship vocabularies inside the model (as lists), never as paths; reject models whose configs point at local files.",
    };

    /// ## What it detects
    /// A layer or object class that Keras does not ship, so loading needs
    /// `custom_objects` or a registered class from outside the artifact.
    ///
    /// ## Why it matters
    /// The code that runs is whatever the loader supplies under that name; a
    /// model that asks for it depends on code nobody has reviewed with it.
    ///
    /// ## Example
    /// `{"class_name": "MyAttention", "config": {...}}` in a Sequential model.
    pub static KERAS_CUSTOM_OBJECT = {
        id: "AISEC-KERAS-004",
        name: "keras-custom-object",
        title: "Keras config uses a custom (non-built-in) object",
        severity: Low,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Make sure the custom class comes from reviewed code that you control, not from the model's distribution.",
    };

    /// ## What it detects
    /// A TFOpLambda layer (it replays a named TensorFlow API at call time)
    /// that names an API reading or writing files or calling back into Python
    /// (`tf.io.*`, `tf.py_function`, `tf.numpy_function`, `tf.raw_ops.*`).
    ///
    /// ## Why it matters
    /// The API runs whenever the model runs, so serving the model reads or
    /// writes files or runs Python chosen by the model's author.
    ///
    /// ## Example
    /// `{"class_name": "TFOpLambda", "config": {"function": "io.write_file", ...}}`
    pub static KERAS_TFOPLAMBDA = {
        id: "AISEC-KERAS-005",
        name: "keras-tfoplambda-dangerous-api",
        title: "TFOpLambda layer calls a file-system or Python-callback TensorFlow API",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Reject the model or replace the layer with reviewed code.",
    };

    /// ## What it detects
    /// A Lambda layer whose function is stored as a name (`function_type`
    /// `"raw"` or a plain string), resolved from `custom_objects` or module
    /// globals at load time.
    ///
    /// ## Why it matters
    /// Less direct than bytecode, but what runs depends on code outside the
    /// artifact, and a name can resolve to a dangerous function.
    ///
    /// ## Example
    /// `{"class_name": "Lambda", "config": {"function": "preprocess", "function_type": "raw"}}`
    pub static KERAS_LAMBDA_NAMED = {
        id: "AISEC-KERAS-006",
        name: "keras-lambda-named-function",
        title: "Keras Lambda layer refers to a function by name",
        severity: Medium,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Check which function the name resolves to in your loader and prefer a registered custom layer.",
    };

    /// ## What it detects
    /// A serialized Keras object that passes `safe_mode: false` (for example
    /// to a nested model load).
    ///
    /// ## Why it matters
    /// This is how nested-model loads bypass `safe_mode` (CVE-2025-9906): the
    /// outer load is safe, the inner one it triggers is not.
    ///
    /// ## Example
    /// A layer config calling `keras.models.load_model` with
    /// `{"filepath": "/tmp/inner.keras", "safe_mode": false}`.
    pub static KERAS_UNSAFE_FLAG = {
        id: "AISEC-KERAS-007",
        name: "keras-safe-mode-disabled",
        title: "Keras config tries to disable safe_mode",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Reject the model.",
    };

    /// ## What it detects
    /// A Keras configuration (`.keras` `config.json`, `.h5` `model_config`
    /// or `training_config`, `keras_metadata.pb` entry) that aisec could not
    /// inspect for code because it is over the size, nesting or element
    /// bound, or could not be extracted from its archive.
    ///
    /// ## Why it matters
    /// Keras itself would still load it. Padding a config past a scanner's
    /// limit (a few hundred KB compressed inflate to a 64 MiB document) must
    /// not hide a Lambda layer: an unverifiable architecture is treated as
    /// hostile until shown otherwise. A byte search for Lambda layers runs
    /// over the text anyway and reports any hit separately.
    ///
    /// ## Example
    /// A `.keras` whose `config.json` holds a Lambda layer followed by
    /// 70 MB of `[{"":0},...]` in an unused field.
    pub static KERAS_UNVERIFIABLE = {
        id: "AISEC-KERAS-008",
        name: "keras-config-unverifiable",
        title: "Keras configuration too large or complex to inspect",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Do not load the model until its configuration has been inspected; re-export it from a trusted source, whose configs are far below these bounds.",
    };

    // ---- TensorFlow ------------------------------------------------------

    /// ## What it detects
    /// A TensorFlow graph (SavedModel or frozen GraphDef, including its
    /// functions) with a `PyFunc`, `PyFuncStateless` or `EagerPyFunc` node.
    ///
    /// ## Why it matters
    /// These ops call a Python function registered in the loading process;
    /// combined with a crafted loader or pickled function they run arbitrary
    /// Python, and a model has no legitimate reason to ship one.
    ///
    /// ## Example
    /// A `saved_model.pb` whose serving function contains
    /// `node { name: "cb" op: "EagerPyFunc" attr { key: "token" ... } }`.
    pub static TF_PYFUNC = {
        id: "AISEC-TF-001",
        name: "tf-python-callback-op",
        title: "TensorFlow graph calls back into Python",
        severity: Critical,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Do not serve the model; re-export it without tf.py_function / tf.numpy_function.",
    };

    /// ## What it detects
    /// A TensorFlow graph op that reads or lists files: `ReadFile`,
    /// `MatchingFiles`, file-reading dataset and reader ops.
    ///
    /// ## Why it matters
    /// When the model runs it can read arbitrary local files, for example to
    /// exfiltrate them through its outputs (modelscan flags
    /// ReadFile/WriteFile; the TensorAbuse attacks use such ops).
    ///
    /// ## Example
    /// A serving function with `ReadFile(filename="/etc/passwd")` whose output
    /// is added to the model's output tensor.
    pub static TF_FILE_READ = {
        id: "AISEC-TF-002",
        name: "tf-file-read-op",
        title: "TensorFlow graph reads files at run time",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Reject the model unless the file access is expected and the path is fixed and benign.",
    };

    /// ## What it detects
    /// A TensorFlow graph op that writes files: `WriteFile`, dataset saving,
    /// summary writers, or `PrintV2` with an output stream that is a file.
    ///
    /// ## Why it matters
    /// Running the model can plant files (shell profiles, cron jobs, Python
    /// modules) on the serving host.
    ///
    /// ## Example
    /// `WriteFile(filename="/home/user/.bashrc", contents=...)` in the serving
    /// function.
    pub static TF_FILE_WRITE = {
        id: "AISEC-TF-003",
        name: "tf-file-write-op",
        title: "TensorFlow graph writes files at run time",
        severity: High,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Reject the model.",
    };

    /// ## What it detects
    /// `SaveV2`, `RestoreV2`, `MergeV2Checkpoints` or a related checkpoint op
    /// outside the saver functions every SavedModel has (functions whose name
    /// mentions save, restore or checkpoint).
    ///
    /// ## Why it matters
    /// In an ordinary function or the main graph the op runs with the model,
    /// reading or writing checkpoint files at attacker-chosen paths.
    ///
    /// ## Example
    /// `SaveV2(prefix="/tmp/x", ...)` inside the `serving_default` function.
    pub static TF_CKPT_IO = {
        id: "AISEC-TF-004",
        name: "tf-checkpoint-io-outside-saver",
        title: "Checkpoint save/restore op outside the saver",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Inspect the function; re-export the model from source.",
    };

    /// ## What it detects
    /// TensorFlow debug ops (`DebugIdentity`, `DebugNanCount`,
    /// `DebugNumericSummary`, their V2/V3 forms).
    ///
    /// ## Why it matters
    /// They stream tensor values to the `debug_urls` they name (`file://` or
    /// `grpc://`), which can exfiltrate inputs and outputs.
    ///
    /// ## Example
    /// `DebugIdentity` with `debug_urls: ["grpc://collector.example:6064"]`
    /// on the input tensor.
    pub static TF_DEBUG_OP = {
        id: "AISEC-TF-005",
        name: "tf-debug-op",
        title: "TensorFlow debug op that sends tensors to a file or URL",
        severity: High,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Strip debug ops before deployment; reject models that carry them.",
    };

    /// ## What it detects
    /// An `ImmutableConst` op, which loads a tensor from the memory region
    /// (file) named in its `memory_region_name` attribute.
    ///
    /// ## Why it matters
    /// The graph reads data from outside the artifact, so what the model
    /// computes depends on a file the reviewer never saw.
    ///
    /// ## Example
    /// `ImmutableConst(memory_region_name="/data/weights.bin")`.
    pub static TF_MEMMAP = {
        id: "AISEC-TF-006",
        name: "tf-immutable-const-memory-region",
        title: "ImmutableConst maps a named memory region / file",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Make sure the named region is part of the trusted deployment.",
    };

    /// ## What it detects
    /// A `keras_metadata.pb` entry (in a TensorFlow SavedModel written by
    /// Keras) whose metadata is not valid JSON.
    ///
    /// ## Why it matters
    /// The layer it describes could not be inspected for Lambda layers or
    /// custom objects, and Keras may read it differently.
    ///
    /// ## Example
    /// A metadata string `{"class_name": "Lambda", "config": {"function": [`
    /// cut off mid-array.
    pub static TF_UNKNOWN_PB = {
        id: "AISEC-TF-007",
        name: "tf-keras-metadata-unparseable",
        title: "keras_metadata.pb entry is not valid JSON",
        severity: Low,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Inspect the file by hand or re-export the model.",
    };

    // ---- ONNX -----------------------------------------------------------

    /// ## What it detects
    /// An ONNX tensor whose `external_data` `location` is absolute, climbs out
    /// of the model folder with `..`, uses a URL scheme or names a device or
    /// special file.
    ///
    /// ## Why it matters
    /// Loaders that follow it read arbitrary files into the model
    /// (CVE-2022-25882, CVE-2024-27318 in onnx).
    ///
    /// ## Example
    /// `external_data { key: "location" value: "../../../../etc/passwd" }`.
    pub static ONNX_EXTERNAL_PATH = {
        id: "AISEC-ONNX-001",
        name: "onnx-external-data-path-traversal",
        title: "ONNX external data location escapes the model directory",
        severity: High,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the model; external data must be relative paths inside the model directory. Use onnx >= 1.16 which validates locations.",
    };

    /// ## What it detects
    /// ONNX nodes (in the main graph, subgraphs or functions) whose operator
    /// domain is not a standard one (`ai.onnx`, `ai.onnx.ml`,
    /// `ai.onnx.preview.training`); ONNX Runtime's built-in `com.microsoft`
    /// contrib domain is only noted.
    ///
    /// ## Why it matters
    /// Running them requires registering a custom-op shared library (native
    /// code) with the runtime.
    ///
    /// ## Example
    /// `node { op_type: "Decrypt" domain: "com.example.ops" }`.
    pub static ONNX_CUSTOM_DOMAIN = {
        id: "AISEC-ONNX-002",
        name: "onnx-custom-op-domain",
        title: "ONNX model uses a custom operator domain",
        severity: Medium,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Only run the model with custom-op libraries you built or reviewed; never load libraries shipped next to the model.",
    };

    /// ## What it detects
    /// An ONNX model that defines model-local functions
    /// (`ModelProto.functions`).
    ///
    /// ## Why it matters
    /// They expand to standard ops but can hide a subgraph's real behaviour
    /// from a quick review of the main graph.
    ///
    /// ## Example
    /// A model whose graph is one node `Preprocess` from domain `local`,
    /// defined as a function of 40 nodes.
    pub static ONNX_FUNCTIONS = {
        id: "AISEC-ONNX-003",
        name: "onnx-model-local-functions",
        title: "ONNX model defines model-local functions",
        severity: Info,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Review the function bodies.",
    };

    /// ## What it detects
    /// ONNX `metadata_props` or doc strings whose text looks like code, shell
    /// commands or URLs.
    ///
    /// ## Why it matters
    /// Tooling that renders or evaluates metadata (model hubs, notebooks,
    /// converters) could be attacked through it.
    ///
    /// ## Example
    /// `metadata_props { key: "preprocess" value: "__import__('os').system('id')" }`.
    pub static ONNX_METADATA = {
        id: "AISEC-ONNX-004",
        name: "onnx-suspicious-metadata",
        title: "ONNX metadata contains code, URLs or paths",
        severity: Low,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Review the metadata; strip it if it is not needed.",
    };

    /// ## What it detects
    /// An ONNX external-data location with `..` components that still stays
    /// inside the model folder.
    ///
    /// ## Why it matters
    /// Harmless as written, but unusual: exporters never write it, and it is
    /// one normalisation bug away from a traversal.
    ///
    /// ## Example
    /// `location: "weights/../weights.bin"`.
    pub static ONNX_RELATIVE_DOTDOT = {
        id: "AISEC-ONNX-005",
        name: "onnx-external-data-dotdot",
        title: "ONNX external data location uses '..' but stays inside the model directory",
        severity: Low,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Normalise the path when re-exporting.",
    };

    // ---- GGUF ------------------------------------------------------------

    /// ## What it detects
    /// A GGUF `tokenizer.chat_template` (Jinja) that reaches Python object
    /// internals (`__class__`, `__globals__`, `__subclasses__`,
    /// `__builtins__`, ...). The template is parsed as Jinja and constant
    /// string expressions are folded first (escapes such as `\N{LOW LINE}`,
    /// `~`/`+` concatenation, `|join`, `|replace`, `|format`, `set`
    /// variables, `|attr` and subscripts), so the same chain is found however
    /// it is spelled.
    ///
    /// ## Why it matters
    /// Servers that render the template with an unsandboxed Jinja environment
    /// execute code (CVE-2024-34359, llama-cpp-python).
    ///
    /// ## Example
    /// ```text
    /// {{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}
    /// {{ cycler|attr('\N{LOW LINE}' * 2 ~ 'init' ~ '_' * 2) }}
    /// ```
    pub static GGUF_SSTI = {
        id: "AISEC-GGUF-001",
        name: "gguf-chat-template-ssti",
        title: "GGUF chat template reaches Python internals (Jinja SSTI)",
        severity: Critical,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Do not serve the model; replace the chat template with a reviewed one and render templates only in a sandboxed Jinja environment.",
    };

    /// ## What it detects
    /// A GGUF chat template with constructs real chat templates do not need:
    /// `_private` attributes (`self._TemplateReference__context`), calls of
    /// command-running functions (`popen`, `system`, `eval`...) and `|attr`
    /// with a name that is not a constant (high); a template that does not
    /// parse as Jinja or is over the analysis bounds (medium, then judged by
    /// a token-level check).
    ///
    /// ## Why it matters
    /// These are the building blocks of template-injection payloads that
    /// avoid the literal `__class__` strings simple filters look for, and a
    /// template the scanner cannot parse cannot be cleared.
    ///
    /// ## Example
    /// `{{ messages[0]|attr(messages[1].content) }}`
    pub static GGUF_TEMPLATE_SUSPICIOUS = {
        id: "AISEC-GGUF-002",
        name: "gguf-chat-template-suspicious",
        title: "GGUF chat template uses unusual constructs",
        severity: Medium,
        atlas: EXEC,
        owasp: LLM03,
        remediation: "Review the template by hand.",
    };

    /// ## What it detects
    /// A GGUF header whose tensor or metadata counts, string lengths,
    /// dimensions or tensor offsets exceed what the file can hold.
    ///
    /// ## Why it matters
    /// Loaders that trust them over-allocate or read out of bounds (several
    /// llama.cpp GGUF parser CVEs).
    ///
    /// ## Example
    /// A 1 MB file whose header declares 2^40 metadata key-value pairs.
    pub static GGUF_MALFORMED = {
        id: "AISEC-GGUF-003",
        name: "gguf-malformed-header",
        title: "GGUF header has impossible counts or offsets",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file; re-download or re-convert the model.",
    };

    // ---- safetensors ----------------------------------------------------

    /// ## What it detects
    /// A safetensors file whose 8-byte header length exceeds the reference
    /// loader's 100 MB cap or the file size.
    ///
    /// ## Why it matters
    /// Loaders that trust it allocate huge buffers or read out of bounds.
    ///
    /// ## Example
    /// A 2 KB file whose first 8 bytes declare a header of 2^62 bytes.
    pub static ST_HEADER_SIZE = {
        id: "AISEC-SAFETENSORS-001",
        name: "safetensors-header-size",
        title: "safetensors header length is oversized or beyond the file",
        severity: High,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file.",
    };

    /// ## What it detects
    /// A safetensors header that is not UTF-8 JSON, or not an object of tensor
    /// entries.
    ///
    /// ## Why it matters
    /// Conforming loaders refuse it and lenient ones may misread it, so
    /// different tools see different tensors.
    ///
    /// ## Example
    /// A header `["weight", 1, 2]` (an array, not an object).
    pub static ST_HEADER_JSON = {
        id: "AISEC-SAFETENSORS-002",
        name: "safetensors-header-json",
        title: "safetensors header is not a valid JSON object",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file.",
    };

    /// ## What it detects
    /// A safetensors tensor entry with an unknown dtype, or without a valid
    /// `shape` or `data_offsets`.
    ///
    /// ## Why it matters
    /// The reference loader refuses the file; other loaders may guess, and
    /// the guess decides which bytes become weights.
    ///
    /// ## Example
    /// `{"w": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}`.
    pub static ST_DTYPE = {
        id: "AISEC-SAFETENSORS-003",
        name: "safetensors-unknown-dtype",
        title: "safetensors tensor has an unknown dtype or bad entry",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file.",
    };

    /// ## What it detects
    /// A safetensors tensor whose shape times dtype size differs from the
    /// span of its `data_offsets`.
    ///
    /// ## Why it matters
    /// Loaders that trust one or the other read the wrong bytes or out of
    /// bounds.
    ///
    /// ## Example
    /// `{"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}` (16 bytes
    /// needed, 8 given).
    pub static ST_SIZE_MISMATCH = {
        id: "AISEC-SAFETENSORS-004",
        name: "safetensors-size-mismatch",
        title: "safetensors tensor size does not match its byte span",
        severity: High,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file.",
    };

    /// ## What it detects
    /// A safetensors tensor whose `data_offsets` are reversed or end beyond
    /// the data section.
    ///
    /// ## Why it matters
    /// Loaders that do not check read out of bounds or wrap around.
    ///
    /// ## Example
    /// `"data_offsets": [64, 32]`, or `[0, 4096]` in a file with 100 data
    /// bytes.
    pub static ST_OUT_OF_BOUNDS = {
        id: "AISEC-SAFETENSORS-005",
        name: "safetensors-offsets-out-of-bounds",
        title: "safetensors tensor offsets point outside the data section",
        severity: High,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file.",
    };

    /// ## What it detects
    /// Two safetensors tensors whose byte ranges overlap.
    ///
    /// ## Why it matters
    /// The reference loader rejects this; other loaders silently alias the
    /// weights, which can hide manipulated parameters.
    ///
    /// ## Example
    /// `"a": {"data_offsets": [0, 16]}, "b": {"data_offsets": [8, 24]}`.
    pub static ST_OVERLAP = {
        id: "AISEC-SAFETENSORS-006",
        name: "safetensors-overlapping-tensors",
        title: "safetensors tensors overlap",
        severity: High,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file.",
    };

    /// ## What it detects
    /// A safetensors data section that is not contiguous: gaps between
    /// tensors, or bytes after the last one.
    ///
    /// ## Why it matters
    /// The reference loader rejects it; the hidden bytes can smuggle a
    /// payload past tools that only read the tensors.
    ///
    /// ## Example
    /// Tensors at `[0, 16]` and `[32, 48]`, leaving bytes 16 to 32 unused.
    pub static ST_GAP = {
        id: "AISEC-SAFETENSORS-007",
        name: "safetensors-gap-or-trailing-data",
        title: "safetensors data section has gaps or unreferenced bytes",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file or re-save it with the reference library.",
    };

    /// ## What it detects
    /// A safetensors `__metadata__` entry that is not a string-to-string map.
    ///
    /// ## Why it matters
    /// The format only allows strings there; the reference loader rejects
    /// other values, and tools that accept them may interpret them.
    ///
    /// ## Example
    /// `"__metadata__": {"format": "pt", "extra": {"cmd": ["id"]}}`.
    pub static ST_METADATA = {
        id: "AISEC-SAFETENSORS-008",
        name: "safetensors-metadata-not-strings",
        title: "safetensors __metadata__ holds non-string values",
        severity: Low,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Re-save the file.",
    };

    /// ## What it detects
    /// A safetensors header that names the same tensor twice.
    ///
    /// ## Why it matters
    /// JSON parsers differ on which entry wins (first or last), so two tools
    /// can see different weights under one name.
    ///
    /// ## Example
    /// `{"w": {..., "data_offsets": [0, 8]}, "w": {..., "data_offsets": [8, 16]}}`.
    pub static ST_DUP_KEY = {
        id: "AISEC-SAFETENSORS-009",
        name: "safetensors-duplicate-key",
        title: "safetensors header has duplicate tensor names",
        severity: Medium,
        atlas: INTEGRITY,
        owasp: LLM03,
        remediation: "Reject the file.",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_well_formed() {
        assert_eq!(aisec_core::rule::problems(RULES), Vec::<String>::new());
        for r in RULES {
            assert_eq!(r.owasp, &["LLM03"]);
        }
    }
}
