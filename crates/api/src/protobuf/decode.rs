//! Schema-driven conversion of one protobuf message into the JSON client-go would have sent
//! for the same Go object: field names from the schema, zero scalars dropped unless the Go
//! field is a pointer or lacks `omitempty`, embedded (`,inline`) structs flattened, and the
//! apimachinery types with their own JSON form (times, quantities, int-or-strings, raw JSON).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use super::ProtobufError;
use super::model::{Card, Field, Message, Special, Ty};
use super::schema::MESSAGES;
use super::wire::{Reader, Value as Wire};

/// How deep messages may nest (CRD schemas are recursive); deeper input is rejected rather
/// than allowed to exhaust the stack.
pub(crate) const MAX_DEPTH: u32 = 200;

/// `time.Time{}.Unix()` in Go: the zero time, which Go encodes as JSON `null`.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

fn message_def(index: u16) -> Result<&'static Message, ProtobufError> {
    MESSAGES
        .get(usize::from(index))
        .ok_or_else(|| ProtobufError::Malformed(format!("schema has no message {index}")))
}

/// Decodes `data` as message `index` into its JSON value.
pub(crate) fn message(data: &[u8], index: u16, depth: u32) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let def = message_def(index)?;
    match def.special {
        Special::None => {
            let mut object = Map::new();
            fields_into(&mut object, data, def, depth)?;
            Ok(Value::Object(object))
        }
        special => special_value(special, data, def, depth),
    }
}

/// Decodes the fields of `data` (a `def` message) into `object`.
fn fields_into(object: &mut Map<String, Value>, data: &[u8], def: &Message, depth: u32) -> Result<(), ProtobufError> {
    let mut reader = Reader::new(data);
    while let Some((tag, value)) = reader.field()? {
        let Some(field) = def.field(tag) else {
            continue; // unknown fields are skipped, as Go's generated unmarshallers do
        };
        let context = || format!("{}.{}", def.name, display_name(field));
        match field.card {
            Card::One => match field.ty {
                Ty::Msg(index) => {
                    let bytes = expect_len(value, &context)?;
                    if field.json.is_empty() {
                        fields_into(object, bytes, message_def(index)?, depth + 1)?;
                    } else {
                        let decoded = message(bytes, index, depth + 1)?;
                        merge_into(object, field.json, decoded);
                    }
                }
                ty => {
                    let decoded = scalar(ty, value, &context)?;
                    if !field.zero && is_zero(&decoded) {
                        object.remove(field.json);
                    } else {
                        object.insert(field.json.to_string(), decoded);
                    }
                }
            },
            Card::Many => {
                let items = repeated(field, value, depth, &context)?;
                let slot = object
                    .entry(field.json.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(array) = slot {
                    array.extend(items);
                } else {
                    *slot = Value::Array(items);
                }
            }
            Card::Map => {
                let (key, entry) = map_entry(field, value, depth, &context)?;
                let slot = object
                    .entry(field.json.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = slot {
                    map.insert(key, entry);
                } else {
                    *slot = Value::Object(Map::from_iter([(key, entry)]));
                }
            }
        }
    }
    Ok(())
}

fn display_name(field: &Field) -> String {
    if field.json.is_empty() {
        format!("<inline {}>", field.tag)
    } else {
        field.json.to_string()
    }
}

fn wrong_wire_type(value: Wire<'_>, context: &dyn Fn() -> String) -> ProtobufError {
    ProtobufError::Malformed(format!(
        "field {} has the unexpected wire type {}",
        context(),
        value.wire_type()
    ))
}

fn expect_len<'a>(value: Wire<'a>, context: &dyn Fn() -> String) -> Result<&'a [u8], ProtobufError> {
    match value {
        Wire::Len(bytes) => Ok(bytes),
        other => Err(wrong_wire_type(other, context)),
    }
}

