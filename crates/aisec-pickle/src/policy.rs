//! The import policy: which `module.name` globals a pickle may reference.
//!
//! Every global a pickle would import is classified as
//! [`Verdict::Allowed`], [`Verdict::Denied`] or [`Verdict::Unknown`]:
//!
//! 1. a user `deny` pattern matches → denied (critical);
//! 2. a built-in deny entry matches (see [`BUILTIN_DENY`]) → denied, unless a
//!    user `allow` entry names the global *exactly* (wildcards never lift a
//!    built-in deny);
//! 3. an exact user `allow` entry or exact built-in allowlist entry → allowed;
//!    a wildcard allow or profile entry → allowed after step 4;
//! 4. the generated capability table ([`crate::capability`]) says calling
//!    it can run code, spawn processes, write files, connect, import or
//!    unpickle → capable (a call is critical, an import alone medium); this
//!    outranks wildcard allows and profiles but not exact allow entries;
//! 5. otherwise → unknown: a call of an unknown *function* with string or
//!    bytes arguments is high, anything else medium.
//!
//! Patterns are either an exact dotted name (`collections.OrderedDict`) or a
//! prefix ending in `*` (`mypkg.layers.*`, `os.exec*`). A global's full name is
//! `module + "." + name`; names with dots (protocol 4 attribute paths such as
//! `torch._utils.os.system`) are additionally checked at every split point, so
//! an allowlisted module cannot be used as a springboard to a denied one.
//!
//! The built-in allowlist follows what PyTorch's weights-only unpickler
//! accepts (`torch/_weights_only_unpickler.py`, `_get_allowed_globals`), the
//! NumPy array/dtype rebuilders and joblib's array wrapper. The deny table
//! merges the deny lists of picklescan (`_unsafe_globals` in
//! `src/picklescan/scanner.py`), modelscan (`unsafe_globals` in
//! `modelscan/settings.py`) and fickling (`UNSAFE_IMPORTS`/`is_likely_safe`),
//! the published bypass advisories of those projects, and further stdlib
//! gadgets; each entry carries its source.

use std::collections::HashSet;

use crate::capability::{self, Caps};
use crate::compat_table::{IMPORT_MAPPING, NAME_MAPPING};

/// Why a policy could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The TOML text did not parse.
    #[error("invalid policy TOML: {0}")]
    Toml(String),
    /// A key had the wrong type.
    #[error("invalid policy: {0}")]
    Invalid(String),
    /// `profiles` named a profile this crate does not know.
    #[error("unknown pickle policy profile '{0}' (known: sklearn, torch-modules, torchscript)")]
    UnknownProfile(String),
}

/// The policy's judgement of one global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Known safe to import and call.
    Allowed,
    /// Known dangerous: code execution, file or network access, or a gadget.
    Denied {
        /// What the global can do.
        reason: &'static str,
        /// Where the entry comes from (deny list or advisory), or `user policy`.
        source: &'static str,
    },
    /// Not on the deny list, but the generated capability table
    /// ([`crate::capability`]) shows that calling it can run code, start
    /// processes, write files, open connections, import or unpickle.
    Capable {
        /// What calling it can do.
        caps: Caps,
        /// The callee or sink the capability was found through.
        via: &'static str,
        /// The canonical name after alias resolution.
        canonical: String,
    },
    /// Neither allowed nor denied.
    Unknown,
}

