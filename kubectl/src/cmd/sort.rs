//! `get --sort-by`: upstream's `RuntimeSort` and `TableSorter` — the JSONPath field of each
//! object (a Table row's embedded object), compared as numbers, as quantities when both are
//! quantities, else as strings; objects without the field first.

use std::cmp::Ordering;

use api::quantity::Quantity;
use serde_json::Value;

use crate::error::Error;

/// The `--sort-by` field, parsed (or why it does not parse: upstream reports that only where
/// it sorts objects, and a lone Table's printer swallows it).
pub struct SortField {
    text: String,
    path: Result<jsonpath::JsonPath, String>,
}

impl SortField {
    /// Parses `{.metadata.name}`, `.metadata.name` or `metadata.name`.
    pub fn parse(field: &str) -> Self {
        let parsed = jsonpath::relaxed_expression(field).and_then(|text| {
            let path = jsonpath::JsonPath::parse(&text)?.allow_missing_keys(true);
            Ok((text, path))
        });
        match parsed {
            Ok((text, path)) => Self { text, path: Ok(path) },
            Err(error) => Self {
                text: field.to_string(),
                path: Err(error.to_string()),
            },
        }
    }

    /// The first value the field finds in `object`.
    fn key(&self, object: &Value) -> Result<Option<Value>, Error> {
        let path = self.path.as_ref().map_err(|e| Error::Message(e.clone()))?;
        let results = path.find_results(object).map_err(|e| Error::Message(e.to_string()))?;
        Ok(results
            .first()
            .and_then(|group| group.first())
            .map(|v| v.clone().into_owned()))
    }

    /// Sorts objects by the field; an error when no object has it.
    pub fn sort_objects(&self, objects: &mut Vec<Value>) -> Result<(), Error> {
        let keys = objects.iter().map(|o| self.key(o)).collect::<Result<Vec<_>, _>>()?;
        self.sort_by_keys(objects, keys)
    }

    /// Sorts a Table's rows (when it has several) by the field of their embedded objects.
    /// `false` when no row has the field: upstream's printer then prints nothing of the
    /// table, and says nothing about it.
    pub fn sort_table(&self, table: &mut Value) -> Result<bool, Error> {
        let Some(rows) = table["rows"].as_array_mut().filter(|rows| rows.len() > 1) else {
            return Ok(true);
        };
        if self.path.is_err() {
            return Ok(false);
        }
        let keys = rows
            .iter()
            .map(|row| self.key(&row["object"]))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.iter().all(Option::is_none) {
            return Ok(false);
        }
        self.sort_by_keys(rows, keys)?;
        Ok(true)
    }

    /// Upstream first sorts the responses themselves (one per listed type or named object)
    /// when there are several: the field must then be found on a Table object.
    pub fn check_tables(&self, fetched: &[Vec<Value>]) -> Result<(), Error> {
        let tables: Vec<&Value> = fetched.iter().flatten().collect();
        if tables.len() < 2 {
            return Ok(());
        }
        for table in tables {
            if self.key(table)?.is_some() {
                return Ok(());
            }
        }
        Err(self.not_found())
    }

    fn not_found(&self) -> Error {
        Error::Message(format!(
            "couldn't find any field with path {} in the list of objects",
            crate::cmd::objects::go_quote(&self.text)
        ))
    }

    fn sort_by_keys(&self, items: &mut Vec<Value>, keys: Vec<Option<Value>>) -> Result<(), Error> {
        if keys.iter().all(Option::is_none) {
            return Err(self.not_found());
        }
        let mut paired: Vec<(Option<Value>, Value)> = keys.into_iter().zip(items.drain(..)).collect();
        // Go's sort.Sort orders short lists by insertion sort: a stable order with upstream's
        // `Less`, under which an object without the field is less than any other.
        for i in 1..paired.len() {
            let mut j = i;
            while j > 0 && less(&paired[j].0, &paired[j - 1].0)? {
                paired.swap(j, j - 1);
                j -= 1;
            }
        }
        items.extend(paired.into_iter().map(|(_, item)| item));
        Ok(())
    }
}

fn less(a: &Option<Value>, b: &Option<Value>) -> Result<bool, Error> {
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(a.is_none());
    };
    let unsortable = |v: &Value| Error::Message(format!("unsortable type: {}", go_type(v)));
    match (a, b) {
        (Value::Null, Value::Null) => Ok(false),
        (Value::Null, _) => Ok(true),
        (_, Value::Null) => Ok(false),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Ok(x < y),
            (None, None) => Ok(x.as_f64() < y.as_f64()),
            _ => Err(Error::Message("unsortable interface: interface".into())),
        },
        (Value::String(x), Value::String(y)) => match (Quantity::parse(x), Quantity::parse(y)) {
            (Some(qx), Some(qy)) => Ok(qx.partial_cmp(&qy) == Some(Ordering::Less)),
            _ => Ok(x < y),
        },
        (Value::String(_) | Value::Number(_), _) => Err(Error::Message("unsortable interface: interface".into())),
        (other, _) => Err(unsortable(other)),
    }
}

fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "bool",
        Value::Object(_) => "map[string]interface {}",
        Value::Array(_) => "[]interface {}",
        Value::String(_) => "string",
        Value::Number(_) => "int64",
        Value::Null => "<nil>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_numbers_and_missing_fields() {
        let field = SortField::parse("{.v}");
        let mut objects = vec![json!({"v": "1Gi"}), json!({"v": "500Mi"}), json!({}), json!({"v": "2"})];
        field.sort_objects(&mut objects).unwrap();
        assert_eq!(
            objects,
            [json!({}), json!({"v": "2"}), json!({"v": "500Mi"}), json!({"v": "1Gi"})]
        );
        let mut numbers = vec![json!({"v": 10}), json!({"v": 9})];
        field.sort_objects(&mut numbers).unwrap();
        assert_eq!(numbers[0]["v"], 9);
        let missing = SortField::parse("x.y").sort_objects(&mut numbers).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "couldn't find any field with path \"{.x.y}\" in the list of objects"
        );
    }
}
