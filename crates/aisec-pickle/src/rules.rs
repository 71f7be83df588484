//! The rules this crate reports.
//!
//! | id | name | default severity | what |
//! |----|------|------------------|------|
//! | AISEC-PICKLE-001 | pickle-dangerous-call | critical | a denied callable is called (REDUCE/NEWOBJ/NEWOBJ_EX/OBJ/INST) |
//! | AISEC-PICKLE-002 | pickle-dangerous-import | critical | a denied global is imported but no call of it was seen |
//! | AISEC-PICKLE-003 | pickle-unresolvable-global | critical | STACK_GLOBAL with module/name computed at load time |
//! | AISEC-PICKLE-004 | pickle-nested-loader | critical | a nested deserialiser/code loader is called (its literal payload is analysed too) |
//! | AISEC-PICKLE-005 | pickle-unknown-global | medium | a global outside the allowlist is imported or called |
//! | AISEC-PICKLE-006 | pickle-computed-callable | high | a call whose callable is itself computed (result of a call, persistent id…) |
//! | AISEC-PICKLE-007 | pickle-build-untrusted | medium (high on a class/module) | BUILD (`__setstate__`/`__dict__`/setattr) on an untrusted target |
//! | AISEC-PICKLE-008 | pickle-extension-registry | high | EXT1/EXT2/EXT4 fetch a global from the copyreg extension registry |
//! | AISEC-PICKLE-009 | pickle-malformed | medium | the stream is truncated or invalid after the findings reported before it |
//! | AISEC-PICKLE-010 | pickle-resource-limit | high | an analysis limit was hit (pickle bomb, huge declared length) |
//! | AISEC-PICKLE-011 | pickle-trailing-data | low | bytes after the last pickle that are not a pickle |
//! | AISEC-PICKLE-012 | npy-object-array | low | a NumPy array with object dtype (loading needs `allow_pickle=True`) |
//! | AISEC-PICKLE-013 | npy-invalid-header | medium | a `.npy` header that does not parse or disagrees with the data size |

use aisec_core::{Rule, Severity};

const ATLAS: &[&str] = &["AML.T0011.000", "AML.T0010.003"];
const OWASP: &[&str] = &["LLM03"];
const REM_CODE: &str = "Do not load this file with pickle/torch.load/joblib.load. Obtain the model from a trusted source, \
or convert it to a format that cannot carry code (safetensors, ONNX) in an isolated environment.";

macro_rules! rule {
    ($ident:ident, $id:literal, $name:literal, $title:literal, $desc:literal, $sev:expr, $rem:expr) => {
        #[doc = $title]
        pub static $ident: Rule = Rule {
            id: $id,
            name: $name,
            title: $title,
            description: $desc,
            default_severity: $sev,
            atlas: ATLAS,
            owasp: OWASP,
            remediation: $rem,
        };
    };
}

rule!(DANGEROUS_CALL, "AISEC-PICKLE-001", "pickle-dangerous-call",
    "Pickle calls a code-execution capable function",
    "Unpickling this data calls a function that can run commands, evaluate code, touch files or the network.",
    Severity::Critical, REM_CODE);
rule!(DANGEROUS_IMPORT, "AISEC-PICKLE-002", "pickle-dangerous-import",
    "Pickle imports a dangerous global",
    "Unpickling this data imports a dangerous function or module; it can be called through BUILD, containers or later opcodes.",
    Severity::Critical, REM_CODE);
rule!(UNRESOLVABLE_GLOBAL, "AISEC-PICKLE-003", "pickle-unresolvable-global",
    "Pickle imports a global whose name is computed at load time",
    "STACK_GLOBAL takes module and name from values computed while unpickling, so no static scanner can know what is imported: a classic scanner bypass.",
    Severity::Critical, REM_CODE);
