//! Format detection from bytes, and what a file name claims.
//!
//! The format is always decided by the content (magic numbers, then
//! structure); the file name is only a claim, checked against the content
//! so that a lying suffix becomes a finding of its own.

use aisec_archive::Compression;

/// The artifact formats aisec tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A zip archive (PyTorch, Keras v3, NumPy .npz or a plain archive;
    /// the container step looks inside to tell which).
    Zip,
    /// A tar archive (legacy PyTorch or a plain archive).
    Tar,
    /// A 7z archive (a PyTorch checkpoint folder packed with 7z, as in
    /// the "nullifAI" models, or a plain archive).
    SevenZ,
    /// A compressed stream (joblib compression, `.gz` models...).
    Compressed(Compression),
    /// A pickle stream (raw pickle, legacy PyTorch, joblib).
    Pickle,
    /// A NumPy `.npy` array.
    Npy,
    /// An HDF5 file (Keras H5).
    H5,
    /// A GGUF model (llama.cpp).
    Gguf,
    /// A safetensors file.
    Safetensors,
    /// An ONNX model.
    Onnx,
    /// A TensorFlow SavedModel `saved_model.pb`.
    SavedModel,
    /// A Keras `keras_metadata.pb` or frozen TensorFlow GraphDef `.pb`.
    GraphDef,
    /// Nothing aisec recognises (text, images, plain data).
    Unknown,
}

impl Format {
    /// Short lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::SevenZ => "7z",
            Format::Compressed(_) => "compressed",
            Format::Pickle => "pickle",
            Format::Npy => "numpy",
            Format::H5 => "hdf5",
            Format::Gguf => "gguf",
            Format::Safetensors => "safetensors",
            Format::Onnx => "onnx",
            Format::SavedModel => "tf-savedmodel",
            Format::GraphDef => "tf-graphdef",
            Format::Unknown => "unknown",
        }
    }

    /// Whether loading this format with its usual loader can run code
    /// (pickle-based, or containers that commonly hold pickles).
    pub fn can_execute_code(self) -> bool {
        matches!(
            self,
            Format::Pickle | Format::Zip | Format::Tar | Format::SevenZ | Format::Compressed(_)
        )
    }
}

/// Detects the format of `data`. `name` (the file or member name) is only
/// used to choose between protobuf readings, which have no magic number.
pub fn detect(data: &[u8], name: &str) -> Format {
    if data.starts_with(b"\x93NUMPY") {
        return Format::Npy;
    }
    if aisec_formats::gguf::looks_like_gguf(data) {
        return Format::Gguf;
    }
    if aisec_formats::h5::looks_like_h5(data) {
        return Format::H5;
    }
    // Zip signatures at the start are cheap to check; the search for an
    // end-of-central-directory record in the tail (zips with data prepended)
    // touches up to 64 KiB and comes last.
    if data.starts_with(b"PK") && aisec_archive::looks_like_zip(data) {
        return Format::Zip;
    }
    if aisec_archive::looks_like_7z(data) {
        return Format::SevenZ;
    }
    if aisec_formats::safetensors::looks_like_safetensors(data) {
        return Format::Safetensors;
    }
    if let Some(c) = aisec_archive::sniff_compression(data) {
        // zlib's two-byte header and lzma-alone's properties byte are weak
        // magics: `(S` (MARK, STRING) is also a valid zlib header. A stream
        // that parses as a pickle is read as one, as pickle.load would.
        let weak = matches!(c, Compression::Zlib | Compression::Lzma);
        if !(weak && aisec_pickle::looks_like_pickle(data)) {
            return Format::Compressed(c);
        }
    }
    if aisec_archive::looks_like_tar(data) {
        return Format::Tar;
    }
    if aisec_pickle::looks_like_pickle(data) {
        return Format::Pickle;
    }
    let lower = name.to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    if base.ends_with(".pbtxt") {
        // Text format: TensorFlow chooses the parser by the file name.
        return if base == "saved_model.pbtxt" {
            Format::SavedModel
        } else {
            Format::GraphDef
        };
    }
    if base.ends_with(".pb") {
        if aisec_formats::savedmodel::looks_like_saved_model(data) {
            return Format::SavedModel;
        }
        return Format::GraphDef;
    }
    if aisec_formats::onnx::looks_like_onnx(data) {
        return Format::Onnx;
    }
    if aisec_archive::looks_like_zip(data) {
        return Format::Zip;
    }
    Format::Unknown
}

/// What a file name's suffix claims the format is, for the suffixes model
/// files use. `None` when the suffix makes no claim.
pub fn claimed(name: &str) -> Option<&'static [&'static str]> {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "safetensors" => &["safetensors"],
        "gguf" => &["gguf"],
        "onnx" => &["onnx"],
        "npy" => &["numpy"],
        "npz" => &["zip"],
        "h5" | "hdf5" => &["hdf5"],
        "keras" => &["zip", "hdf5"],
        "pkl" | "pickle" => &["pickle", "compressed"],
        "joblib" => &["pickle", "compressed"],
        "pt" | "pth" | "ckpt" => &["zip", "pickle", "tar"],
        "7z" => &["7z"],
        _ => return None,
    })
}

/// Formats whose usual loader never runs code: a file claiming one of
/// these but holding a pickle or archive is disguised.
pub fn claims_safe_format(name: &str) -> bool {
    matches!(
        claimed(name),
        Some(c) if c.iter().all(|f| matches!(*f, "safetensors" | "gguf" | "onnx" | "numpy" | "hdf5"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_magic_wins() {
        assert_eq!(detect(b"\x93NUMPY\x01\x00", "x.bin"), Format::Npy);
    }

    #[test]
    fn zip_magic() {
        assert_eq!(
            detect(b"PK\x03\x04rest-of-header-and-more", "m.pt"),
            Format::Zip
        );
    }

    #[test]
    fn pickle_protocol_header() {
        assert_eq!(
            detect(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00N.", "a"),
            Format::Pickle
        );
    }

    #[test]
    fn protocol0_pickle_is_not_taken_for_zlib() {
        // `(S` is also a valid zlib header (0x2853 % 31 == 0).
        let p = b"(S'echo hi'\nios\nsystem\n.";
        assert_eq!(detect(p, "x.pkl"), Format::Pickle);
    }

    #[test]
    fn pickle_without_proto_header_is_a_pickle() {
        // CPython loads it (os.system runs); found by differential fuzzing.
        let p = b"\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R.";
        assert_eq!(detect(p, "model.bin"), Format::Pickle);
    }

    #[test]
    fn text_is_unknown() {
        assert_eq!(
            detect(b"hello world, this is a README", "README"),
            Format::Unknown
        );
        assert_eq!(detect(b"", "empty"), Format::Unknown);
    }

    #[test]
    fn claims() {
        assert!(claims_safe_format("model.safetensors"));
        assert!(claims_safe_format("X.GGUF"));
        assert!(!claims_safe_format("model.pt"));
        assert!(!claims_safe_format("README"));
        assert_eq!(claimed("a.pkl"), Some(&["pickle", "compressed"][..]));
    }
}