/// One built-in deny entry: pattern, what it does, where it is documented.
pub type DenyEntry = (&'static str, &'static str, &'static str);

const PS: &str = "picklescan _unsafe_globals";
const MS: &str = "modelscan unsafe_globals";
const FK: &str = "fickling UNSAFE_IMPORTS";
const AI: &str = "aisec research (stdlib gadget)";

/// Built-in deny table. Every entry is code execution, file/network access,
/// interpreter state access, or a callable that can reach those.
pub const BUILTIN_DENY: &[DenyEntry] = &[
    // Interpreter primitives.
    ("builtins.eval", "evaluates Python code", PS),
    ("builtins.exec", "executes Python code", PS),
    ("builtins.compile", "compiles Python code", PS),
    ("builtins.open", "opens files for reading/writing", PS),
    ("builtins.__import__", "imports arbitrary modules", FK),
    (
        "builtins.getattr",
        "reaches arbitrary attributes (gadget chains)",
        PS,
    ),
    (
        "builtins.setattr",
        "overwrites attributes of modules/classes",
        FK,
    ),
    (
        "builtins.delattr",
        "deletes attributes of modules/classes",
        AI,
    ),
    ("builtins.globals", "exposes interpreter globals", FK),
    ("builtins.locals", "exposes interpreter locals", AI),
    ("builtins.vars", "exposes object namespaces", AI),
    (
        "builtins.breakpoint",
        "starts a debugger (code execution)",
        PS,
    ),
    (
        "builtins.apply",
        "calls an arbitrary callable (Python 2)",
        PS,
    ),
    ("builtins.input", "reads interactive input", AI),
    ("builtins.execfile", "executes a Python file (Python 2)", AI),
    ("builtins.reload", "re-imports a module (Python 2)", AI),
    ("builtins.type", "creates classes dynamically", FK),
    ("builtins.memoryview", "raw memory views", AI),
    ("builtins.help", "starts pydoc (pager subprocess)", AI),
    ("builtins.exit", "terminates the interpreter", AI),
    ("builtins.quit", "terminates the interpreter", AI),
    ("__builtin__.*", "Python 2 builtins (see builtins.*)", PS),
    ("__builtins__.*", "interpreter builtins namespace", FK),
    // Process execution.
    ("os.*", "process execution and file system access", PS),
    ("posix.*", "os.system et al. on POSIX", PS),
    ("nt.*", "os.system et al. on Windows", PS),
    ("subprocess.*", "runs processes", PS),
    ("commands.*", "runs shell commands (Python 2)", AI),
    ("popen2.*", "runs processes (Python 2)", AI),
    ("pty.*", "spawns a shell on a pseudo-terminal", MS),
    ("_posixsubprocess.*", "low-level fork_exec", AI),
    (
        "asyncio.*",
        "asyncio.create_subprocess_shell / subprocess",
        PS,
    ),
    ("multiprocessing.*", "spawns processes, runs callables", FK),
    ("concurrent.futures.*", "runs callables in executors", AI),
    ("signal.*", "installs signal handlers", FK),
    (
        "sys.*",
        "interpreter state (sys.modules, settrace, exit)",
        PS,
    ),
    ("_thread.*", "starts threads running callables", AI),
    ("threading.*", "starts threads running callables", AI),
    // Code loading and evaluation.
    ("runpy.*", "runs modules/files as __main__", PS),
    ("importlib.*", "imports arbitrary modules", FK),
    ("imp.*", "imports arbitrary modules (deprecated API)", AI),
    ("zipimport.*", "imports code from archives", AI),
    (
        "pkgutil.*",
        "resolves/imports arbitrary names (pkgutil.resolve_name)",
        AI,
    ),
    (
        "code.*",
        "interactive interpreter (InteractiveInterpreter.runsource)",
        PS,
    ),
    ("codeop.*", "compiles Python code", AI),
    (
        "types.*",
        "builds code/function objects (CodeType, FunctionType)",
        FK,
    ),
    ("marshal.*", "loads code objects", FK),
    ("ctypes.*", "calls native code", FK),
    ("_ctypes.*", "calls native code", FK),
    ("cffi.*", "calls native code", AI),
    ("timeit.*", "timeit.timeit runs code strings", PS),
    ("cProfile.*", "cProfile.run executes code strings", PS),
    ("profile.*", "profile.run executes code strings", PS),
    ("trace.*", "trace.Trace.run executes code strings", AI),
    ("pdb.*", "debugger executes code strings (pdb.run)", PS),
    ("bdb.*", "debugger executes code strings (bdb.Bdb.run)", PS),
    ("doctest.*", "doctest runs code from docstrings", AI),
    ("unittest.*", "unittest loaders import and run modules", AI),
    (
        "idlelib.*",
        "IDLE helpers execute code (idlelib.pyshell, run)",
        PS,
    ),
    ("lib2to3.*", "lib2to3 main/refactor runs on files", PS),
    (
        "pydoc.*",
        "pydoc.pipepager/locate run commands and import names",
        PS,
    ),
    ("inspect.*", "frame/code introspection gadgets", AI),
    ("gc.*", "reaches every live object (gc.get_objects)", AI),
    (
        "operator.attrgetter",
        "attribute-chain gadget (modelscan bypass)",
        MS,
    ),
    ("operator.methodcaller", "calls arbitrary methods", FK),
    (
        "operator.itemgetter",
        "item fetch gadget (e.g. from __builtins__ dicts)",
        FK,
    ),
    ("operator.call", "calls an arbitrary callable", AI),
    ("functools.partial", "wraps arbitrary callables", PS),
    (
        "functools.reduce",
        "calls an arbitrary callable repeatedly",
        AI,
    ),
    ("functools.partialmethod", "wraps arbitrary callables", AI),
    ("itertools.starmap", "calls an arbitrary callable", AI),
    ("builtins.map", "calls an arbitrary callable lazily", AI),
    ("builtins.filter", "calls an arbitrary callable lazily", AI),
    (
        "copyreg.add_extension",
        "re-points the extension registry (EXT opcodes)",
        AI,
    ),
    (
        "copyreg.remove_extension",
        "alters the extension registry",
        AI,
    ),
    ("copyreg.pickle", "registers reducers", AI),
    ("copyreg.constructor", "registers constructors", AI),
    (
        "string.Formatter",
        "format-string attribute access gadget",
        AI,
    ),
    (
        "_operator.*",
        "operator gadgets (attrgetter/methodcaller)",
        AI,
    ),
    // Nested deserialisers.
    ("pickle.*", "nested unpickling (pickle.loads)", PS),
    ("_pickle.*", "nested unpickling", PS),
    ("cPickle.*", "nested unpickling (Python 2)", AI),
    ("pickletools.*", "pickle tooling", AI),
    ("dill.*", "nested unpickling of code", FK),
    ("cloudpickle.*", "nested unpickling of code", AI),
    ("shelve.*", "pickle-backed database (nested unpickling)", AI),
    ("jsonpickle.*", "nested object decoding", AI),
    ("yaml.load", "unsafe YAML object construction", AI),
    ("yaml.unsafe_load", "unsafe YAML object construction", AI),
    ("torch.load", "nested torch.load (pickle)", PS),
    ("torch.serialization.load", "nested torch.load (pickle)", PS),
    (
        "torch.storage._load_from_bytes",
        "torch.load of embedded bytes",
        AI,
    ),
    ("numpy.load", "nested numpy.load with pickles", AI),
    ("numpy.lib.npyio.load", "nested numpy.load with pickles", AI),
    (
        "numpy.testing._private.utils.runstring",
        "executes code strings",
        PS,
    ),
    ("numpy.testing.*", "test helpers executing code", AI),
    ("numpy.f2py.*", "compiles and imports extensions", AI),
    ("numpy.distutils.*", "runs build commands", AI),
    ("joblib.load", "nested joblib.load (pickle)", AI),
    ("torch.jit.*", "loads/compiles TorchScript", AI),
    (
        "torch._inductor.codecache.*",
        "compiles and loads generated code",
        PS,
    ),
    ("torch.hub.*", "downloads and runs repositories", FK),
    (
        "torch.utils.cpp_extension.*",
        "compiles and loads native code",
        AI,
    ),
    ("torch._dynamo.*", "code transformation machinery", AI),
    ("torch.ops.*", "calls arbitrary registered operators", AI),
    ("torch.fx.*", "generates and executes Python code", AI),
    ("torch.package.*", "imports code from packages", AI),
    (
        "torch.utils._config_module.*",
        "loads pickled/config code",
        AI,
    ),
    ("torch.utils.collect_env.*", "runs commands", AI),
    // Files.
    ("io.*", "io.open / FileIO write files", AI),
    ("_io.*", "file I/O", AI),
    (
        "shutil.*",
        "copies/deletes/moves files, unpacks archives",
        PS,
    ),
    ("tempfile.*", "file creation", FK),
    ("glob.*", "file system enumeration", AI),
    ("fileinput.*", "reads files", AI),
    ("linecache.*", "reads files", AI),
    ("tarfile.*", "archive extraction (path traversal)", AI),
    ("zipfile.*", "archive extraction", AI),
    (
        "logging.*",
        "logging.config.listen executes configs, file handlers",
        AI,
    ),
    ("distutils.*", "spawn/run build commands", AI),
    ("setuptools.*", "spawn/run build commands", AI),
    (
        "pip.*",
        "pip.main installs packages (picklescan advisory)",
        PS,
    ),
    ("_distutils_hack.*", "setuptools import shims", AI),
    ("ensurepip.*", "runs pip", AI),
    ("venv.*", "creates environments, runs pip", PS),
    ("site.*", "site configuration and .pth execution", AI),
    ("sysconfig.*", "interpreter configuration", AI),
    (
        "nturl2path.*",
        "path conversion gadget reachable from urllib",
        PS,
    ),
    ("uuid._get_command_stdout", "runs a command", AI),
    ("platform._syscmd_file", "runs a command", AI),
    ("platform.popen", "runs a command", AI),
    ("ctypes.util.*", "runs compilers/ldconfig", AI),
    ("mailcap.*", "runs mailcap commands", AI),
    ("webbrowser.*", "opens URLs / runs a browser", PS),
    ("antigravity.*", "opens a browser on import", AI),
    ("this.*", "prints on import (import side effect)", AI),
    ("turtle.*", "GUI / Tk", AI),
    ("tkinter.*", "GUI / Tcl eval", AI),
    ("_tkinter.*", "Tcl eval", AI),
    // Network.
    ("socket.*", "network connections", MS),
    ("_socket.*", "network connections", AI),
    ("ssl.*", "network connections", PS),
    ("http.*", "HTTP clients/servers", PS),
    ("httplib.*", "HTTP client (Python 2)", PS),
    ("urllib.*", "network fetches (urlopen, urlretrieve)", FK),
    ("urllib2.*", "network fetches (Python 2)", FK),
    ("requests.*", "HTTP requests", PS),
    ("aiohttp.*", "HTTP requests", PS),
    ("httpx.*", "HTTP requests", AI),
    ("ftplib.*", "network", AI),
    ("smtplib.*", "network", AI),
    ("poplib.*", "network", AI),
    ("imaplib.*", "network", AI),
    ("telnetlib.*", "network", AI),
    ("xmlrpc.*", "remote calls", AI),
    ("socketserver.*", "network servers", AI),
    ("asynchat.*", "network", AI),
    ("asyncore.*", "network", AI),
    ("wsgiref.*", "network servers", AI),
    // Databases and misc.
    ("sqlite3.*", "database files, load_extension", AI),
    ("dbm.*", "database files", AI),
    ("builtins.classmethod", "descriptor gadget", AI),
];

/// Harmless constructors inside otherwise denied modules (exact names).
pub const DENY_EXCEPTIONS: &[&str] = &["types.SimpleNamespace"];

/// Globals always allowed: PyTorch weights-only unpickler set, safe builtins,
/// NumPy rebuilders, joblib wrapper.
pub const BUILTIN_ALLOW: &[&str] = &[
    // builtins (pickle module docs' "restricting globals" example + weights_only)
    "builtins.set",
    "builtins.frozenset",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.complex",
    "builtins.slice",
    "builtins.range",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "builtins.tuple",
    "builtins.list",
    "builtins.dict",
    "builtins.Ellipsis",
    "builtins.NotImplemented",
    "collections.OrderedDict",
    "collections.Counter",
    "collections.defaultdict",
    "collections.deque",
    "_codecs.encode",
    "codecs.encode",
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    // Constructors seen in training checkpoints (Lightning hparams): building
    // them runs no code; using them for I/O would need a denied getattr.
    "pathlib.Path",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "argparse.Namespace",
    "torch.torch_version.TorchVersion",
    "enum.Enum",
    // PyTorch weights-only unpickler
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor",
    "torch._tensor._rebuild_from_type_v2",
    "torch.nn.parameter.Parameter",
    "torch.Size",
    "torch.device",
    "torch.Tensor",
    "torch.serialization._get_layout",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.ComplexFloatStorage",
    "torch.ComplexDoubleStorage",
    "torch.QUInt8Storage",
    "torch.QInt8Storage",
    "torch.QInt32Storage",
    "torch.QUInt4x2Storage",
    "torch.QUInt2x4Storage",
    "torch.float32",
    "torch.float64",
    "torch.float16",
    "torch.bfloat16",
    "torch.complex64",
    "torch.complex128",
    "torch.int8",
    "torch.int16",
    "torch.int32",
    "torch.int64",
    "torch.uint8",
    "torch.bool",
    "torch.float8_e4m3fn",
    "torch.float8_e5m2",
    "torch.strided",
    "torch.sparse_coo",
    "torch.sparse_csr",
    "torch.per_tensor_affine",
    "torch.per_channel_affine",
    "torch.contiguous_format",
    "torch.channels_last",
    "torch.preserve_format",
    // NumPy
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.dtypes.*",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.ma.core._mareconstruct",
    // NumPy random generators rebuild from a bit-generator *name* looked up
    // in a fixed dict (numpy/random/_pickle.py); no import, no I/O.
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    // joblib
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "joblib.numpy_pickle_compat.NDArrayWrapper",
    "joblib.numpy_pickle_compat.ZNDArrayWrapper",
];

/// The `sklearn` profile: estimators and their array/random-state helpers.
pub const PROFILE_SKLEARN: &[&str] = &[
    "sklearn.*",
    "xgboost.core.Booster",
    "xgboost.sklearn.*",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.*",
    "scipy.sparse.*",
    "numpy.random._pickle.*",
    "numpy.random.mtrand.RandomState",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random.bit_generator.*",
    "numpy.float64",
    "numpy.int64",
    "numpy.float32",
    "numpy.int32",
];

/// The `torch-modules` profile: whole-model pickles (`torch.save(model)`)
/// rebuild `torch.nn` modules with NEWOBJ + BUILD (`Module.__setstate__`).
pub const PROFILE_TORCH_MODULES: &[&str] = &[
    "torch.nn.modules.*",
    "torch.nn.parameter.*",
    "torch.nn.utils.parametrize.*",
    "torch._C._nn.*",
];

/// The `torchscript` profile, enabled by the scanner for `torch.jit.save`
/// archives (a `code/` folder or `constants.pkl` beside `data.pkl`): the list
/// and tensor builders TorchScript's unpickler uses
/// (`torch/jit/_pickle.py`, which only returns its arguments), lifted from
/// the `torch.jit.*` deny entry by exact name, and TorchScript class types
/// (`__torch__.*`, resolved by the TorchScript compilation unit, not by
/// importing Python code).
pub const PROFILE_TORCHSCRIPT: &[&str] = &[
    "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_tensorlist",
    "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.build_tensor_from_id",
    "torch.jit._pickle.restore_type_tag",
    "__torch__.*",
];

/// Maps Python 2 module names to their Python 3 names, as `pickle` does with
/// `fix_imports`: CPython's whole `_compat_pickle.IMPORT_MAPPING`
/// (`compat_table.rs`, generated), plus `exceptions` and `multiarray`, which
/// CPython maps name by name or not at all but which always name the same
/// modules.
pub fn compat_module(m: &str) -> &str {
    if let Ok(i) = IMPORT_MAPPING.binary_search_by(|(k, _)| (*k).cmp(m)) {
        return IMPORT_MAPPING[i].1;
    }
    match m {
        "exceptions" => "builtins",
        "multiarray" => "numpy.core.multiarray",
        _ => m,
    }
}

/// Maps Python 2 `(module, name)` pairs to Python 3 ones, as the unpickler's
/// `fix_imports` does: `_compat_pickle.NAME_MAPPING` first, then the module
/// alone with [`compat_module`]. CPython applies the table only below
/// protocol 3; it is applied here always, since the Python 2 names do not
/// import under Python 3 (so a name that only the mapping makes importable
/// is judged by what it would load, whatever the protocol).
pub fn compat_name<'s>(module: &'s str, name: &'s str) -> (&'s str, &'s str) {
    if let Ok(i) = NAME_MAPPING.binary_search_by(|((m, n), _)| (*m, *n).cmp(&(module, name))) {
        return NAME_MAPPING[i].1;
    }
    (compat_module(module), name)
}

