//! Streaming data sources: examples read batch by batch, so a data set
//! never has to fit in memory at once.
//!
//! A [`DataSource`] hands out [`Dataset`] batches in order. Sources exist
//! for `.npy` arrays on disk ([`NpySource`]: the header is parsed, then rows
//! are read as they are asked for), MNIST-style IDX files, gzip-compressed
//! or not ([`IdxSource`]), numeric CSV tables ([`CsvSource`]), folders of
//! images with one subfolder per class ([`ImageFolderSource`]: files are
//! listed up front and decoded per batch) and data already in memory
//! ([`MemorySource`]). [`DataSource::batches`]
//! turns any of them into an iterator that can apply a [`Preprocess`] and
//! report progress to a callback (the CLI drives a progress bar with it).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::images::{load_image, ImageOptions};
use super::npy::{parse_header_text, preamble, NpyHeader};
use super::{Dataset, Preprocess};
use crate::classifier::{ModelError, Tensor};

/// Largest batch a source hands out in one call (values), as a guard
/// against a huge `max` on wide examples.
const MAX_BATCH_VALUES: usize = 1 << 28;

/// A sequence of labelled examples read in batches.
pub trait DataSource {
    /// Shape of one example, without the batch dimension.
    fn example_shape(&self) -> &[usize];
    /// Number of examples, when known before reading them.
    fn len_hint(&self) -> Option<usize>;
    /// Reads up to `max` further examples; `Ok(None)` once all were read.
    fn next_batch(&mut self, max: usize) -> Result<Option<Dataset>, ModelError>;

    /// An iterator over batches of at most `size` examples.
    fn batches<'a>(self, size: usize) -> Batches<'a, Self>
    where
        Self: Sized,
    {
        Batches {
            src: self,
            size: size.max(1),
            pre: None,
            progress: None,
            done: 0,
            stopped: false,
        }
    }
}

impl<S: DataSource + ?Sized> DataSource for Box<S> {
    fn example_shape(&self) -> &[usize] {
        (**self).example_shape()
    }
    fn len_hint(&self) -> Option<usize> {
        (**self).len_hint()
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Dataset>, ModelError> {
        (**self).next_batch(max)
    }
}

/// Progress callback: examples read so far and the total when known.
pub type ProgressFn<'a> = Box<dyn FnMut(usize, Option<usize>) + 'a>;

/// Batches of a [`DataSource`], optionally preprocessed, with progress.
pub struct Batches<'a, S> {
    src: S,
    size: usize,
    pre: Option<Preprocess>,
    progress: Option<ProgressFn<'a>>,
    done: usize,
    stopped: bool,
}

impl<'a, S: DataSource> Batches<'a, S> {
    /// Applies `p` to every batch.
    pub fn preprocess(mut self, p: Preprocess) -> Self {
        self.pre = Some(p);
        self
    }

    /// Calls `f(examples_read, total)` after every batch.
    pub fn on_progress(mut self, f: impl FnMut(usize, Option<usize>) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Reads every remaining batch into one in-memory [`Dataset`].
    pub fn collect_all(self) -> Result<Dataset, ModelError> {
        let mut x: Vec<f32> = Vec::new();
        let mut y: Vec<usize> = Vec::new();
        let mut shape: Option<Vec<usize>> = None;
        for b in self {
            let b = b?;
            match &shape {
                None => shape = Some(b.x.shape[1..].to_vec()),
                Some(s) if s[..] != b.x.shape[1..] => {
                    return Err(ModelError::Shape(format!(
                        "batches differ in example shape: {s:?} and {:?}",
                        &b.x.shape[1..]
                    )))
                }
                Some(_) => {}
            }
            x.extend_from_slice(&b.x.data);
            y.extend_from_slice(&b.y);
        }
        let mut s = vec![y.len()];
        s.extend(shape.unwrap_or_default());
        Dataset::new(Tensor::new(s, x)?, y)
    }
}

impl<S: DataSource> Iterator for Batches<'_, S> {
    type Item = Result<Dataset, ModelError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped {
            return None;
        }
        let r = match self.src.next_batch(self.size) {
            Ok(Some(b)) => {
                self.done += b.len();
                let b = match &self.pre {
                    Some(p) => p.apply(&b.x).and_then(|x| Dataset::new(x, b.y)),
                    None => Ok(b),
                };
                if let Some(f) = self.progress.as_mut() {
                    f(self.done, self.src.len_hint());
                }
                b
            }
            Ok(None) => {
                self.stopped = true;
                return None;
            }
            Err(e) => Err(e),
        };
        if r.is_err() {
            // One error ends the stream (the source's position is unknown).
            self.stopped = true;
        }
        Some(r)
    }
}