rule!(NESTED_LOADER, "AISEC-PICKLE-004", "pickle-nested-loader",
    "Pickle calls a nested deserialiser or code loader",
    "Unpickling this data calls pickle.loads/torch.load/marshal/types.CodeType or similar on embedded data: a way to hide a second payload.",
    Severity::Critical, REM_CODE);
rule!(UNKNOWN_GLOBAL, "AISEC-PICKLE-005", "pickle-unknown-global",
    "Pickle references a global outside the allowlist",
    "Unpickling this data imports (and may call) a global that is neither known safe nor known dangerous. Review it and allow it in the policy if expected.",
    Severity::Medium,
    "Review the global; if it is a trusted class of your own code, add it to [pickle] allow in the aisec policy.");
rule!(COMPUTED_CALLABLE, "AISEC-PICKLE-006", "pickle-computed-callable",
    "Pickle calls a callable computed at load time",
    "The callable of a REDUCE/NEWOBJ is the result of another call (e.g. getattr) or a persistent id, which hides what is really called.",
    Severity::High, REM_CODE);
rule!(BUILD_UNTRUSTED, "AISEC-PICKLE-007", "pickle-build-untrusted",
    "Pickle BUILD on an untrusted object",
    "BUILD calls __setstate__ or updates __dict__/attributes of its target; on a non-allowlisted instance this runs its code, on a class or module it overwrites attributes.",
    Severity::Medium, REM_CODE);
rule!(EXT_REGISTRY, "AISEC-PICKLE-008", "pickle-extension-registry",
    "Pickle uses the copyreg extension registry",
    "EXT1/EXT2/EXT4 import whatever global the process registered under a code; static analysis cannot tell which.",
    Severity::High, REM_CODE);
rule!(MALFORMED, "AISEC-PICKLE-009", "pickle-malformed",
    "Malformed or truncated pickle",
    "The pickle stream is invalid at this offset. pickle.load executes opcodes one by one, so everything before this point still runs; parsers that give up here miss it.",
    Severity::Medium,
    "Treat the file as untrusted; a valid model file does not contain a broken pickle.");
rule!(RESOURCE_LIMIT, "AISEC-PICKLE-010", "pickle-resource-limit",
    "Pickle exceeds an analysis limit (possible pickle bomb)",
    "The pickle needs more operations, memory, nesting or memo entries than the configured limits: a denial-of-service payload or an attempt to exhaust scanners.",
    Severity::High,
    "Do not load the file; if it is a legitimate huge pickle, raise the limits.");
rule!(TRAILING_DATA, "AISEC-PICKLE-011", "pickle-trailing-data",
    "Data after the end of the pickle",
    "Bytes follow the last STOP opcode that are not a pickle; loaders ignore them but they can carry a second payload for a custom loader.",
    Severity::Low, "Check why the file carries extra data.");
rule!(
    NPY_OBJECT,
    "AISEC-PICKLE-012",
    "npy-object-array",
    "NumPy array with object dtype (contains a pickle)",
    "Loading an object array needs numpy.load(allow_pickle=True), which unpickles the array data.",
    Severity::Low,
    "Prefer numeric dtypes; never pass allow_pickle=True for untrusted files."
);
rule!(
    NPY_HEADER,
    "AISEC-PICKLE-013",
    "npy-invalid-header",
    "Invalid NumPy .npy header",
    "The .npy header does not parse, or its shape and dtype disagree with the file size.",
    Severity::Medium,
    "Treat the file as untrusted."
);

/// Every rule of this crate.
pub fn rules() -> Vec<&'static Rule> {
    vec![
        &DANGEROUS_CALL,
        &DANGEROUS_IMPORT,
        &UNRESOLVABLE_GLOBAL,
        &NESTED_LOADER,
        &UNKNOWN_GLOBAL,
        &COMPUTED_CALLABLE,
        &BUILD_UNTRUSTED,
        &EXT_REGISTRY,
        &MALFORMED,
        &RESOURCE_LIMIT,
        &TRAILING_DATA,
        &NPY_OBJECT,
        &NPY_HEADER,
    ]
}
