//! Schema-directed walks over objects: the field set of an object, the comparison of two
//! objects, the merge of an applied configuration into a live object, and the removal of
//! fields. List and map types come from the kind's patch metadata (the facts published in
//! OpenAPI): `x-kubernetes-list-type` / `-list-map-keys`, and for lists without a list type
//! the patch strategy as upstream's schema conversion reads it (`merge` with a merge key is an
//! associative list, `merge` without one a set, anything else atomic).

use serde_json::{Map, Value};

use super::set::{FieldSet, field};
use crate::patch::FieldMeta;
use crate::patch::meta::Node;

/// How a list's items are told apart.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

fn list_kind(meta: &FieldMeta) -> ListKind {
    let keys = || -> Vec<String> {
        if meta.list_map_keys.is_empty() {
            meta.merge_key.into_iter().map(str::to_string).collect()
        } else {
            meta.list_map_keys.iter().map(|k| k.to_string()).collect()
        }
    };
    match meta.list_type {
        Some("atomic") => ListKind::Atomic,
        Some("set") => ListKind::Set,
        Some("map") if !keys().is_empty() => ListKind::Map(keys()),
        Some(_) => ListKind::Atomic,
        None if meta.merges() => match meta.merge_key {
            Some(key) => ListKind::Map(vec![key.to_string()]),
            None => ListKind::Set,
        },
        None => ListKind::Atomic,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Leaf,
    Object,
    Set,
    Assoc,
}

fn shape(value: &Value, meta: &FieldMeta) -> Shape {
    match value {
        Value::Object(_) if meta.map_type != Some("atomic") => Shape::Object,
        Value::Array(_) => match list_kind(meta) {
            ListKind::Atomic => Shape::Leaf,
            ListKind::Set => Shape::Set,
            ListKind::Map(_) => Shape::Assoc,
        },
        _ => Shape::Leaf,
    }
}

/// Default values of list-map key fields that upstream's schemas declare (a container port
/// without `protocol` is keyed as TCP).
fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::from("TCP"))
}

/// The path element of an associative list item: `k:{"name":"web"}`, keys in key order.
fn key_element(keys: &[String], item: &Value) -> Option<String> {
    let object = item.as_object()?;
    let mut parts = Vec::new();
    for key in keys {
        let value = match object.get(key) {
            Some(v) if !v.is_null() => v.clone(),
            _ => match key_default(key) {
                Some(v) => v,
                None => continue,
            },
        };
        parts.push(format!("{}:{}", Value::from(key.as_str()), value));
    }
    (!parts.is_empty()).then(|| format!("k:{{{}}}", parts.join(",")))
}

fn item_element(kind: &ListKind, item: &Value) -> Option<String> {
    match kind {
        ListKind::Map(keys) => key_element(keys, item),
        ListKind::Set => Some(format!("v:{item}")),
        ListKind::Atomic => None,
    }
}

/// One child of an object or list, with what the schema says about it.
struct Child<'v, 'm> {
    element: String,
    value: &'v Value,
    node: Node<'m>,
    meta: FieldMeta<'m>,
    /// The child is in a field set by itself (map entries, list items, null or empty maps).
    member: bool,
}

fn children<'v, 'm>(value: &'v Value, node: Node<'m>, meta: &FieldMeta<'m>) -> Vec<Child<'v, 'm>> {
    let mut out = Vec::new();
    match (shape(value, meta), value) {
        (Shape::Object, Value::Object(map)) => {
            for (key, child) in map {
                let (child_node, child_meta) = node.field(key);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                out.push(Child {
                    element: field(key),
                    value: child,
                    node: child_node,
                    meta: child_meta,
                    member: empty || !node.declares(key),
                });
            }
        }
        (Shape::Set | Shape::Assoc, Value::Array(items)) => {
            let kind = list_kind(meta);
            for item in items {
                if let Some(element) = item_element(&kind, item) {
                    out.push(Child {
                        element,
                        value: item,
                        node: node.items(),
                        meta: FieldMeta::default(),
                        member: true,
                    });
                }
            }
        }
        _ => {}
    }
    out
}

/// The fields an object sets (upstream's `ToFieldSet`).
pub(crate) fn to_field_set(value: &Value, node: Node<'_>, meta: &FieldMeta<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    for child in children(value, node, meta) {
        set.attach(child.element.clone(), whole(&child));
    }
    set
}

fn whole(child: &Child<'_, '_>) -> FieldSet {
    let mut sub = to_field_set(child.value, child.node, &child.meta);
    if child.member || shape(child.value, &child.meta) == Shape::Leaf {
        sub.set_member();
    }
    sub
}