fn rows_for(max: usize, row: usize, left: usize) -> usize {
    max.min(left).min((MAX_BATCH_VALUES / row.max(1)).max(1))
}

/// An in-memory [`Dataset`] as a source.
#[derive(Debug, Clone)]
pub struct MemorySource {
    data: Dataset,
    pos: usize,
}

impl MemorySource {
    /// Streams `data` from its first example.
    pub fn new(data: Dataset) -> MemorySource {
        MemorySource { data, pos: 0 }
    }
}

impl DataSource for MemorySource {
    fn example_shape(&self) -> &[usize] {
        &self.data.x.shape[1.min(self.data.x.shape.len())..]
    }
    fn len_hint(&self) -> Option<usize> {
        Some(self.data.len())
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Dataset>, ModelError> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let n = rows_for(
            max.max(1),
            self.data.x.row_len(),
            self.data.len() - self.pos,
        );
        let b = self.data.slice(self.pos, self.pos + n);
        self.pos += n;
        Ok(Some(b))
    }
}

fn check_labels(labels: &[usize], n: usize, what: &Path) -> Result<(), ModelError> {
    if labels.len() != n {
        return Err(ModelError::Shape(format!(
            "{}: {n} examples but {} labels",
            what.display(),
            labels.len()
        )));
    }
    Ok(())
}

/// A `.npy` array (batch first) read row block by row block from disk,
/// with labels from a `.npy` or IDX file (labels are small and read whole).
pub struct NpySource {
    rd: BufReader<std::fs::File>,
    header: NpyHeader,
    labels: Vec<usize>,
    pos: usize,
    path: PathBuf,
}

impl NpySource {
    /// Opens `inputs` (C-order numeric `.npy`, rank >= 1) and `labels`.
    pub fn open(inputs: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = inputs.as_ref().to_path_buf();
        let f = std::fs::File::open(&path)?;
        let file_len = f.metadata()?.len();
        let mut rd = BufReader::new(f);
        let mut pre = [0u8; 12];
        rd.read_exact(&mut pre[..10])
            .map_err(|_| ModelError::Invalid("npy: missing magic".into()))?;
        if pre[6] >= 2 {
            rd.read_exact(&mut pre[10..12])?;
        }
        let (start, hlen) = preamble(&pre[..if pre[6] >= 2 { 12 } else { 10 }])?;
        let mut h = vec![0u8; hlen];
        rd.read_exact(&mut h)
            .map_err(|_| ModelError::Invalid("npy: header runs past the end".into()))?;
        let h = std::str::from_utf8(&h)
            .map_err(|_| ModelError::Invalid("npy: header not text".into()))?;
        let header = parse_header_text(h)?;
        if header.shape.is_empty() {
            return Err(ModelError::Shape("npy: a 0-d array has no batch".into()));
        }
        if header.fortran && header.shape.len() > 1 {
            return Err(ModelError::Invalid(
                "npy: Fortran-order arrays cannot be streamed by row; \
                 save with np.ascontiguousarray or read with read_npy"
                    .into(),
            ));
        }
        let need = (header.count as u64) * header.width as u64;
        if file_len < (start + hlen) as u64 + need {
            return Err(ModelError::Invalid(
                "npy: data shorter than the shape says".into(),
            ));
        }
        let labels = super::read_labels(labels.as_ref())?;
        check_labels(&labels, header.shape[0], &path)?;
        Ok(NpySource {
            rd,
            header,
            labels,
            pos: 0,
            path,
        })
    }
}