/// A protobuf singular message field seen twice merges into the first (Go's generated
/// unmarshallers decode into the existing struct): objects merge key by key, arrays append.
fn merge_into(object: &mut Map<String, Value>, key: &str, value: Value) {
    match object.get_mut(key) {
        Some(existing) => merge(existing, value),
        None => {
            object.insert(key.to_string(), value);
        }
    }
}

fn merge(existing: &mut Value, value: Value) {
    match (existing, value) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in new {
                merge_into(old, &key, value);
            }
        }
        (Value::Array(old), Value::Array(new)) => old.extend(new),
        (slot, value) => *slot = value,
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn string(bytes: &[u8]) -> String {
    // Go does not validate proto strings; its JSON encoder replaces invalid UTF-8 with U+FFFD.
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scalar value of type `ty` (never [`Ty::Msg`]).
fn scalar(ty: Ty, value: Wire<'_>, context: &dyn Fn() -> String) -> Result<Value, ProtobufError> {
    Ok(match (ty, value) {
        (Ty::Str, Wire::Len(bytes)) => Value::String(string(bytes)),
        (Ty::Bytes, Wire::Len(bytes)) => Value::String(BASE64.encode(bytes)),
        (Ty::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // Go truncates an over-long int32 varint to its low 32 bits.
        (Ty::I32, Wire::Varint(v)) => Value::from(v as i32),
        (Ty::I64, Wire::Varint(v)) => Value::from(v as i64),
        (Ty::F64, Wire::Fixed64(bits)) => float(f64::from_bits(bits), context)?,
        (_, other) => return Err(wrong_wire_type(other, context)),
    })
}

/// A JSON number as Go's encoder writes a float64: integral values without a fraction.
fn float(x: f64, context: &dyn Fn() -> String) -> Result<Value, ProtobufError> {
    if !x.is_finite() {
        return Err(ProtobufError::InvalidValue(format!(
            "{}: {x} is not a JSON number",
            context()
        )));
    }
    if x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        return Ok(Value::from(x as i64));
    }
    Ok(Number::from_f64(x).map_or(Value::Null, Value::Number))
}

/// The elements one occurrence of a repeated field contributes (several for a packed scalar).
fn repeated(
    field: &Field,
    value: Wire<'_>,
    depth: u32,
    context: &dyn Fn() -> String,
) -> Result<Vec<Value>, ProtobufError> {
    match (field.ty, value) {
        (Ty::Msg(index), Wire::Len(bytes)) => Ok(vec![message(bytes, index, depth + 1)?]),
        (Ty::Str | Ty::Bytes, value) => Ok(vec![scalar(field.ty, value, context)?]),
        (Ty::Bool | Ty::I32 | Ty::I64, Wire::Len(packed)) => {
            let mut reader = Reader::new(packed);
            let mut items = Vec::new();
            while !reader.at_end() {
                items.push(scalar(field.ty, Wire::Varint(reader.varint()?), context)?);
            }
            Ok(items)
        }
        (Ty::F64, Wire::Len(packed)) => {
            if packed.len() % 8 != 0 {
                return Err(ProtobufError::Malformed(format!(
                    "packed doubles of {} are truncated",
                    context()
                )));
            }
            packed
                .chunks_exact(8)
                .map(|chunk| {
                    let bits = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                    float(f64::from_bits(bits), context)
                })
                .collect()
        }
        (_, value) => Ok(vec![scalar(field.ty, value, context)?]),
    }
}

/// One map entry (key = 1, value = 2). A missing key or value is its zero value.
fn map_entry(
    field: &Field,
    value: Wire<'_>,
    depth: u32,
    context: &dyn Fn() -> String,
) -> Result<(String, Value), ProtobufError> {
    let bytes = expect_len(value, context)?;
    let mut reader = Reader::new(bytes);
    let mut key = String::new();
    let mut entry: Option<Value> = None;
    while let Some((tag, value)) = reader.field()? {
        match tag {
            1 => key = string(expect_len(value, context)?),
            2 => {
                entry = Some(match field.ty {
                    Ty::Msg(index) => message(expect_len(value, context)?, index, depth + 1)?,
                    ty => scalar(ty, value, context)?,
                })
            }
            _ => {}
        }
    }
    let entry = match entry {
        Some(entry) => entry,
        None => match field.ty {
            Ty::Msg(index) => message(&[], index, depth + 1)?,
            Ty::Str | Ty::Bytes => Value::String(String::new()),
            ty => scalar(ty, Wire::Varint(0), context)?,
        },
    };
    Ok((key, entry))
}

/// The fields of a special message by tag (the last occurrence wins; repeated ones collect).
struct Raw<'a> {
    fields: Vec<(u32, Wire<'a>)>,
}

impl<'a> Raw<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, ProtobufError> {
        let mut reader = Reader::new(data);
        let mut fields = Vec::new();
        while let Some(field) = reader.field()? {
            fields.push(field);
        }
        Ok(Raw { fields })
    }

    fn last(&self, tag: u32) -> Option<Wire<'a>> {
        self.fields.iter().rev().find(|(t, _)| *t == tag).map(|(_, v)| *v)
    }

    fn all(&self, tag: u32) -> impl Iterator<Item = Wire<'a>> + '_ {
        self.fields.iter().filter(move |(t, _)| *t == tag).map(|(_, v)| *v)
    }

    fn int(&self, tag: u32, name: &str) -> Result<i64, ProtobufError> {
        match self.last(tag) {
            None => Ok(0),
            Some(Wire::Varint(v)) => Ok(v as i64),
            Some(other) => Err(wrong_wire_type(other, &|| name.to_string())),
        }
    }

    fn bytes(&self, tag: u32, name: &str) -> Result<Option<&'a [u8]>, ProtobufError> {
        match self.last(tag) {
            None => Ok(None),
            Some(Wire::Len(bytes)) => Ok(Some(bytes)),
            Some(other) => Err(wrong_wire_type(other, &|| name.to_string())),
        }
    }
}

