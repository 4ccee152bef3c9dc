//! The IDX file format of MNIST and Fashion-MNIST (gzip-compressed or raw).
//!
//! An IDX file starts with a magic number `0x00 0x00 <type> <ndims>`, then one big-endian `u32`
//! per dimension, then the data. Only unsigned bytes (`type = 0x08`) are used by these datasets.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// The contents of an IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file; a name ending in `.gz` is decompressed first.
pub fn read(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupt(path, format!("gzip stream: {e}")))?;
        out
    } else {
        bytes
    };
    parse(&bytes).map_err(|reason| Error::corrupt(path, reason))
}

/// Parses the bytes of an (uncompressed) IDX file.
pub fn parse(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "{} bytes is too short for an IDX header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err("bad magic number (not an IDX file)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type {:#04x} is not unsigned byte (0x08)",
            bytes[2]
        ));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err("truncated header".into());
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected: usize = dims.iter().product();
    let found = bytes.len() - header;
    if found != expected {
        return Err(format!(
            "dimensions {dims:?} need {expected} data bytes but the file has {found}"
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Encodes an IDX file of unsigned bytes (used by tests and tools that write IDX data).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let bytes = encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(bytes[..8], [0, 0, 8, 2, 0, 0, 0, 2]);
        let arr = parse(&bytes).expect("valid");
        assert_eq!(arr.dims, vec![2, 3]);
        assert_eq!(arr.data, vec![1, 2, 3, 4, 5, 6]);
        assert!(
            parse(&bytes[..bytes.len() - 1])
                .unwrap_err()
                .contains("need 6")
        );
        assert!(parse(&[1, 0, 8, 1]).unwrap_err().contains("magic"));
        assert!(
            parse(&[0, 0, 0x0d, 1])
                .unwrap_err()
                .contains("element type")
        );
        assert!(parse(&[0, 0, 8, 2, 0, 0]).unwrap_err().contains("header"));
    }
}
