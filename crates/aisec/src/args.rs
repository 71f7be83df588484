//! Argument groups shared by the commands (`#[command(flatten)]`), so the
//! same thing has the same flag, help and checks everywhere (issue 11):
//!
//! | group | flags | commands |
//! |---|---|---|
//! | [`crate::cmd::target::ModelArgs`] | `MODEL`, `--spec` | attack evasion, inversion |
//! | [`crate::cmd::target::VictimArgs`] | `MODEL`, `--spec`, `--url` + KServe flags | attack extraction, membership, explain |
//! | [`InputRange`] | `--lo`, `--hi` | attack evasion, inversion, extraction, membership, poison; defend data, model, repair, strip; explain; train |
//! | [`PreprocessArgs`] | `--scale`, `--value-range`, `--channels-last`, `--bgr`, `--resize` | the same commands |
//! | [`NormalizeArgs`] | `--mean`, `--std` | attack evasion, inversion |
//!
//! Commands that read a labelled data set for a known input shape load it
//! with [`load_checked`]: one loader, one preprocessing, one range check.
//! | [`crate::output::OutputArgs`] | `--format`, `-o`, `--color`, `--fail-on`, `--no-fail`, `--min-severity` | commands with findings |
//! | [`crate::output::ReportArgs`] | `--format`, `-o`, `--color` | train, demo (no findings to fail on) |

use std::path::Path;

use aisec_model::data::{Dataset, Preprocess};
use aisec_model::Tensor;
use anyhow::{bail, Context};

/// The valid input range of the model, in which budgets and clipping are
/// measured; data outside it after preprocessing is an error.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct InputRange {
    /// Lowest valid input value (inputs below it after preprocessing are an error).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub lo: f32,

    /// Highest valid input value (inputs above it are an error: map them with --value-range or --scale).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub hi: f32,
}

impl Default for InputRange {
    /// `[0, 1]`, the flags' defaults.
    fn default() -> Self {
        InputRange { lo: 0.0, hi: 1.0 }
    }
}

impl InputRange {
    /// Fails unless `lo < hi` (both finite).
    pub fn check(&self) -> anyhow::Result<()> {
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            bail!("--lo must be below --hi");
        }
        Ok(())
    }
}

/// How stored values become model inputs, declared, never guessed.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PreprocessArgs {
    /// Multiply inputs by this factor after loading (e.g. 0.00392156862745098 for 0-255 images, 0.0625 for 0-16 digits).
    #[arg(long, value_name = "F", conflicts_with = "value_range")]
    pub scale: Option<f32>,

    /// Range of the stored values, mapped linearly onto [--lo, --hi] (e.g. 0,255). Image folders default to 0,255.
    #[arg(
        long,
        value_name = "LO,HI",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub value_range: Vec<f32>,

    /// Arrays are channels-last [n,h,w,c]: reorder to [n,c,h,w].
    #[arg(long)]
    pub channels_last: bool,

    /// Swap the first and third channel (stored BGR, model wants RGB, or the reverse).
    #[arg(long)]
    pub bgr: bool,

    /// Resize array inputs to HxW (bilinear), e.g. 32x32.
    #[arg(long, value_name = "HxW")]
    pub resize: Option<String>,
}

/// `--resize HxW`.
pub fn parse_hw(s: &str) -> anyhow::Result<(usize, usize)> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("--resize '{s}': expected HxW, e.g. 32x32"))?;
    let (h, w): (usize, usize) = (h.trim().parse()?, w.trim().parse()?);
    if h == 0 || w == 0 || h > 16_384 || w > 16_384 {
        bail!("--resize '{s}': sizes must be 1..16384");
    }
    Ok((h, w))
}

