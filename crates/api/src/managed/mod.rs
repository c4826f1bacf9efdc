//! Field ownership as server-side apply keeps it (structured-merge-diff v4 and apimachinery's
//! field manager): field sets and their FieldsV1 encoding ([`set`]), `metadata.managedFields`
//! entries, the bookkeeping of an `Update` (the writer takes the fields it changed), and
//! `Apply` (merge the applied configuration, drop what the applier no longer applies and
//! nobody else owns, refuse changes to fields other managers own unless forced).

pub mod set;
#[cfg(test)]
mod tests;
mod walk;

use serde_json::{Map, Value, json};

use crate::patch::{FieldMeta, PatchMeta};
pub use set::{FieldSet, path_string};
pub use walk::Comparison;

/// Bad managedFields or FieldsV1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedError {
    #[error("invalid FieldsV1: {0}")]
    Fields(String),
    #[error("invalid managedFields entry: {0}")]
    Entry(String),
}

/// The operation that produced a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    /// Empty for the main resource.
    pub subresource: String,
    pub fields: FieldSet,
}

/// Who is writing: the identity its entry is kept under.
#[derive(Clone, Debug)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub operation: Operation,
    pub api_version: &'a str,
    pub subresource: &'a str,
    /// The time recorded when the writer's fields change (RFC 3339).
    pub time: &'a str,
}

impl Entry {
    /// Whether `self` is the writer's entry: same manager, operation and subresource, and
    /// for updates the same apiVersion (upstream's manager identifier).
    fn is(&self, writer: &Writer) -> bool {
        self.manager == writer.manager
            && self.operation == writer.operation
            && self.subresource == writer.subresource
            && (self.operation == Operation::Apply || self.api_version == writer.api_version)
    }

    /// The manager as conflict messages name it: `"kubectl"`, `"x" using apps/v1`,
    /// `"x" with subresource "status" using v1`.
    pub fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation.as_str(),
            "apiVersion": self.api_version,
        });
        if let Some(time) = &self.time {
            entry["time"] = json!(time);
        }
        entry["fieldsType"] = json!("FieldsV1");
        entry["fieldsV1"] = self.fields.to_fields_v1();
        if !self.subresource.is_empty() {
            entry["subresource"] = json!(self.subresource);
        }
        entry
    }

    pub fn from_json(value: &Value) -> Result<Entry, ManagedError> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        let operation = match value.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => {
                return Err(ManagedError::Entry(format!(
                    "operation must be Apply or Update, got {other:?}"
                )));
            }
        };
        match value.get("fieldsType").and_then(Value::as_str) {
            Some("FieldsV1") | None => {}
            Some(other) => return Err(ManagedError::Entry(format!("unsupported fieldsType {other:?}"))),
        }
        let fields = match value.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)?,
            None => FieldSet::new(),
        };
        Ok(Entry {
            manager: text("manager"),
            operation,
            api_version: text("apiVersion"),
            time: value.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: text("subresource"),
            fields,
        })
    }
}

/// The entries of an object's `metadata.managedFields` (none when absent).
pub fn decode(object: &Value) -> Result<Vec<Entry>, ManagedError> {
    match object.get("metadata").and_then(|m| m.get("managedFields")) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries.iter().map(Entry::from_json).collect(),
        Some(other) => Err(ManagedError::Entry(format!(
            "managedFields must be a list, got {other}"
        ))),
    }
}

/// Writes `entries` (sorted as upstream sorts them; empty ones dropped) into the object's
/// metadata, removing `managedFields` when none is left.
pub fn store(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
            b.operation,
            &b.time,
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Fields no manager owns: type and identity metadata the server sets.
fn ignored() -> FieldSet {
    let mut set = FieldSet::new();
    set.insert(&["f:apiVersion"]);
    set.insert(&["f:kind"]);
    set.insert(&["f:metadata"]);
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&["f:metadata".to_string(), set::field(field)]);
    }
    set
}

/// The fields an object sets, as managers own them.
pub fn fields_of(object: &Value, meta: &PatchMeta) -> FieldSet {
    walk::to_field_set(object, meta.root(), &FieldMeta::default()).difference(&ignored())
}

