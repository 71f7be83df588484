//! Numeric CSV tables: one example per row, one column holding the label.
//! A first row that does not parse as numbers is taken as a header.

use std::path::Path;

use super::Dataset;
use crate::classifier::{ModelError, Tensor};

/// Which column is the label.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelColumn {
    /// The last column.
    Last,
    /// Column by index.
    Index(usize),
    /// Column by header name.
    Name(String),
}

/// Reads a CSV file of numbers (comma-separated, no quoting) into a dataset.
pub fn read_csv(path: impl AsRef<Path>, label: &LabelColumn) -> Result<Dataset, ModelError> {
    let b = crate::onnx_model::read_bounded(path.as_ref())?;
    let text = String::from_utf8(b).map_err(|_| ModelError::Invalid("csv: not UTF-8".into()))?;
    parse_csv(&text, label)
}

/// Parses CSV text into a dataset.
pub fn parse_csv(text: &str, label: &LabelColumn) -> Result<Dataset, ModelError> {
    let bad = |m: String| ModelError::Invalid(format!("csv: {m}"));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    let mut header: Option<Vec<String>> = None;
    if let Some(first) = lines.peek() {
        if first.split(',').any(|c| c.trim().parse::<f64>().is_err()) {
            header = Some(first.split(',').map(|s| s.trim().to_string()).collect());
            lines.next();
        }
    }
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut width = None;
    for (ln, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let w = *width.get_or_insert(cells.len());
        if cells.len() != w || w < 2 {
            return Err(bad(format!(
                "row {} has {} columns, expected {w}",
                ln + 1,
                cells.len()
            )));
        }
        let li = match label {
            LabelColumn::Last => w - 1,
            LabelColumn::Index(i) if *i < w => *i,
            LabelColumn::Index(i) => return Err(bad(format!("no column {i}"))),
            LabelColumn::Name(n) => header
                .as_ref()
                .and_then(|h| h.iter().position(|c| c == n))
                .ok_or_else(|| bad(format!("no column named '{n}'")))?,
        };
        for (i, c) in cells.iter().enumerate() {
            let v: f64 = c
                .parse()
                .map_err(|_| bad(format!("row {}: '{c}' is not a number", ln + 1)))?;
            if i == li {
                if v < 0.0 || v.fract() != 0.0 || v > 1e9 {
                    return Err(bad(format!(
                        "row {}: label {v} is not a class index",
                        ln + 1
                    )));
                }
                y.push(v as usize);
            } else {
                x.push(v as f32);
            }
        }
        if x.len() > 1 << 28 {
            return Err(bad("too large".into()));
        }
    }
    let n = y.len();
    let feats = width.map_or(0, |w| w - 1);
    Dataset::new(Tensor::new(vec![n, feats], x)?, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_label_columns() {
        let d = parse_csv(
            "a,b,label\n1,2,0\n3.5,-1,2\n",
            &LabelColumn::Name("label".into()),
        )
        .unwrap();
        assert_eq!(d.x.shape, vec![2, 2]);
        assert_eq!(d.x.data, vec![1.0, 2.0, 3.5, -1.0]);
        assert_eq!(d.y, vec![0, 2]);
        let d = parse_csv("1,9,8\n0,7,6\n", &LabelColumn::Index(0)).unwrap();
        assert_eq!(d.y, vec![1, 0]);
        assert_eq!(d.x.data, vec![9.0, 8.0, 7.0, 6.0]);
        assert!(parse_csv("1,2\n1,2,3\n", &LabelColumn::Last).is_err());
        assert!(parse_csv("1,2\n1,0.5\n", &LabelColumn::Last).is_err());
    }
}