impl DataSource for NpySource {
    fn example_shape(&self) -> &[usize] {
        &self.header.shape[1..]
    }
    fn len_hint(&self) -> Option<usize> {
        Some(self.header.shape[0])
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Dataset>, ModelError> {
        let total = self.header.shape[0];
        if self.pos >= total {
            return Ok(None);
        }
        let row: usize = self.header.shape[1..].iter().product();
        let n = rows_for(max.max(1), row, total - self.pos);
        let mut buf = vec![0u8; n * row * self.header.width];
        self.rd
            .read_exact(&mut buf)
            .map_err(|e| ModelError::Invalid(format!("npy {}: {e}", self.path.display())))?;
        let mut v = Vec::with_capacity(n * row);
        self.header.decode(&buf, &mut v);
        let mut shape = self.header.shape.clone();
        shape[0] = n;
        let x = Tensor::new(shape, v.into_iter().map(|v| v as f32).collect())?;
        let y = self.labels[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(Some(Dataset::new(x, y)?))
    }
}

/// An MNIST-style IDX image file (optionally gzip-compressed; decompressed
/// as it is read) with an IDX or `.npy` label file.
pub struct IdxSource {
    rd: Box<dyn Read + Send>,
    shape: Vec<usize>,
    kind: u8,
    width: usize,
    labels: Vec<usize>,
    pos: usize,
}

impl IdxSource {
    /// Opens `images` and `labels`.
    pub fn open(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self, ModelError> {
        let bad = |m: &str| ModelError::Invalid(format!("idx: {m}"));
        let path = images.as_ref();
        let mut f = BufReader::new(std::fs::File::open(path)?);
        let mut magic = [0u8; 2];
        let gz = {
            use std::io::BufRead;
            let b = f.fill_buf()?;
            magic.copy_from_slice(b.get(..2).unwrap_or(&[0, 0]));
            magic == [0x1f, 0x8b]
        };
        let mut rd: Box<dyn Read + Send> = if gz {
            Box::new(flate2::read::GzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let mut head = [0u8; 4];
        rd.read_exact(&mut head).map_err(|_| bad("bad magic"))?;
        if head[0] != 0 || head[1] != 0 {
            return Err(bad("bad magic"));
        }
        let width = match head[2] {
            0x08 | 0x09 => 1,
            0x0B => 2,
            0x0C | 0x0D => 4,
            0x0E => 8,
            _ => return Err(bad("unknown element type")),
        };
        let rank = usize::from(head[3]);
        if rank == 0 {
            return Err(bad("rank 0 has no batch"));
        }
        let mut shape = Vec::with_capacity(rank);
        let mut n: usize = 1;
        for _ in 0..rank {
            let mut d = [0u8; 4];
            rd.read_exact(&mut d).map_err(|_| bad("truncated header"))?;
            let d = u32::from_be_bytes(d) as usize;
            n = n
                .checked_mul(d)
                .filter(|&n| n <= 1 << 34)
                .ok_or_else(|| bad("too large"))?;
            shape.push(d);
        }
        let labels = super::read_labels(labels.as_ref())?;
        check_labels(&labels, shape[0], path)?;
        Ok(IdxSource {
            rd,
            shape,
            kind: head[2],
            width,
            labels,
            pos: 0,
        })
    }
}

impl DataSource for IdxSource {
    fn example_shape(&self) -> &[usize] {
        &self.shape[1..]
    }
    fn len_hint(&self) -> Option<usize> {
        Some(self.shape[0])
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Dataset>, ModelError> {
        if self.pos >= self.shape[0] {
            return Ok(None);
        }
        let row: usize = self.shape[1..].iter().product();
        let n = rows_for(max.max(1), row, self.shape[0] - self.pos);
        let mut buf = vec![0u8; n * row * self.width];
        self.rd
            .read_exact(&mut buf)
            .map_err(|_| ModelError::Invalid("idx: data shorter than the header says".into()))?;
        let k = self.kind;
        let v: Vec<f32> = buf
            .chunks_exact(self.width)
            .map(|c| super::idx::element(k, c))
            .collect();
        let mut shape = self.shape.clone();
        shape[0] = n;
        let y = self.labels[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(Some(Dataset::new(Tensor::new(shape, v)?, y)?))
    }
}

/// `root/<class>/*.{png,jpg,jpeg}` (torchvision's `ImageFolder` layout),
/// decoded batch by batch into `[n, c, h, w]` values in `0..=255`.
pub struct ImageFolderSource {
    files: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
    opts: ImageOptions,
    shape: Vec<usize>,
    pos: usize,
}

impl ImageFolderSource {
    /// Lists the class folders and their image files (sorted; classes are
    /// numbered in name order).
    pub fn open(root: impl AsRef<Path>, opts: ImageOptions) -> Result<Self, ModelError> {
        if opts.channels != 1 && opts.channels != 3 {
            return Err(ModelError::Invalid("channels must be 1 or 3".into()));
        }
        let (files, classes) = super::images::list_image_folder(root.as_ref())?;
        Ok(ImageFolderSource {
            files,
            classes,
            shape: vec![opts.channels, opts.height as usize, opts.width as usize],
            opts,
            pos: 0,
        })
    }

    /// Class names, index = label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
}

impl DataSource for ImageFolderSource {
    fn example_shape(&self) -> &[usize] {
        &self.shape
    }
    fn len_hint(&self) -> Option<usize> {
        Some(self.files.len())
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Dataset>, ModelError> {
        if self.pos >= self.files.len() {
            return Ok(None);
        }
        let row: usize = self.shape.iter().product();
        let n = rows_for(max.max(1), row, self.files.len() - self.pos);
        let mut x = Vec::with_capacity(n * row);
        let mut y = Vec::with_capacity(n);
        for (f, label) in &self.files[self.pos..self.pos + n] {
            x.extend(load_image(f, &self.opts)?);
            y.push(*label);
        }
        self.pos += n;
        let mut shape = vec![n];
        shape.extend_from_slice(&self.shape);
        Ok(Some(Dataset::new(Tensor::new(shape, x)?, y)?))
    }
}

/// Longest CSV line accepted (bytes).
const MAX_CSV_LINE: u64 = 16 << 20;

/// A numeric CSV table read a block of rows at a time (same format as
/// [`super::csv::read_csv`]: comma-separated numbers, an optional header
/// row, one label column). The number of rows is not known in advance.
pub struct CsvSource {
    rd: BufReader<std::fs::File>,
    header: Option<String>,
    label: super::csv::LabelColumn,
    shape: Vec<usize>,
    row: usize,
    pending: Option<String>,
    done: bool,
}

impl CsvSource {
    /// Opens `path`; reads the first rows to learn the header and width.
    pub fn open(
        path: impl AsRef<Path>,
        label: super::csv::LabelColumn,
    ) -> Result<Self, ModelError> {
        let mut src = CsvSource {
            rd: BufReader::new(std::fs::File::open(path.as_ref())?),
            header: None,
            label,
            shape: vec![],
            row: 0,
            pending: None,
            done: false,
        };
        let first = src.line()?;
        if let Some(f) = first {
            if f.split(',').any(|c| c.trim().parse::<f64>().is_err()) {
                src.header = Some(f);
                src.pending = src.line()?;
            } else {
                src.pending = Some(f);
            }
        }
        if let Some(p) = &src.pending {
            // Width (and label column) from the first data row.
            let d = super::csv::parse_csv(&src.with_header(p), &src.label)?;
            src.shape = d.x.shape[1..].to_vec();
        }
        Ok(src)
    }

    fn with_header(&self, body: &str) -> String {
        match &self.header {
            Some(h) => format!("{h}\n{body}"),
            None => body.to_string(),
        }
    }

    /// The next non-empty line, bounded in length.
    fn line(&mut self) -> Result<Option<String>, ModelError> {
        use std::io::BufRead;
        loop {
            let mut buf = Vec::new();
            let n = (&mut self.rd)
                .take(MAX_CSV_LINE)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            if n as u64 == MAX_CSV_LINE && buf.last() != Some(&b'\n') {
                return Err(ModelError::Invalid("csv: line too long".into()));
            }
            let l =
                String::from_utf8(buf).map_err(|_| ModelError::Invalid("csv: not UTF-8".into()))?;
            if !l.trim().is_empty() {
                return Ok(Some(l.trim_end().to_string()));
            }
        }
    }
}

impl DataSource for CsvSource {
    fn example_shape(&self) -> &[usize] {
        &self.shape
    }
    fn len_hint(&self) -> Option<usize> {
        None
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Dataset>, ModelError> {
        if self.done {
            return Ok(None);
        }
        let limit = rows_for(
            max.max(1),
            self.shape.iter().product::<usize>() + 1,
            usize::MAX,
        );
        let mut body = String::new();
        let mut n = 0;
        while n < limit {
            let Some(l) = self
                .pending
                .take()
                .map_or_else(|| self.line(), |p| Ok(Some(p)))?
            else {
                self.done = true;
                break;
            };
            body.push_str(&l);
            body.push('\n');
            n += 1;
        }
        if n == 0 {
            return Ok(None);
        }
        let first = self.row + 1;
        self.row += n;
        // Without a header, parse_csv would take a bad first row of this
        // block for one.
        if self.header.is_none()
            && body
                .lines()
                .next()
                .is_some_and(|l| l.split(',').any(|c| c.trim().parse::<f64>().is_err()))
        {
            return Err(ModelError::Invalid(format!(
                "csv: data row {first} holds a value that is not a number"
            )));
        }
        let d = super::csv::parse_csv(&self.with_header(&body), &self.label).map_err(|e| {
            ModelError::Invalid(format!("{e} (in the block starting at data row {first})"))
        })?;
        if d.x.shape[1..] != self.shape[..] {
            return Err(ModelError::Shape(format!(
                "csv: rows from {first} have {} features, expected {:?}",
                d.x.row_len(),
                self.shape
            )));
        }
        Ok(Some(d))
    }
}

/// Opens a source by looking at `inputs`: a directory is an image folder
/// (labels from its class subfolders; `labels` must be `None`), a `.csv`
/// file a table whose last column is the label (`labels` `None` too), a
/// file starting with the `.npy` magic is streamed as `.npy`, anything else
/// is read as IDX. `image` sets the size images are resized to.
pub fn open_source(
    inputs: &Path,
    labels: Option<&Path>,
    image: ImageOptions,
) -> Result<Box<dyn DataSource + Send>, ModelError> {
    if inputs.is_dir() {
        if labels.is_some() {
            return Err(ModelError::Invalid(
                "an image folder takes its labels from the class subfolders".into(),
            ));
        }
        return Ok(Box::new(ImageFolderSource::open(inputs, image)?));
    }
    let csv = inputs
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if csv {
        if labels.is_some() {
            return Err(ModelError::Invalid(
                "a CSV table takes its labels from its last column".into(),
            ));
        }
        return Ok(Box::new(CsvSource::open(
            inputs,
            super::csv::LabelColumn::Last,
        )?));
    }
    let labels = labels.ok_or_else(|| {
        ModelError::Invalid(format!("{}: a labels file is needed", inputs.display()))
    })?;
    let mut m = [0u8; 6];
    let npy = std::fs::File::open(inputs)?.read_exact(&mut m).is_ok() && m == *b"\x93NUMPY";
    if npy {
        Ok(Box::new(NpySource::open(inputs, labels)?))
    } else {
        Ok(Box::new(IdxSource::open(inputs, labels)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_npy_f32(p: &Path, shape: &[usize], v: &[f32]) {
        super::super::npy::write_npy(p, &Tensor::new(shape.to_vec(), v.to_vec()).unwrap()).unwrap();
    }

    #[test]
    fn npy_streams_in_batches_with_progress() {
        let d = tempfile::tempdir().unwrap();
        let (xp, yp) = (d.path().join("x.npy"), d.path().join("y.npy"));
        let v: Vec<f32> = (0..5 * 2 * 3).map(|i| i as f32).collect();
        write_npy_f32(&xp, &[5, 2, 3], &v);
        write_npy_f32(&yp, &[5], &[0.0, 1.0, 2.0, 1.0, 0.0]);
        let src = NpySource::open(&xp, &yp).unwrap();
        assert_eq!(src.example_shape(), &[2, 3]);
        let mut seen = vec![];
        let batches: Vec<Dataset> = src
            .batches(2)
            .on_progress(|done, total| seen.push((done, total)))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].x.shape, vec![2, 2, 3]);
        assert_eq!(batches[2].x.shape, vec![1, 2, 3]);
        assert_eq!(batches[2].x.data, v[24..].to_vec());
        assert_eq!(batches[1].y, vec![2, 1]);
        assert_eq!(seen, vec![(2, Some(5)), (4, Some(5)), (5, Some(5))]);
        // Whole-file read and streamed read agree.
        let all = NpySource::open(&xp, &yp)
            .unwrap()
            .batches(3)
            .collect_all()
            .unwrap();
        assert_eq!(all.x.data, v);
        assert_eq!(all.x.shape, vec![5, 2, 3]);
    }

    #[test]
    fn npy_source_refuses_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let (xp, yp) = (d.path().join("x.npy"), d.path().join("y.npy"));
        write_npy_f32(&xp, &[4, 3], &[0.5; 12]);
        write_npy_f32(&yp, &[3], &[0.0; 3]);
        // Label count differs.
        assert!(NpySource::open(&xp, &yp).is_err());
        // Truncated data is caught at open, before any batch.
        write_npy_f32(&yp, &[4], &[0.0; 4]);
        let b = std::fs::read(&xp).unwrap();
        std::fs::write(&xp, &b[..b.len() - 5]).unwrap();
        assert!(NpySource::open(&xp, &yp).is_err());
        std::fs::write(&xp, b"garbage").unwrap();
        assert!(NpySource::open(&xp, &yp).is_err());
    }

    #[test]
    fn idx_streams_plain_and_gzip() {
        let d = tempfile::tempdir().unwrap();
        let mut img = vec![0, 0, 0x08, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2];
        img.extend((0..12u8).map(|v| v * 10));
        let mut lab = vec![0, 0, 0x08, 1, 0, 0, 0, 3];
        lab.extend([7u8, 1, 4]);
        let (ip, lp, gp) = (
            d.path().join("img.idx"),
            d.path().join("lab.idx"),
            d.path().join("img.idx.gz"),
        );
        std::fs::write(&ip, &img).unwrap();
        std::fs::write(&lp, &lab).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &img).unwrap();
        std::fs::write(&gp, gz.finish().unwrap()).unwrap();
        for p in [&ip, &gp] {
            let b: Vec<Dataset> = IdxSource::open(p, &lp)
                .unwrap()
                .batches(2)
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(b.len(), 2);
            assert_eq!(b[0].x.shape, vec![2, 2, 2]);
            assert_eq!(b[1].x.data, vec![80.0, 90.0, 100.0, 110.0]);
            assert_eq!(b[1].y, vec![4]);
        }
        // Truncated image data: an error on the batch that needs it.
        std::fs::write(&ip, &img[..img.len() - 1]).unwrap();
        let r: Vec<_> = IdxSource::open(&ip, &lp).unwrap().batches(2).collect();
        assert_eq!(r.len(), 2);
        assert!(r[0].is_ok() && r[1].is_err());
    }

    #[test]
    fn image_folder_streams_and_preprocesses() {
        let d = tempfile::tempdir().unwrap();
        for (class, vals) in [("cat", [10u8, 20, 30]), ("dog", [200, 210, 220])] {
            std::fs::create_dir(d.path().join(class)).unwrap();
            for (i, v) in vals.iter().enumerate() {
                let img = image::RgbImage::from_pixel(5, 3, image::Rgb([*v, 0, 255]));
                img.save(d.path().join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let o = ImageOptions {
            width: 2,
            height: 2,
            channels: 3,
        };
        let src = ImageFolderSource::open(d.path(), o).unwrap();
        assert_eq!(src.classes(), &["cat".to_string(), "dog".to_string()]);
        assert_eq!(src.len_hint(), Some(6));
        let p = Preprocess {
            scale: 1.0 / 255.0,
            swap_rb: true,
            ..Preprocess::default()
        };
        let b: Vec<Dataset> = src
            .batches(4)
            .preprocess(p)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].y, vec![0, 0, 0, 1]);
        assert_eq!(b[1].x.shape, vec![2, 3, 2, 2]);
        // BGR: channel 0 is the blue plane (255), channel 2 the red value.
        let r = b[1].x.row(1);
        assert!(r[..4].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(r[8..].iter().all(|&v| (v - 220.0 / 255.0).abs() < 1e-6));
        // Via open_source, and a corrupt file is an error in its batch.
        std::fs::write(d.path().join("dog").join("9.png"), "not a png").unwrap();
        let r: Vec<_> = open_source(d.path(), None, o).unwrap().batches(4).collect();
        assert!(r[0].is_ok() && r[1].is_err());
        assert!(open_source(d.path(), Some(d.path()), o).is_err());
    }

    #[test]
    fn csv_streams_blocks_with_header() {
        use super::super::csv::{read_csv, LabelColumn};
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        let mut text = String::from("f1,f2,label\n");
        for i in 0..7 {
            text.push_str(&format!("{i},{}.5,{}\n\n", i * 2, i % 3));
        }
        std::fs::write(&p, &text).unwrap();
        let lab = LabelColumn::Name("label".into());
        let src = CsvSource::open(&p, lab.clone()).unwrap();
        assert_eq!(src.example_shape(), &[2]);
        let mut seen = vec![];
        let all = src
            .batches(3)
            .on_progress(|d, t| seen.push((d, t)))
            .collect_all()
            .unwrap();
        assert_eq!(all, read_csv(&p, &lab).unwrap());
        assert_eq!(seen, vec![(3, None), (6, None), (7, None)]);
        // A bad row is reported with its block.
        std::fs::write(&p, "1,2,0\n3,4,1\n5,x,0\n").unwrap();
        let r: Vec<_> = CsvSource::open(&p, LabelColumn::Last)
            .unwrap()
            .batches(2)
            .collect();
        assert!(r[0].is_ok());
        let e = r[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("data row 3"), "{e}");
        let o = ImageOptions {
            width: 1,
            height: 1,
            channels: 1,
        };
        assert_eq!(open_source(&p, None, o).unwrap().example_shape(), &[2]);
        assert!(open_source(&p, Some(&p), o).is_err());
    }

    #[test]
    fn memory_source_matches_dataset_batches() {
        let ds = Dataset::new(
            Tensor::new(vec![5, 2], (0..10).map(|v| v as f32).collect()).unwrap(),
            vec![0, 1, 2, 3, 4],
        )
        .unwrap();
        let a: Vec<Dataset> = MemorySource::new(ds.clone())
            .batches(2)
            .collect::<Result<_, _>>()
            .unwrap();
        let b: Vec<Dataset> = ds.batches(2).collect();
        assert_eq!(a, b);
    }
}
