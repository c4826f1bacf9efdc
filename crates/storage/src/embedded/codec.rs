//! Values as stored in the `kv` table: zstd-compressed when that makes them smaller (objects
//! are JSON or protobuf with many repeated field names), as they came otherwise. A stored value
//! that begins with the zstd frame magic is always a zstd frame (a value that itself begins
//! with the magic is compressed whatever its size), so rows written before compression existed
//! read back unchanged. Compression runs on the writer thread and decompression on readers;
//! each thread keeps its own zstd context (creating one per value costs more than the work).

use std::borrow::Cow;
use std::cell::RefCell;

use bytes::Bytes;

use crate::StorageError;

/// The first bytes of every zstd frame.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Smaller values are stored as they are (a frame's header and the lost page slack eat the gain).
const MIN_COMPRESSED: usize = 128;
/// zstd's fastest regular level: most of the gain on small JSON at a few µs per KiB.
const LEVEL: i32 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The bytes to store for `value`.
pub(super) fn encode(value: &[u8]) -> Result<Cow<'_, [u8]>, StorageError> {
    let must = value.starts_with(&MAGIC);
    if value.len() < MIN_COMPRESSED && !must {
        return Ok(Cow::Borrowed(value));
    }
    let compressed = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(zstd::bulk::Compressor::new(LEVEL)?);
        }
        match cell.as_mut() {
            Some(compressor) => compressor.compress(value),
            None => Err(std::io::Error::other("no zstd context")),
        }
    });
    match compressed {
        Ok(frame) if must || frame.len() < value.len() => Ok(Cow::Owned(frame)),
        Ok(_) => Ok(Cow::Borrowed(value)),
        Err(error) if must => Err(StorageError::Internal(format!("compressing a value: {error}"))),
        Err(_) => Ok(Cow::Borrowed(value)),
    }
}

/// The value stored as `stored`.
pub(super) fn decode(stored: Vec<u8>) -> Result<Bytes, StorageError> {
    if !stored.starts_with(&MAGIC) {
        return Ok(Bytes::from(stored));
    }
    let size = zstd::zstd_safe::get_frame_content_size(&stored)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .ok_or_else(|| StorageError::Internal("a stored value's zstd frame has no content size".into()))?;
    DECOMPRESSOR
        .with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = Some(zstd::bulk::Decompressor::new()?);
            }
            match cell.as_mut() {
                Some(decompressor) => decompressor.decompress(&stored, size),
                None => Err(std::io::Error::other("no zstd context")),
            }
        })
        .map(Bytes::from)
        .map_err(|error| StorageError::Internal(format!("decompressing a stored value: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_compressed_only_when_smaller() {
        let json = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}"#.repeat(8);
        let stored = encode(&json).expect("encode");
        assert!(stored.len() < json.len() / 2, "{} of {}", stored.len(), json.len());
        assert_eq!(decode(stored.into_owned()).expect("decode"), Bytes::from(json.clone()));
        // Small values and incompressible ones are kept as they are.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        for raw in [b"{}".to_vec(), noise] {
            let kept = encode(&raw).expect("encode");
            assert!(matches!(kept, Cow::Borrowed(_)) || kept.len() < raw.len());
            assert_eq!(decode(kept.into_owned()).expect("decode"), Bytes::from(raw));
        }
        // A value that looks like a frame is always stored as one, so it reads back as it was.
        let tricky = [&MAGIC[..], b"not really zstd"].concat();
        let stored = encode(&tricky).expect("encode");
        assert_ne!(stored.as_ref(), tricky.as_slice());
        assert_eq!(decode(stored.into_owned()).expect("decode"), Bytes::from(tricky));
    }
}