#[derive(Debug, Clone, Default)]
struct PatternSet {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl PatternSet {
    fn add(&mut self, pat: &str) {
        let pat = pat.trim();
        if pat.is_empty() {
            return;
        }
        if let Some(p) = pat.strip_suffix('*') {
            self.prefixes.push(p.to_string());
        } else {
            self.exact.insert(pat.to_string());
        }
    }
    fn matches(&self, full: &str) -> bool {
        self.exact.contains(full) || self.prefixes.iter().any(|p| full.starts_with(p.as_str()))
    }
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// An allow/deny policy for pickle globals. See the module docs for the
/// precedence rules.
#[derive(Debug, Clone)]
pub struct Policy {
    builtin_allow: PatternSet,
    user_allow: PatternSet,
    user_deny: PatternSet,
    /// Exact names a profile lifts from the built-in deny table.
    profile_lift: HashSet<String>,
    profiles: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        let mut builtin_allow = PatternSet::default();
        for p in BUILTIN_ALLOW {
            builtin_allow.add(p);
        }
        Policy {
            builtin_allow,
            user_allow: PatternSet::default(),
            user_deny: PatternSet::default(),
            profile_lift: HashSet::new(),
            profiles: Vec::new(),
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct TomlRoot {
    #[serde(default)]
    pickle: Option<TomlPickle>,
}

#[derive(serde::Deserialize, Default)]
struct TomlPickle {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
}

fn builtin_deny_match(full: &str) -> Option<&'static DenyEntry> {
    BUILTIN_DENY
        .iter()
        .find(|(pat, _, _)| match pat.strip_suffix('*') {
            Some(prefix) => full.starts_with(prefix) || Some(full) == prefix.strip_suffix('.'),
            None => full == *pat,
        })
}

impl Policy {
    /// The default policy extended by the `[pickle]` table of a TOML document
    /// (`allow`, `deny`, `profiles` arrays of strings). Other tables are ignored,
    /// so the same file can configure other aisec components.
    pub fn from_toml_str(s: &str) -> Result<Policy, PolicyError> {
        let root: TomlRoot = toml::from_str(s).map_err(|e| PolicyError::Toml(e.to_string()))?;
        let mut policy = Policy::default();
        if let Some(p) = root.pickle {
            for a in &p.allow {
                policy.allow(a);
            }
            for d in &p.deny {
                policy.deny(d);
            }
            for prof in &p.profiles {
                policy = policy.with_profile(prof)?;
            }
        }
        Ok(policy)
    }