/// The message index of field `tag` of `def` (a special message's sub-message).
fn sub_message(def: &Message, tag: u32) -> Result<u16, ProtobufError> {
    match def.field(tag).map(|f| f.ty) {
        Some(Ty::Msg(index)) => Ok(index),
        _ => Err(ProtobufError::Malformed(format!(
            "schema of {} lacks message field {tag}",
            def.name
        ))),
    }
}

fn special_value(special: Special, data: &[u8], def: &Message, depth: u32) -> Result<Value, ProtobufError> {
    let raw = Raw::parse(data)?;
    let name = def.name;
    match special {
        Special::None => unreachable_none(name),
        Special::Time | Special::MicroTime => {
            if data.is_empty() {
                return Ok(Value::Null);
            }
            let seconds = raw.int(1, name)?;
            let nanos = raw.int(2, name)? as i32;
            if special == Special::Time {
                // Go's Time keeps whole seconds only when decoding protobuf.
                time(seconds, 0, false)
            } else {
                time(seconds, nanos, true)
            }
        }
        Special::Duration => Ok(Value::String(super::go_duration(raw.int(1, name)?))),
        Special::Quantity => match raw.bytes(1, name)? {
            Some(bytes) => Ok(Value::String(string(bytes))),
            None => Err(ProtobufError::InvalidValue(format!(
                "{name}: a quantity without its string"
            ))),
        },
        Special::IntOrString => match raw.int(1, name)? {
            0 => Ok(Value::from(raw.int(2, name)? as i32)),
            1 => Ok(Value::String(string(raw.bytes(3, name)?.unwrap_or_default()))),
            other => Err(ProtobufError::InvalidValue(format!("{name}: impossible type {other}"))),
        },
        Special::Raw => match raw.bytes(1, name)? {
            None | Some([]) => Ok(Value::Null),
            Some(bytes) if bytes.starts_with(&super::MAGIC) => super::envelope(bytes, depth + 1),
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| ProtobufError::InvalidValue(format!("{name}: the embedded JSON is invalid: {e}"))),
        },
        Special::PropsOrArray => {
            let schemas: Vec<Value> = raw
                .all(2)
                .map(|v| message(expect_len(v, &|| name.into())?, sub_message(def, 2)?, depth + 1))
                .collect::<Result<_, _>>()?;
            if !schemas.is_empty() {
                return Ok(Value::Array(schemas));
            }
            match raw.bytes(1, name)? {
                Some(bytes) => message(bytes, sub_message(def, 1)?, depth + 1),
                None => Ok(Value::Null),
            }
        }
        Special::PropsOrBool => match raw.bytes(2, name)? {
            Some(bytes) => message(bytes, sub_message(def, 2)?, depth + 1),
            None => Ok(Value::Bool(raw.int(1, name)? != 0)),
        },
        Special::PropsOrStringArray => {
            let strings: Vec<Value> = raw
                .all(2)
                .map(|v| expect_len(v, &|| name.into()).map(|b| Value::String(string(b))))
                .collect::<Result<_, _>>()?;
            if !strings.is_empty() {
                return Ok(Value::Array(strings));
            }
            match raw.bytes(1, name)? {
                Some(bytes) => message(bytes, sub_message(def, 1)?, depth + 1),
                None => Ok(Value::Null),
            }
        }
    }
}

