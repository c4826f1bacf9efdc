//! SPDY/3.1 frames, byte by byte (all integers big-endian):
//!
//! * control frame: `1` bit, 15-bit version (3), 16-bit type, 8-bit flags, 24-bit length, payload;
//! * data frame: `0` bit, 31-bit stream id, 8-bit flags (`FIN`), 24-bit length, payload.
//!
//! Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams with the SPDY/3 preset
//! dictionary and one compression context per direction for the whole connection, so a
//! [`Encoder`] and a [`Decoder`] each live as long as their connection and see every frame
//! in order.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::Error;
use crate::dictionary::DICTIONARY;

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// Data or control frame flag: the sender's last frame on this stream.
pub const FLAG_FIN: u8 = 0x01;
/// SYN_STREAM flag: the receiver must not send on this stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// The largest payload a frame can carry (24-bit length).
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;
/// The largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 1 << 20;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes.
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
}

/// Name/value pairs of a header block, in order; several values of one name are
/// NUL-separated in one value.
pub type Headers = Vec<(String, String)>;

/// One frame, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_id: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// (flags, id, value) entries.
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type we do not know (CREDENTIAL, NOOP): skipped.
    Unknown {
        kind: u16,
    },
}

/// Turns frames into bytes; owns the connection's outgoing header compression context.
pub struct Encoder {
    deflate: Compress,
}

impl Encoder {
    pub fn new() -> Result<Encoder, Error> {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(&DICTIONARY)
            .map_err(|e| Error::Compression(e.to_string()))?;
        Ok(Encoder { deflate })
    }

    /// Appends `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), Error> {
        let mut payload = BytesMut::new();
        let (kind, flags) = match frame {
            Frame::Data { stream_id, flags, data } => {
                if data.len() > MAX_PAYLOAD {
                    return Err(Error::TooLarge(data.len()));
                }
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
                out.put_slice(data);
                return Ok(());
            }
            Frame::SynStream {
                stream_id,
                associated_id,
                priority,
                flags,
                headers,
            } => {
                payload.put_u32(stream_id & 0x7fff_ffff);
                payload.put_u32(associated_id & 0x7fff_ffff);
                payload.put_u8((priority & 0x07) << 5);
                payload.put_u8(0); // slot
                self.header_block(headers, &mut payload)?;
                (TYPE_SYN_STREAM, *flags)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                payload.put_u32(stream_id & 0x7fff_ffff);
                self.header_block(headers, &mut payload)?;
                (TYPE_SYN_REPLY, *flags)
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                payload.put_u32(stream_id & 0x7fff_ffff);
                self.header_block(headers, &mut payload)?;
                (TYPE_HEADERS, *flags)
            }
            Frame::RstStream { stream_id, status } => {
                payload.put_u32(stream_id & 0x7fff_ffff);
                payload.put_u32(*status);
                (TYPE_RST_STREAM, 0)
            }
            Frame::Settings { flags, entries } => {
                payload.put_u32(entries.len() as u32);
                for (entry_flags, id, value) in entries {
                    payload.put_u32((u32::from(*entry_flags) << 24) | (id & 0x00ff_ffff));
                    payload.put_u32(*value);
                }
                (TYPE_SETTINGS, *flags)
            }
            Frame::Ping { id } => {
                payload.put_u32(*id);
                (TYPE_PING, 0)
            }
            Frame::GoAway { last_good_id, status } => {
                payload.put_u32(last_good_id & 0x7fff_ffff);
                payload.put_u32(*status);
                (TYPE_GOAWAY, 0)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                payload.put_u32(stream_id & 0x7fff_ffff);
                payload.put_u32(delta & 0x7fff_ffff);
                (TYPE_WINDOW_UPDATE, 0)
            }
            Frame::Unknown { kind } => return Err(Error::Unencodable(*kind)),
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::TooLarge(payload.len()));
        }
        out.put_u16(0x8000 | VERSION);
        out.put_u16(kind);
        out.put_u32((u32::from(flags) << 24) | payload.len() as u32);
        out.put_slice(&payload);
        Ok(())
    }

    /// Serializes and compresses `headers` (a sync flush ends the block).
    fn header_block(&mut self, headers: &Headers, out: &mut BytesMut) -> Result<(), Error> {
        let mut raw = Vec::new();
        raw.put_u32(headers.len() as u32);
        for (name, value) in headers {
            raw.put_u32(name.len() as u32);
            raw.put_slice(name.to_ascii_lowercase().as_bytes());
            raw.put_u32(value.len() as u32);
            raw.put_slice(value.as_bytes());
        }
        let mut compressed = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if compressed.capacity() - compressed.len() < 64 {
                compressed.reserve(256);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut compressed, FlushCompress::Sync)
                .map_err(|e| Error::Compression(e.to_string()))?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            // A sync flush is complete once the output buffer was not filled up.
            if input.is_empty() && compressed.len() < compressed.capacity() {
                break;
            }
        }
        out.put_slice(&compressed);
        Ok(())
    }
}