    /// Enables a named profile of extra allowed globals (`sklearn`,
    /// `torch-modules`, `torchscript`).
    pub fn with_profile(mut self, name: &str) -> Result<Policy, PolicyError> {
        let list = match name {
            "sklearn" => PROFILE_SKLEARN,
            "torch-modules" => PROFILE_TORCH_MODULES,
            "torchscript" => PROFILE_TORCHSCRIPT,
            other => return Err(PolicyError::UnknownProfile(other.to_string())),
        };
        if !self.profiles.iter().any(|p| p == name) {
            for p in list {
                self.builtin_allow.add(p);
                if name == "torchscript" && !p.ends_with('*') {
                    self.profile_lift.insert(p.to_string());
                }
            }
            self.profiles.push(name.to_string());
        }
        Ok(self)
    }

    /// Allows globals matching `pattern` (exact dotted name or `prefix*`).
    pub fn allow(&mut self, pattern: &str) {
        self.user_allow.add(pattern);
    }

    /// Denies globals matching `pattern` (exact dotted name or `prefix*`).
    pub fn deny(&mut self, pattern: &str) {
        self.user_deny.add(pattern);
    }

    /// Profiles enabled so far.
    pub fn profiles(&self) -> &[String] {
        &self.profiles
    }

    /// Classifies the global `module.name`.
    pub fn classify(&self, module: &str, name: &str) -> Verdict {
        let (module, name) = compat_name(module, name);
        let full = format!("{module}.{name}");
        // Every reading of the dotted path: `a.b.c.d` is checked as `a.b.c.d`,
        // `b.c.d`, `c.d`, so `torch._utils.os.system` meets the `os.*` entry.
        let parts: Vec<&str> = full.split('.').collect();
        let mut candidates: Vec<String> = Vec::with_capacity(parts.len());
        candidates.push(full.clone());
        if name.contains('.') {
            for k in 1..parts.len().saturating_sub(1) {
                candidates.push(parts[k..].join("."));
            }
        }
        if !self.user_deny.is_empty() && candidates.iter().any(|c| self.user_deny.matches(c)) {
            return Verdict::Denied {
                reason: "denied by user policy",
                source: "user policy",
            };
        }
        for c in &candidates {
            if let Some((_, reason, source)) = builtin_deny_match(c) {
                if self.user_allow.exact.contains(&full)
                    || DENY_EXCEPTIONS.contains(&full.as_str())
                    || self.profile_lift.contains(&full)
                {
                    return Verdict::Allowed;
                }
                return Verdict::Denied { reason, source };
            }
        }
        let exact_allowed =
            self.user_allow.exact.contains(&full) || self.builtin_allow.exact.contains(&full);
        // Dunder attributes (`numpy.__builtins__`, `x.__globals__`,
        // `object.__subclasses__`) reach arbitrary objects: modelscan issue #89.
        if !exact_allowed
            && name
                .split('.')
                .any(|s| s.len() > 4 && s.starts_with("__") && s.ends_with("__"))
        {
            return Verdict::Denied {
                reason: "dunder attribute access (reaches builtins/globals)",
                source: "modelscan issue #89",
            };
        }
        // Methods of builtin types (`builtins.dict.get`, `builtins.str.format`)
        // are gadget material (modelscan issue #89 uses dict.get on __builtins__).
        if !exact_allowed && module == "builtins" && name.contains('.') {
            return Verdict::Denied {
                reason: "method of a builtin type used as a gadget",
                source: "modelscan issue #89",
            };
        }
        if exact_allowed {
            return Verdict::Allowed;
        }
        // Derived capabilities outrank wildcard allows and profiles: the
        // `sklearn` profile allows `sklearn.*`, but not
        // `sklearn.datasets.dump_svmlight_file` writing a file.
        if let Some(c) = capability::lookup(module, name) {
            return Verdict::Capable {
                caps: c.caps,
                via: c.via,
                canonical: c.canonical,
            };
        }
        if self.user_allow.matches(&full) || self.builtin_allow.matches(&full) {
            return Verdict::Allowed;
        }
        Verdict::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = Policy::default();
        assert_eq!(
            p.classify("torch._utils", "_rebuild_tensor_v2"),
            Verdict::Allowed
        );
        assert_eq!(p.classify("collections", "OrderedDict"), Verdict::Allowed);
        assert!(matches!(
            p.classify("posix", "system"),
            Verdict::Denied { .. }
        ));
        assert!(matches!(
            p.classify("__builtin__", "eval"),
            Verdict::Denied { .. }
        ));
        assert!(matches!(p.classify("pip", "main"), Verdict::Denied { .. }));
        assert!(matches!(p.classify("os", "system"), Verdict::Denied { .. }));
        assert!(matches!(
            p.classify("os.path", "join"),
            Verdict::Denied { .. }
        ));
        assert_eq!(p.classify("mypkg", "Net"), Verdict::Unknown);
        assert_eq!(p.classify("osx", "thing"), Verdict::Unknown);
        assert_eq!(p.classify("types", "SimpleNamespace"), Verdict::Allowed);
        assert!(matches!(
            p.classify("types", "FunctionType"),
            Verdict::Denied { .. }
        ));
        assert_eq!(p.classify("pathlib", "PosixPath"), Verdict::Allowed);
        assert_eq!(p.classify("__builtin__", "xrange"), Verdict::Allowed);
    }

