//! Field sets as structured-merge-diff keeps them: a trie of path elements, encoded as FieldsV1
//! (`f:<field>`, `k:<keys as JSON>`, `v:<value as JSON>`, `i:<index>`, `.` for the node
//! itself), and the path syntax of conflict messages (`.spec.containers[name="web"].image`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ManagedError;

/// A set of field paths. A node is in the set when `member` is true (a leaf of the FieldsV1
/// trie, or `.` next to children); the root is never a member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

/// The path element of a struct field or map key: `f:<name>`.
pub fn field(name: &str) -> String {
    format!("f:{name}")
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no path is in the set.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Whether this node itself is in the set.
    pub fn is_member(&self) -> bool {
        self.member
    }

    /// Adds `path` (path elements as FieldsV1 keys) to the set.
    pub fn insert<S: AsRef<str>>(&mut self, path: &[S]) {
        let mut node = self;
        for element in path {
            node = node.children.entry(element.as_ref().to_string()).or_default();
        }
        node.member = true;
    }

    /// Whether `path` is in the set.
    pub fn contains<S: AsRef<str>>(&self, path: &[S]) -> bool {
        self.subtree(path).is_some_and(|n| n.member)
    }

    /// The node at `path`, if the set has any path starting with it.
    pub fn subtree<S: AsRef<str>>(&self, path: &[S]) -> Option<&FieldSet> {
        let mut node = self;
        for element in path {
            node = node.children.get(element.as_ref())?;
        }
        (!node.is_empty()).then_some(node)
    }

    /// The child node under one path element.
    pub(crate) fn child(&self, element: &str) -> Option<&FieldSet> {
        self.children.get(element).filter(|c| !c.is_empty())
    }

    pub(crate) fn children(&self) -> impl Iterator<Item = (&String, &FieldSet)> {
        self.children.iter().filter(|(_, c)| !c.is_empty())
    }

    /// Puts `child` under `element` (merging with what is there).
    pub(crate) fn attach(&mut self, element: String, child: FieldSet) {
        if child.is_empty() {
            return;
        }
        let slot = self.children.entry(element).or_default();
        *slot = slot.union(&child);
    }

    pub(crate) fn set_member(&mut self) {
        self.member = true;
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (element, child) in &other.children {
            let merged = match out.children.get(element) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(element.clone(), merged);
        }
        out.pruned()
    }

    /// Paths in this set and not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            out.children.insert(element.clone(), rest);
        }
        out.pruned()
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                out.children.insert(element.clone(), child.intersection(theirs));
            }
        }
        out.pruned()
    }

    fn pruned(mut self) -> FieldSet {
        self.children.retain(|_, c| !c.is_empty());
        self
    }

    /// Every path in the set, in order.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (element, child) in self.children() {
            prefix.push(element.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The FieldsV1 encoding: `{"f:spec":{"f:replicas":{}}}`, with `".":{}` marking a node
    /// that is itself in the set and has children.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && self.children().next().is_some() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (element, child) in self.children() {
            map.insert(element.clone(), child.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Decodes FieldsV1.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, ManagedError> {
        let mut set = FieldSet::default();
        set.decode_into(value)?;
        set.member = false;
        Ok(set.pruned())
    }

    fn decode_into(&mut self, value: &Value) -> Result<(), ManagedError> {
        let map = value
            .as_object()
            .ok_or_else(|| ManagedError::Fields(format!("expected an object, got {value}")))?;
        if map.is_empty() {
            self.member = true;
        }
        for (key, child) in map {
            if key == "." {
                self.member = true;
                continue;
            }
            check_element(key)?;
            let mut node = FieldSet::default();
            node.decode_into(child)?;
            self.children.insert(key.clone(), node);
        }
        Ok(())
    }
}

fn check_element(key: &str) -> Result<(), ManagedError> {
    let bad = || ManagedError::Fields(format!("invalid path element {key:?}"));
    let (prefix, rest) = key.split_at_checked(2).ok_or_else(bad)?;
    match prefix {
        "f:" => Ok(()),
        "i:" => rest.parse::<u64>().map(drop).map_err(|_| bad()),
        "k:" => match serde_json::from_str::<Value>(rest) {
            Ok(Value::Object(_)) => Ok(()),
            _ => Err(bad()),
        },
        "v:" => serde_json::from_str::<Value>(rest).map(drop).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A path as structured-merge-diff prints it: `.spec.ports[port=80,protocol="TCP"].name`,
/// set items as `[=value]`, list indexes as `[0]`.
pub fn path_string<S: AsRef<str>>(path: &[S]) -> String {
    let mut out = String::new();
    for element in path {
        let element = element.as_ref();
        let (prefix, rest) = element.split_at_checked(2).unwrap_or(("", element));
        match prefix {
            "f:" => {
                out.push('.');
                out.push_str(rest);
            }
            "k:" => {
                let keys = match serde_json::from_str::<Value>(rest) {
                    Ok(Value::Object(keys)) => keys,
                    _ => Map::new(),
                };
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            "v:" => out.push_str(&format!("[={rest}]")),
            "i:" => out.push_str(&format!("[{rest}]")),
            _ => out.push_str(element),
        }
    }
    out
}