/// Compares two objects of the kind `meta` describes.
pub fn compare(old: &Value, new: &Value, meta: &PatchMeta) -> Comparison {
    let mut comparison = walk::compare(old, new, meta.root(), &FieldMeta::default());
    let ignored = ignored();
    comparison.added = comparison.added.difference(&ignored);
    comparison.modified = comparison.modified.difference(&ignored);
    comparison.removed = comparison.removed.difference(&ignored);
    comparison
}

/// A field another manager owns that an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as [`Entry::describe`] names it.
    pub manager: String,
    /// The field, as [`path_string`] writes it.
    pub path: String,
}

/// Upstream's message for a set of conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.path
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for manager in managers {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(
            conflicts
                .iter()
                .filter(|c| c.manager == manager)
                .map(|c| format!("- {}", c.path)),
        );
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

fn writer_entry(entries: &mut Vec<Entry>, writer: &Writer) -> Entry {
    match entries.iter().position(|e| e.is(writer)) {
        Some(i) => entries.remove(i),
        None => Entry {
            manager: writer.manager.to_string(),
            operation: writer.operation,
            api_version: writer.api_version.to_string(),
            time: None,
            subresource: writer.subresource.to_string(),
            fields: FieldSet::new(),
        },
    }
}

fn finish(mut entries: Vec<Entry>, mut mine: Entry, fields: FieldSet, writer: &Writer) -> Vec<Entry> {
    if mine.fields != fields || mine.time.is_none() || mine.api_version != writer.api_version {
        mine.time = Some(writer.time.to_string());
    }
    mine.api_version = writer.api_version.to_string();
    mine.fields = fields;
    entries.push(mine);
    entries.retain(|e| !e.fields.is_empty());
    entries
}

/// The bookkeeping of an `Update` (create, update, patch): the writer takes the fields it
/// added or changed (from whoever owned them), and removed fields leave every manager.
pub fn update(live: &Value, new: &Value, meta: &PatchMeta, mut entries: Vec<Entry>, writer: &Writer) -> Vec<Entry> {
    let comparison = compare(live, new, meta);
    let changed = comparison.modified.union(&comparison.added);
    let mine = writer_entry(&mut entries, writer);
    for entry in &mut entries {
        entry.fields = entry.fields.difference(&changed).difference(&comparison.removed);
    }
    let fields = mine.fields.difference(&comparison.removed).union(&changed);
    finish(entries, mine, fields, writer)
}

/// An `Apply` of `config` onto `live` (`None`: the object does not exist yet). Returns the
/// new object (without managedFields) and the new entries, or the conflicts that stop it.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    meta: &PatchMeta,
    mut entries: Vec<Entry>,
    writer: &Writer,
    force: bool,
) -> Result<(Value, Vec<Entry>), Vec<Conflict>> {
    let empty = Value::Object(Map::new());
    let live = live.unwrap_or(&empty);
    let applied = fields_of(config, meta);
    let mut merged = walk::merge(live, config, meta.root(), &FieldMeta::default());
    let mine = writer_entry(&mut entries, writer);
    // Fields this manager applied before and no longer applies go, unless someone owns them.
    let dropped = mine.fields.difference(&applied);
    if !dropped.is_empty() {
        let keep = entries.iter().fold(applied.clone(), |acc, e| acc.union(&e.fields));
        walk::remove(&mut merged, &dropped, Some(&keep), meta.root(), &FieldMeta::default());
    }
    let comparison = compare(live, &merged, meta);
    let changed = comparison.modified.union(&comparison.added);
    let mut conflicts = Vec::new();
    for entry in &mut entries {
        let taken = entry.fields.intersection(&changed);
        if taken.is_empty() {
            continue;
        }
        if force {
            entry.fields = entry.fields.difference(&taken);
        } else {
            let manager = entry.describe();
            conflicts.extend(taken.paths().into_iter().map(|p| Conflict {
                manager: manager.clone(),
                path: path_string(&p),
            }));
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort_by(|a, b| (&a.manager, &a.path).cmp(&(&b.manager, &b.path)));
        return Err(conflicts);
    }
    for entry in &mut entries {
        entry.fields = entry.fields.difference(&comparison.removed);
    }
    Ok((merged, finish(entries, mine, applied, writer)))
}
