//! Folders of PNG/JPEG images with one subfolder per class (the layout
//! torchvision's `ImageFolder` reads): `root/<class>/<file>.png`. Classes
//! are numbered in sorted name order. Images are decoded with the `image`
//! crate under allocation limits, resized, and returned as `[n, c, h, w]`
//! values in `0..=255` (apply [`super::Preprocess`] for the model's range).

use std::path::{Path, PathBuf};

use super::Dataset;
use crate::classifier::{ModelError, Tensor};

const MAX_FILES: usize = 1_000_000;
const MAX_CLASSES: usize = 100_000;

/// How to turn images into tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageOptions {
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// 1 (grey) or 3 (RGB) channels.
    pub channels: usize,
}

/// Encodes 8-bit pixels (`c` = 1 grey or 3 RGB channels, interleaved,
/// row-major `w x h`) as a PNG: the workspace's one PNG writer
/// (aisec-attack's adversarial-example grids, inversion pictures and poison
/// triggers, aisec-defend's reversed triggers). A pixel count that does not
/// fit `w x h x c`, another channel count or an empty image is a
/// [`ModelError::Shape`].
pub fn encode_png(pixels: &[u8], w: usize, h: usize, c: usize) -> Result<Vec<u8>, ModelError> {
    if pixels.len() != w * h * c || !(c == 1 || c == 3) || w == 0 || h == 0 {
        return Err(ModelError::Shape(format!(
            "{} pixel bytes for a {w}x{h}x{c} image",
            pixels.len()
        )));
    }
    let too_big = |_| ModelError::Shape(format!("{w}x{h} is too large for a PNG"));
    let png_error = |e: png::EncodingError| ModelError::Invalid(format!("PNG encoding: {e}"));
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(
            &mut out,
            u32::try_from(w).map_err(too_big)?,
            u32::try_from(h).map_err(too_big)?,
        );
        enc.set_color(if c == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(png_error)?;
        wr.write_image_data(pixels).map_err(png_error)?;
    }
    Ok(out)
}

pub(crate) fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// Decodes one image file into `[c, h, w]` values.
pub fn load_image(path: &Path, o: &ImageOptions) -> Result<Vec<f32>, ModelError> {
    if o.channels != 1 && o.channels != 3 {
        return Err(ModelError::Invalid("channels must be 1 or 3".into()));
    }
    let mut r = image::ImageReader::open(path)?
        .with_guessed_format()
        .map_err(ModelError::Io)?;
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(16_384);
    lim.max_image_height = Some(16_384);
    lim.max_alloc = Some(512 << 20);
    r.limits(lim);
    let img = r
        .decode()
        .map_err(|e| ModelError::Invalid(format!("{}: {e}", path.display())))?;
    let img = img.resize_exact(o.width, o.height, image::imageops::FilterType::Triangle);
    let (w, h) = (o.width as usize, o.height as usize);
    let mut out = vec![0.0f32; o.channels * h * w];
    if o.channels == 1 {
        for (i, p) in img.to_luma8().pixels().enumerate() {
            out[i] = f32::from(p.0[0]);
        }
    } else {
        for (i, p) in img.to_rgb8().pixels().enumerate() {
            for c in 0..3 {
                out[c * h * w + i] = f32::from(p.0[c]);
            }
        }
    }
    Ok(out)
}

/// Image files with their labels, and the class names.
pub(crate) type FolderListing = (Vec<(PathBuf, usize)>, Vec<String>);

/// Lists `root/<class>/*.{png,jpg,jpeg}` in sorted order: each file with
/// its label, and the class names (index = label).
pub(crate) fn list_image_folder(root: &Path) -> Result<FolderListing, ModelError> {
    let mut classes: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(root)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            classes.push((e.file_name().to_string_lossy().into_owned(), e.path()));
            if classes.len() > MAX_CLASSES {
                return Err(ModelError::Invalid("too many class folders".into()));
            }
        }
    }
    if classes.is_empty() {
        return Err(ModelError::Invalid(format!(
            "{}: no class subfolders",
            root.display()
        )));
    }
    classes.sort();
    let mut files = Vec::new();
    for (label, (_, dir)) in classes.iter().enumerate() {
        let mut fs: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        fs.sort();
        for f in fs {
            if files.len() >= MAX_FILES {
                return Err(ModelError::Invalid("too many images".into()));
            }
            files.push((f, label));
        }
    }
    Ok((files, classes.into_iter().map(|c| c.0).collect()))
}

/// Reads `root/<class>/*.{png,jpg,jpeg}`; returns the data set and the class
/// names (index = label). For folders too large for memory, stream them
/// with [`super::stream::ImageFolderSource`].
pub fn read_image_folder(
    root: impl AsRef<Path>,
    o: &ImageOptions,
) -> Result<(Dataset, Vec<String>), ModelError> {
    let (files, names) = list_image_folder(root.as_ref())?;
    let mut data = Vec::new();
    let mut labels = Vec::with_capacity(files.len());
    for (f, label) in files {
        data.extend(load_image(&f, o)?);
        labels.push(label);
    }
    let n = labels.len();
    let x = Tensor::new(
        vec![n, o.channels, o.height as usize, o.width as usize],
        data,
    )?;
    Ok((Dataset::new(x, labels)?, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_refuses_pixels_that_do_not_fit_the_shape() {
        for (px, w, h, c) in [(3, 2, 2, 1), (8, 2, 2, 2), (0, 0, 0, 1)] {
            assert!(
                matches!(encode_png(&vec![0; px], w, h, c), Err(ModelError::Shape(_))),
                "{px} bytes, {w}x{h}x{c}"
            );
        }
        let png = encode_png(&[0, 255, 255, 0], 2, 2, 1).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(img.dimensions(), (2, 2));
        assert_eq!(img.into_raw(), vec![0, 255, 255, 0]);
    }

    #[test]
    fn reads_class_folders_and_resizes() {
        let d = tempfile::tempdir().unwrap();
        for (class, v) in [("cat", 10u8), ("dog", 200u8)] {
            std::fs::create_dir(d.path().join(class)).unwrap();
            let img = image::RgbImage::from_pixel(4, 6, image::Rgb([v, v, v]));
            img.save(d.path().join(class).join("a.png")).unwrap();
        }
        std::fs::write(d.path().join("dog").join("notes.txt"), "x").unwrap();
        let o = ImageOptions {
            width: 2,
            height: 3,
            channels: 3,
        };
        let (ds, names) = read_image_folder(d.path(), &o).unwrap();
        assert_eq!(names, vec!["cat", "dog"]);
        assert_eq!(ds.x.shape, vec![2, 3, 3, 2]);
        assert_eq!(ds.y, vec![0, 1]);
        assert!(ds.x.row(0).iter().all(|&v| v == 10.0));
        assert!(ds.x.row(1).iter().all(|&v| v == 200.0));
        std::fs::write(d.path().join("dog").join("bad.png"), "not a png").unwrap();
        assert!(read_image_folder(d.path(), &o).is_err());
    }
}
