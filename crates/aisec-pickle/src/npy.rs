//! NumPy `.npy` files: the header is read by `aisec_core::npy` (the
//! workspace's one `.npy` header reader: versions 1.0-3.0, a literal parser
//! that evaluates nothing). Object arrays (`'|O'`, or structured dtypes with
//! an object field) are followed by a pickle, which is analysed with the
//! symbolic machine; other arrays only have their size checked against the
//! header.

use aisec_core::npy::{dtype_info, read_header};
use aisec_core::Location;

use crate::machine::Ctx;
use crate::rules::{NPY_HEADER, NPY_OBJECT, TRAILING_DATA};
use crate::{finish, Limits, PickleReport, Policy, StreamKind, StreamOut};

pub use aisec_core::npy::{parse_header_literal, Lit};

/// Scans a NumPy `.npy` file.
pub fn scan_npy(data: &[u8], loc: &Location, policy: &Policy, limits: &Limits) -> PickleReport {
    let mut ctx = Ctx::new(policy, limits, loc);
    let out = scan_npy_ctx(&mut ctx, data);
    finish(ctx, out)
}

fn scan_npy_ctx(ctx: &mut Ctx<'_>, data: &[u8]) -> StreamOut {
    let mut out = StreamOut {
        pickles: 0,
        consumed: 0,
        malformed: None,
        kind: StreamKind::Plain,
    };
    let fail = |ctx: &mut Ctx<'_>, out: &mut StreamOut, off: usize, msg: String| {
        ctx.emit(&NPY_HEADER, off as u64, msg.clone(), None);
        out.malformed = Some(msg);
    };
    let (pre, header) = match read_header(data) {
        Ok(x) => x,
        Err(e) => {
            fail(ctx, &mut out, e.offset, e.message);
            return out;
        }
    };
    let (hstart, hend) = (pre.header_start, pre.data_start());
    let (itemsize, has_object) = match dtype_info(&header.descr) {
        Ok(x) => x,
        Err(e) => {
            fail(ctx, &mut out, hstart, format!("bad descr: {e}"));
            return out;
        }
    };
    out.consumed = hend;
    if has_object {
        ctx.emit(
            &NPY_OBJECT,
            hend as u64,
            format!(
                "object array, descr {}, shape {}: data is a pickle",
                header.descr,
                aisec_core::npy::Lit::Seq(
                    header
                        .shape
                        .iter()
                        .map(|&d| aisec_core::npy::Lit::Int(i128::from(d)))
                        .collect()
                )
            ),
            None,
        );
        let s = crate::scan_stream_from(ctx, data, hend);
        out.pickles = s.pickles;
        out.consumed = s.consumed;
        out.malformed = s.malformed;
        return out;
    }
    let nbytes = header.count().saturating_mul(itemsize);
    let avail = (data.len() - hend) as u64;
    if nbytes > avail {
        fail(
            ctx,
            &mut out,
            hend,
            format!("array needs {nbytes} bytes of data, file has {avail}"),
        );
        return out;
    }
    out.consumed = hend + nbytes as usize;
    if nbytes < avail {
        ctx.emit(
            &TRAILING_DATA,
            out.consumed as u64,
            format!("{} bytes after the array data", avail - nbytes),
            None,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.as_bytes().to_vec();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(b' ');
        }
        h.push(b'\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(&h);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn v3_utf8_header_and_structured_object_dtype() {
        let h =
            "{'descr': [('名', '<i4'), ('o', '|O')], 'fortran_order': False, 'shape': (1,), }\n";
        let mut v = b"\x93NUMPY\x03\x00".to_vec();
        v.extend_from_slice(&(h.len() as u32).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(b"cposix\nsystem\n(S'id'\ntR.");
        let r = scan_npy(
            &v,
            &Location::path("s.npy"),
            &Policy::default(),
            &Limits::default(),
        );
        let ids: Vec<_> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, vec!["AISEC-PICKLE-012", "AISEC-PICKLE-001"]);
        // non-UTF-8 / non-ASCII header in version 1 is rejected
        let mut bad = b"\x93NUMPY\x01\x00\x04\x00{\xff}\n".to_vec();
        bad.extend_from_slice(&[0; 4]);
        let r = scan_npy(
            &bad,
            &Location::path("b.npy"),
            &Policy::default(),
            &Limits::default(),
        );
        assert!(r.malformed.is_some());
        // header length beyond the file
        let r = scan_npy(
            b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}",
            &Location::path("c.npy"),
            &Policy::default(),
            &Limits::default(),
        );
        assert!(r.malformed.unwrap().contains("exceeds"));
    }

    #[test]
    fn numeric_array_ok_and_truncated() {
        let l = Location::path("a.npy");
        let ok = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
            &[0u8; 16],
        );
        let r = scan_npy(&ok, &l, &Policy::default(), &Limits::default());
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.consumed, ok.len());
        let short = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }",
            &[0u8; 16],
        );
        let r = scan_npy(&short, &l, &Policy::default(), &Limits::default());
        assert_eq!(r.findings[0].rule_id, "AISEC-PICKLE-013");
    }
}
