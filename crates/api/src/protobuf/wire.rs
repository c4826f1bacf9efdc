//! The protobuf wire format, read without allocation: varints, fixed-width numbers and
//! length-delimited fields. Every read is bounds-checked; malformed input is an error.

use super::ProtobufError;

/// Wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One field's value as it appears on the wire.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// No Kubernetes field is a 32-bit fixed or float; its bytes are skipped.
    Fixed32,
    Len(&'a [u8]),
}

impl Value<'_> {
    pub(crate) fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => VARINT,
            Value::Fixed64(_) => FIXED64,
            Value::Len(_) => LEN,
            Value::Fixed32 => FIXED32,
        }
    }
}

fn truncated(what: &str) -> ProtobufError {
    ProtobufError::Malformed(format!("truncated {what}"))
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(truncated("varint"));
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(ProtobufError::Malformed("varint overflows 64 bits".into()));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed("varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtobufError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return Err(truncated(what));
        };
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next field: its number and value, or `None` at the end of the message.
    pub(crate) fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, ProtobufError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(ProtobufError::Malformed(format!("invalid field number {number}")));
        }
        let number = number as u32;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => {
                let bytes = self.take(8, "fixed64")?;
                Value::Fixed64(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
            }
            LEN => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| truncated("length-delimited field"))?;
                Value::Len(self.take(len, "length-delimited field")?)
            }
            FIXED32 => {
                self.take(4, "fixed32")?;
                Value::Fixed32
            }
            3 | 4 => {
                return Err(ProtobufError::Malformed(format!(
                    "field {number} uses a group, which Kubernetes messages never contain"
                )));
            }
            other => {
                return Err(ProtobufError::Malformed(format!(
                    "field {number} has the invalid wire type {other}"
                )));
            }
        };
        Ok(Some((number, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_every_wire_type() {
        // 1: varint 300, 2: "hi", 3: fixed64 7, 4: fixed32 9
        let bytes = [
            0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x19, 7, 0, 0, 0, 0, 0, 0, 0, 0x25, 9, 0, 0, 0,
        ];
        let mut r = Reader::new(&bytes);
        assert!(matches!(r.field().unwrap(), Some((1, Value::Varint(300)))));
        assert!(matches!(r.field().unwrap(), Some((2, Value::Len(b"hi")))));
        assert!(matches!(r.field().unwrap(), Some((3, Value::Fixed64(7)))));
        assert!(matches!(r.field().unwrap(), Some((4, Value::Fixed32))));
        assert!(r.field().unwrap().is_none());
    }

    #[test]
    fn rejects_malformed_input() {
        for bytes in [
            &[0x08][..],                                                         // varint missing
            &[0x12, 0x05, b'a'],                                                 // length beyond the end
            &[0x0b],                                                             // group
            &[0x0e, 0],                                                          // wire type 6
            &[0x00, 0],                                                          // field number 0
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // overflow
            &[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // huge length
        ] {
            let mut r = Reader::new(bytes);
            assert!(r.field().is_err(), "{bytes:?}");
        }
    }
}