impl PreprocessArgs {
    /// The declared steps onto `range` (`folder`: decoded images, which
    /// hold 0..=255 unless --value-range or --scale says otherwise).
    pub fn preprocess(&self, range: &InputRange, folder: bool) -> anyhow::Result<Preprocess> {
        if !self.value_range.is_empty() && self.value_range.len() != 2 {
            bail!("--value-range takes two numbers, LO,HI");
        }
        if let Some(s) = self.scale {
            if !s.is_finite() {
                bail!("--scale must be a finite number");
            }
        }
        let mut p = match (&self.value_range[..], self.scale) {
            ([lo, hi], _) => Preprocess::value_range((*lo, *hi), (range.lo, range.hi))?,
            (_, Some(s)) => Preprocess {
                scale: s,
                ..Preprocess::default()
            },
            _ if folder => Preprocess::value_range((0.0, 255.0), (range.lo, range.hi))?,
            _ => Preprocess::default(),
        };
        p.to_channels_first = self.channels_last;
        p.swap_rb = self.bgr;
        p.resize = self.resize.as_deref().map(parse_hw).transpose()?;
        Ok(p)
    }

    /// Applies the declared steps to a loaded array (nothing to do: the
    /// array itself).
    pub fn apply(&self, x: Tensor, range: &InputRange) -> anyhow::Result<Tensor> {
        let p = self.preprocess(range, false)?;
        if p == Preprocess::default() {
            return Ok(x);
        }
        Ok(p.apply(&x)?)
    }
}

/// A labelled data set read with the shared data flags: loaded in any
/// format aisec reads (`.npz`, `.npy`/IDX with `labels`, CSV, an image
/// folder), preprocessed as declared (before it is shaped for `input`, so
/// `--channels-last` sees the stored layout), shaped for `input`, and
/// checked: NaN/Inf and values outside `[--lo, --hi]` are errors that name
/// the range found and the flag that fixes it. `what` names the data in
/// messages ("DATA", "--clean"). Labels are the caller's to check (it
/// knows the number of classes).
pub fn load_checked(
    path: &Path,
    labels: Option<&Path>,
    label_column: &str,
    input: &[usize],
    prep: &PreprocessArgs,
    range: &InputRange,
    what: &str,
) -> anyhow::Result<Dataset> {
    range.check()?;
    let p = prep.preprocess(range, path.is_dir())?;
    let d = crate::cmd::train::load_data(path, labels, label_column, input, &p)?;
    crate::data::check_inputs(
        &d.x,
        what,
        range.lo,
        range.hi,
        crate::data::Fix::ScaleOrValueRange,
    )?;
    Ok(d)
}

/// The normalisation a model expects, applied inside the model so budgets
/// stay in pixel space.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NormalizeArgs {
    /// Per-channel mean the model expects its input normalised with, comma-separated; applied inside the model, so --eps, --lo and --hi stay in pixel space.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "M,...",
        allow_negative_numbers = true
    )]
    pub mean: Vec<f32>,

    /// Per-channel standard deviation for that normalisation.
    #[arg(long, value_delimiter = ',', value_name = "S,...")]
    pub std: Vec<f32>,
}

impl NormalizeArgs {
    /// Whether a normalisation was given.
    pub fn is_set(&self) -> bool {
        !(self.mean.is_empty() && self.std.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_range_scale_and_identity() {
        let r = InputRange { lo: 0.0, hi: 1.0 };
        let x = Tensor::new(vec![1, 2], vec![0.0, 255.0]).unwrap();
        let p = PreprocessArgs {
            value_range: vec![0.0, 255.0],
            ..Default::default()
        };
        assert_eq!(p.apply(x.clone(), &r).unwrap().data, vec![0.0, 1.0]);
        let p = PreprocessArgs {
            scale: Some(0.5),
            ..Default::default()
        };
        assert_eq!(p.apply(x.clone(), &r).unwrap().data, vec![0.0, 127.5]);
        let p = PreprocessArgs::default();
        assert_eq!(p.apply(x, &r).unwrap().data, vec![0.0, 255.0]);
        assert!(PreprocessArgs {
            value_range: vec![1.0],
            ..Default::default()
        }
        .preprocess(&r, false)
        .is_err());
        assert!(InputRange { lo: 1.0, hi: 0.0 }.check().is_err());
        assert_eq!(parse_hw("32x16").unwrap(), (32, 16));
        assert!(parse_hw("0x1").is_err());
    }
}