/// What changed from one object to another, as field sets relative to the compared node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    fn attach(&mut self, element: &str, sub: Comparison) {
        self.added.attach(element.to_string(), sub.added);
        self.modified.attach(element.to_string(), sub.modified);
        self.removed.attach(element.to_string(), sub.removed);
    }

    /// Nothing changed.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares two values at the same place (upstream's `Compare`).
pub(crate) fn compare(old: &Value, new: &Value, node: Node<'_>, meta: &FieldMeta<'_>) -> Comparison {
    let mut out = Comparison::default();
    let (old_shape, new_shape) = (shape(old, meta), shape(new, meta));
    if old_shape != new_shape || old_shape == Shape::Leaf {
        if old != new {
            out.modified.set_member();
        }
        return out;
    }
    let old_children = children(old, node, meta);
    let new_children = children(new, node, meta);
    for new_child in &new_children {
        match old_children.iter().find(|c| c.element == new_child.element) {
            Some(old_child) => {
                let sub = compare(old_child.value, new_child.value, new_child.node, &new_child.meta);
                out.attach(&new_child.element, sub);
            }
            None => out.added.attach(new_child.element.clone(), whole(new_child)),
        }
    }
    for old_child in &old_children {
        if !new_children.iter().any(|c| c.element == old_child.element) {
            out.removed.attach(old_child.element.clone(), whole(old_child));
        }
    }
    out
}

/// Merges an applied configuration into a live value: maps merge, associative lists merge
/// item by item (new items appended), sets are united, anything else is replaced. A `null` in
/// the configuration removes the field.
pub(crate) fn merge(live: &Value, config: &Value, node: Node<'_>, meta: &FieldMeta<'_>) -> Value {
    match (shape(live, meta), shape(config, meta), live, config) {
        (Shape::Object, Shape::Object, Value::Object(live_map), Value::Object(config_map)) => {
            let mut out = live_map.clone();
            for (key, value) in config_map {
                if value.is_null() {
                    out.remove(key);
                    continue;
                }
                let (child_node, child_meta) = node.field(key);
                let merged = match out.get(key) {
                    Some(existing) => merge(existing, value, child_node, &child_meta),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (Shape::Assoc | Shape::Set, same, Value::Array(live_items), Value::Array(config_items))
            if same == shape(live, meta) =>
        {
            let kind = list_kind(meta);
            let items_node = node.items();
            let mut out = live_items.clone();
            for item in config_items {
                let element = item_element(&kind, item);
                let position = element
                    .as_ref()
                    .and_then(|el| out.iter().position(|o| item_element(&kind, o).as_ref() == Some(el)));
                match position {
                    Some(i) => out[i] = merge(&out[i], item, items_node, &FieldMeta::default()),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

/// Removes from `value` the fields of `remove` that `keep` has nothing at or under.
pub(crate) fn remove(
    value: &mut Value,
    remove_set: &FieldSet,
    keep: Option<&FieldSet>,
    node: Node<'_>,
    meta: &FieldMeta<'_>,
) {
    match value {
        Value::Object(map) if shape_of_object(meta) => {
            for (element, sub) in remove_set.children() {
                let Some(name) = element.strip_prefix("f:") else {
                    continue;
                };
                let kept = keep.and_then(|k| k.child(element));
                if sub.is_member() && kept.is_none() {
                    map.remove(name);
                } else if let Some(child) = map.get_mut(name) {
                    let (child_node, child_meta) = node.field(name);
                    remove(child, sub, kept, child_node, &child_meta);
                    // A named field left empty goes too (upstream makes named fields
                    // members before removing), unless someone owns something in it.
                    let emptied =
                        child.as_object().is_some_and(Map::is_empty) || child.as_array().is_some_and(Vec::is_empty);
                    if emptied && kept.is_none() && node.declares(name) {
                        map.remove(name);
                    }
                }
            }
        }
        Value::Array(items) => {
            let kind = list_kind(meta);
            if kind == ListKind::Atomic {
                return;
            }
            let items_node = node.items();
            for (element, sub) in remove_set.children() {
                let Some(i) = items
                    .iter()
                    .position(|item| item_element(&kind, item).as_deref() == Some(element.as_str()))
                else {
                    continue;
                };
                let kept = keep.and_then(|k| k.child(element));
                if sub.is_member() && kept.is_none() {
                    items.remove(i);
                } else {
                    remove(&mut items[i], sub, kept, items_node, &FieldMeta::default());
                }
            }
        }
        _ => {}
    }
}

fn shape_of_object(meta: &FieldMeta) -> bool {
    meta.map_type != Some("atomic")
}