fn unreachable_none(name: &str) -> Result<Value, ProtobufError> {
    Err(ProtobufError::Malformed(format!("{name} is not a special message")))
}

/// A Go `metav1.Time` / `MicroTime` as JSON: `null` for the zero time, else RFC 3339 in UTC.
fn time(seconds: i64, nanos: i32, micro: bool) -> Result<Value, ProtobufError> {
    // Go's time.Unix normalises nanoseconds outside [0, 1e9) into the seconds.
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let seconds = total.div_euclid(1_000_000_000);
    let nanos = total.rem_euclid(1_000_000_000) as i64;
    if seconds == i128::from(GO_ZERO_TIME_SECONDS) && nanos == 0 {
        return Ok(Value::Null);
    }
    let out_of_range = || ProtobufError::InvalidValue(format!("the time {seconds}s is out of range"));
    let seconds = i64::try_from(seconds).map_err(|_| out_of_range())?;
    let timestamp = jiff::Timestamp::from_second(seconds).map_err(|_| out_of_range())?;
    let mut text = timestamp.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if micro {
        text.push_str(&format!(".{:06}", nanos / 1000));
    }
    text.push('Z');
    Ok(Value::String(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_go_does() {
        assert_eq!(time(1_767_323_045, 0, false).unwrap(), "2026-01-02T03:04:05Z");
        assert_eq!(
            time(1_767_323_045, 123_456_789, true).unwrap(),
            "2026-01-02T03:04:05.123456Z"
        );
        assert_eq!(time(0, 0, false).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(time(GO_ZERO_TIME_SECONDS, 0, false).unwrap(), Value::Null);
        assert_eq!(time(10, -1, true).unwrap(), "1970-01-01T00:00:09.999999Z");
        assert!(time(i64::MAX, 0, false).is_err());
    }

    #[test]
    fn floats_are_written_like_go() {
        let ctx = || String::new();
        assert_eq!(float(5.0, &ctx).unwrap().to_string(), "5");
        assert_eq!(float(0.5, &ctx).unwrap().to_string(), "0.5");
        assert!(float(f64::NAN, &ctx).is_err());
    }

    #[test]
    fn zero_values() {
        assert!(is_zero(&Value::from("")));
        assert!(is_zero(&Value::from(0)));
        assert!(is_zero(&Value::from(false)));
        assert!(!is_zero(&Value::from("x")));
        assert!(!is_zero(&Value::Null));
    }
}