/// Turns bytes into frames; owns the connection's incoming header decompression context.
pub struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            inflate: Decompress::new(true),
        }
    }

    /// Takes one whole frame off the front of `buf`, or `None` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let length = (u32::from_be_bytes([0, buf[5], buf[6], buf[7]])) as usize;
        if buf.len() < 8 + length {
            buf.reserve(8 + length - buf.len());
            return Ok(None);
        }
        let head = buf.split_to(8);
        let mut payload = buf.split_to(length).freeze();
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream_id,
                flags,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, payload: &Bytes| {
            if payload.len() < n {
                Err(Error::Short { kind, length })
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            TYPE_SYN_STREAM => {
                need(10, &payload)?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let associated_id = payload.get_u32() & 0x7fff_ffff;
                let priority = payload.get_u8() >> 5;
                let _slot = payload.get_u8();
                Frame::SynStream {
                    stream_id,
                    associated_id,
                    priority,
                    flags,
                    headers: self.header_block(&payload)?,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(4, &payload)?;
                let stream_id = payload.get_u32() & 0x7fff_ffff;
                let headers = self.header_block(&payload)?;
                if kind == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                need(8, &payload)?;
                Frame::RstStream {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            TYPE_SETTINGS => {
                need(4, &payload)?;
                let count = payload.get_u32() as usize;
                if payload.len() / 8 < count {
                    return Err(Error::Short { kind, length });
                }
                let entries = (0..count)
                    .map(|_| {
                        let word = payload.get_u32();
                        ((word >> 24) as u8, word & 0x00ff_ffff, payload.get_u32())
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            TYPE_PING => {
                need(4, &payload)?;
                Frame::Ping { id: payload.get_u32() }
            }
            TYPE_GOAWAY => {
                need(4, &payload)?;
                let last_good_id = payload.get_u32() & 0x7fff_ffff;
                // SPDY/3 adds a status; be lenient with SPDY/2-sized frames.
                let status = if payload.len() >= 4 { payload.get_u32() } else { 0 };
                Frame::GoAway { last_good_id, status }
            }
            TYPE_WINDOW_UPDATE => {
                need(8, &payload)?;
                Frame::WindowUpdate {
                    stream_id: payload.get_u32() & 0x7fff_ffff,
                    delta: payload.get_u32() & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown { kind: other },
        };
        Ok(Some(frame))
    }

    /// Decompresses and parses a header block.
    fn header_block(&mut self, compressed: &[u8]) -> Result<Headers, Error> {
        let mut raw = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut input = compressed;
        loop {
            if raw.capacity() - raw.len() < 256 {
                if raw.len() >= MAX_HEADER_BLOCK {
                    return Err(bad_block("header block too large"));
                }
                raw.reserve(4096);
            }
            let (before, produced) = (self.inflate.total_in(), raw.len());
            let result = self.inflate.decompress_vec(input, &mut raw, FlushDecompress::Sync);
            let consumed = (self.inflate.total_in() - before) as usize;
            input = &input[consumed..];
            if consumed == 0 && raw.len() == produced && !input.is_empty() && result.is_ok() {
                return Err(bad_block("the header block does not decompress"));
            }
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(error) if error.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| Error::Compression(e.to_string()))?;
                    continue;
                }
                Err(error) => return Err(Error::Compression(error.to_string())),
            }
            if input.is_empty() && raw.len() < raw.capacity() {
                break;
            }
        }
        parse_headers(&raw)
    }
}

fn bad_block(what: &str) -> Error {
    Error::HeaderBlock(what.to_string())
}

/// Parses a decompressed header block.
fn parse_headers(mut raw: &[u8]) -> Result<Headers, Error> {
    let bad = bad_block;
    let take = |raw: &mut &[u8]| -> Result<String, Error> {
        if raw.len() < 4 {
            return Err(bad("truncated length"));
        }
        let n = raw.get_u32() as usize;
        if raw.len() < n {
            return Err(bad("truncated string"));
        }
        let text = String::from_utf8_lossy(&raw[..n]).into_owned();
        raw.advance(n);
        Ok(text)
    };
    if raw.len() < 4 {
        return Err(bad("missing pair count"));
    }
    let count = raw.get_u32() as usize;
    // Each pair takes at least 8 bytes: no allocation beyond what the input can hold.
    let mut headers = Vec::with_capacity(count.min(raw.len() / 8));
    for _ in 0..count {
        let name = take(&mut raw)?;
        let value = take(&mut raw)?;
        headers.push((name, value));
    }
    Ok(headers)
}

/// The first value of header `name` (names compare case-insensitively).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Headers {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn round_trip(frames: &[Frame]) {
        let (mut encoder, mut decoder) = (Encoder::new().unwrap(), Decoder::new());
        let mut wire = BytesMut::new();
        for frame in frames {
            encoder.encode(frame, &mut wire).unwrap();
        }
        // Byte by byte, as a WebSocket tunnel may deliver it.
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn every_frame_type_round_trips() {
        round_trip(&[
            Frame::SynStream {
                stream_id: 1,
                associated_id: 0,
                priority: 3,
                flags: FLAG_FIN,
                headers: pairs(&[("streamtype", "error"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Headers::new(),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"HTTP/1.1 200 OK\r\n"),
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 4, 100), (1, 7, 65536)],
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good_id: 5,
                status: 0,
            },
            Frame::Headers {
                stream_id: 5,
                flags: 0,
                headers: pairs(&[("a", "1\u{0}2")]),
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 1 << 20,
            },
        ]);
    }

    #[test]
    fn header_compression_context_spans_blocks() {
        let many: Vec<Frame> = (0..50)
            .map(|i| Frame::SynStream {
                stream_id: 2 * i + 1,
                associated_id: 0,
                priority: 0,
                flags: 0,
                headers: pairs(&[("streamtype", "data"), ("port", "80"), ("requestid", &i.to_string())]),
            })
            .collect();
        round_trip(&many);
        // A large header block needs several output buffers either way.
        let big = "x".repeat(100_000);
        round_trip(&[Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: pairs(&[("big", &big), ("small", "y")]),
        }]);
    }

    #[test]
    fn control_frame_layout_is_the_specs() {
        let mut encoder = Encoder::new().unwrap();
        let mut wire = BytesMut::new();
        encoder.encode(&Frame::Ping { id: 1 }, &mut wire).unwrap();
        encoder
            .encode(
                &Frame::RstStream {
                    stream_id: 5,
                    status: rst::CANCEL,
                },
                &mut wire,
            )
            .unwrap();
        encoder
            .encode(
                &Frame::Data {
                    stream_id: 3,
                    flags: FLAG_FIN,
                    data: Bytes::from_static(b"HT"),
                },
                &mut wire,
            )
            .unwrap();
        assert_eq!(
            wire.to_vec(),
            hex("8003000600000004000000018003000300000008000000050000000500000003010000024854")
        );
        encoder
            .encode(
                &Frame::SynReply {
                    stream_id: 1,
                    flags: 0,
                    headers: Headers::new(),
                },
                &mut wire,
            )
            .unwrap();
        // zlib header with FDICT and the SPDY dictionary's id, as upstream's SYN_REPLY (`78 bb`).
        assert_eq!(&wire[38..50], &hex("800300020000001400000001")[..]);
        assert_eq!(&wire[50..56], &hex("78bbe3c6a7c2")[..]);
    }

    /// kubectl's first two SYN_STREAMs of a port-forward connection, compressed by C zlib
    /// (level 9, SPDY dictionary, one context) as Go's spdystream does; the first one's
    /// prefix is the captured `80 03 00 01 00 00 00 3d … 78 f9 e3 c6 a7 c2 02 25`.
    #[test]
    fn decodes_kubectls_syn_streams() {
        let mut wire = BytesMut::from(
            &hex(concat!(
                "800300010000003d0000000100000000000078f9e3c6a7c202253a48f95b044eea16061606409ab3",
                "08125f99a074cc68004e892545a989b9d0c2863515141500000000ffff",
                "800300010000001600000003000000000000225333a8a44a04000000ffff",
            ))[..],
        );
        let mut decoder = Decoder::new();
        let first = decoder.decode(&mut wire).unwrap().unwrap();
        let second = decoder.decode(&mut wire).unwrap().unwrap();
        assert!(wire.is_empty());
        let Frame::SynStream {
            stream_id: 1, headers, ..
        } = first
        else {
            panic!("{first:?}");
        };
        assert_eq!(header(&headers, "streamType"), Some("error"));
        assert_eq!(header(&headers, "port"), Some("8080"));
        assert_eq!(header(&headers, "requestID"), Some("0"));
        let Frame::SynStream {
            stream_id: 3, headers, ..
        } = second
        else {
            panic!("{second:?}");
        };
        assert_eq!(header(&headers, "streamtype"), Some("data"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut decoder = Decoder::new();
        let mut wire = BytesMut::from(&hex("8002000100000000")[..]);
        assert!(matches!(decoder.decode(&mut wire), Err(Error::Version(2))));
        let mut decoder = Decoder::new();
        let mut wire = BytesMut::from(&hex("80030001000000020000")[..]);
        assert!(matches!(decoder.decode(&mut wire), Err(Error::Short { .. })));
        let mut decoder = Decoder::new();
        let mut wire = BytesMut::from(&hex("800300020000000800000001deadbeef")[..]);
        assert!(decoder.decode(&mut wire).is_err());
        assert!(parse_headers(&hex("00000002000000ff61")).is_err());
        assert!(parse_headers(&hex("ffffffff")).is_err());
        // Unknown control types are skipped, incomplete frames wait for more bytes.
        let mut wire = BytesMut::from(&hex("8003000a00000000800300")[..]);
        assert_eq!(decoder.decode(&mut wire).unwrap(), Some(Frame::Unknown { kind: 10 }));
        assert_eq!(decoder.decode(&mut wire).unwrap(), None);
    }
}