    #[test]
    fn dotted_names_are_checked_at_every_split() {
        let p = Policy::default();
        assert!(matches!(
            p.classify("torch._utils", "os.system"),
            Verdict::Denied { .. }
        ));
        assert!(matches!(
            p.classify("collections", "OrderedDict.__init__.__globals__"),
            Verdict::Denied { .. }
        ));
    }

    #[test]
    fn toml_and_profiles() {
        let p = Policy::from_toml_str(
            "[pickle]\nallow=[\"mypkg.models.MyNet\",\"mypkg.layers.*\"]\ndeny=[\"some.module.*\"]\nprofiles=[\"sklearn\"]\n",
        )
        .unwrap();
        assert_eq!(p.classify("mypkg.models", "MyNet"), Verdict::Allowed);
        assert_eq!(p.classify("mypkg.layers.conv", "Conv"), Verdict::Allowed);
        assert_eq!(p.classify("mypkg.models", "Other"), Verdict::Unknown);
        assert!(matches!(
            p.classify("some.module", "x"),
            Verdict::Denied { .. }
        ));
        assert_eq!(
            p.classify("sklearn.linear_model._base", "LinearRegression"),
            Verdict::Allowed
        );
        assert!(Policy::from_toml_str("[pickle]\nprofiles=[\"nope\"]").is_err());
        let t = Policy::default().with_profile("torch-modules").unwrap();
        assert_eq!(
            t.classify("torch.nn.modules.linear", "Linear"),
            Verdict::Allowed
        );
        assert_eq!(
            Policy::default().classify("torch.nn.modules.linear", "Linear"),
            Verdict::Unknown
        );
        assert!(Policy::from_toml_str("[pickle\n").is_err());
    }

    #[test]
    fn torchscript_profile_lifts_only_the_list_builders() {
        let p = Policy::default().with_profile("torchscript").unwrap();
        assert_eq!(
            p.classify("torch.jit._pickle", "build_intlist"),
            Verdict::Allowed
        );
        assert_eq!(p.classify("__torch__.models", "Net"), Verdict::Allowed);
        assert!(matches!(
            p.classify("torch.jit", "load"),
            Verdict::Denied { .. }
        ));
        assert!(matches!(
            Policy::default().classify("torch.jit._pickle", "build_intlist"),
            Verdict::Denied { .. }
        ));
    }

    #[test]
    fn wildcard_allow_does_not_lift_builtin_deny() {
        let mut p = Policy::default();
        p.allow("os.*");
        assert!(matches!(p.classify("os", "system"), Verdict::Denied { .. }));
        p.allow("os.getcwd");
        assert_eq!(p.classify("os", "getcwd"), Verdict::Allowed);
    }
}
