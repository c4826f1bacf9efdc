//! The merge itself. Follows upstream's server-side merge (`mergeMap` with parallel lists
//! merged and unmatched nulls ignored), with one deliberate difference: a patch value for a
//! field the original lacks is merged into an empty value instead of being copied verbatim, so
//! directives and `null`s in it never reach the stored object.

use serde_json::{Map, Value};

use super::PatchError;
use super::meta::{FieldMeta, Node, PatchMeta};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PREFIX: &str = "$deleteFromPrimitiveList";
const ORDER_PREFIX: &str = "$setElementOrder";

/// Applies the strategic merge patch `patch` to `original` with the patch metadata `meta`.
/// `original` `null` stands for an empty object.
pub fn strategic_merge(original: &Value, patch: &Value, meta: &PatchMeta) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(p) => p.clone(),
        other => return Err(PatchError::NotAnObject(json_kind(other))),
    };
    let original = match original {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        other => return Err(PatchError::NotAnObject(json_kind(other))),
    };
    merge_map(original, patch, meta.root()).map(Value::Object)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's name of a JSON value's decoded type, as upstream's messages print it.
fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

pub(super) fn expected_map(actual: &Value) -> PatchError {
    PatchError::BadArgType {
        expected: "map[string]interface {}",
        actual: go_kind(actual),
    }
}

pub(super) fn expected_list(actual: &Value) -> PatchError {
    PatchError::BadArgType {
        expected: "[]interface {}",
        actual: go_kind(actual),
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The (retainKeys, other strategy) of a field.
fn strategy<'a>(meta: &FieldMeta<'a>) -> Result<(bool, &'a str), PatchError> {
    let strategies: Vec<&'a str> = match meta.patch_strategy {
        Some(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect(),
        None => Vec::new(),
    };
    match strategies.as_slice() {
        [] => Ok((false, "")),
        ["retainKeys"] => Ok((true, "")),
        [one] => Ok((false, one)),
        ["retainKeys", other] | [other, "retainKeys"] => Ok((true, other)),
        _ => Err(PatchError::BadStrategy(format!("{strategies:?}"))),
    }
}

/// The field a `<prefix>/<field>` directive key names.
fn directive_field<'k>(key: &'k str, prefix: &str, error: PatchError) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field),
        _ => Err(error),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    node: Node<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                merge_map(Map::new(), patch, node)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::BadPatchType {
                directive: directive.as_str().map_or_else(|| compact(directive), str::to_string),
                map: compact(&Value::Object(patch)),
            }),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, node)?;

    for (key, value) in patch {
        let (field, delete_list) = if key.starts_with(DELETE_PREFIX) {
            (
                directive_field(&key, DELETE_PREFIX, PatchError::BadPrimitiveListFormat)?.to_string(),
                true,
            )
        } else {
            (key, false)
        };
        if value.is_null() {
            original.remove(&field);
            continue;
        }
        let (child, meta) = node.field(&field);
        let Some(current) = original.remove(&field) else {
            if !delete_list {
                original.insert(field, fresh(value, child, &meta)?);
            }
            continue;
        };
        let merged = match (current, value) {
            (Value::Object(current), Value::Object(value)) => {
                let (_, strategy) = strategy(&meta)?;
                if strategy == "replace" {
                    merge_map(Map::new(), value, child)?
                } else {
                    merge_map(current, value, child)?
                }
                .into()
            }
            (Value::Array(current), Value::Array(value)) => {
                let (_, strategy) = strategy(&meta)?;
                // Deletion lists apply whatever the field's strategy, as upstream's.
                if strategy == "merge" || delete_list {
                    merge_list(current, value, child.items(), meta.merge_key, delete_list)?.into()
                } else {
                    value.into()
                }
            }
            (current, value) => {
                if delete_list {
                    current
                } else {
                    fresh(value, child, &meta)?
                }
            }
        };
        original.insert(field, merged);
    }
    Ok(original)
}

/// A patch value for a field the original lacks (or has with another JSON type): merged into
/// an empty value, so its directives apply and its `null`s go.
fn fresh(value: Value, node: Node<'_>, meta: &FieldMeta<'_>) -> Result<Value, PatchError> {
    Ok(match value {
        Value::Object(map) => merge_map(Map::new(), map, node)?.into(),
        Value::Array(list) if strategy(meta)?.1 == "merge" => {
            merge_list(Vec::new(), list, node.items(), meta.merge_key, false)?.into()
        }
        other => other,
    })
}

/// `$retainKeys`: drop the original's keys not listed; every non-null patch key must be listed.
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeysFormat);
    };
    let listed = |key: &str| retain.iter().any(|r| r.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null() || key.starts_with(DELETE_PREFIX) || key.starts_with(ORDER_PREFIX) {
            continue;
        }
        if !listed(key) {
            return Err(PatchError::RetainKeysMismatch);
        }
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// `$setElementOrder/<field>`: merge the field's list now and put it in the given order.
fn apply_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    node: Node<'_>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch.keys().filter(|k| k.starts_with(ORDER_PREFIX)).cloned().collect();
    for key in keys {
        let Some(order) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(expected_list(&order));
        };
        let field = directive_field(&key, ORDER_PREFIX, PatchError::BadSetElementOrderFormat)?.to_string();
        let current = match original.remove(&field) {
            Some(Value::Array(list)) => Some(list),
            Some(other) => return Err(expected_list(&other)),
            None => None,
        };
        let patch_list = match patch.remove(&field) {
            Some(Value::Array(list)) => Some(list),
            Some(other) => return Err(expected_list(&other)),
            None => None,
        };
        let (child, meta) = node.field(&field);
        let (_, strategy) = strategy(&meta)?;
        let merge_key = meta.merge_key.unwrap_or("");
        validate_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;
        let merges = strategy == "merge";
        let (merged, server_order) = match (current, patch_list) {
            (None, None) => continue,
            (Some(current), None) => {
                let order = ids(&current, merge_key);
                (current, order)
            }
            (current, Some(list)) if merges => {
                merge_list_in_order(current.unwrap_or_default(), list, child.items(), meta.merge_key)?
            }
            (current, Some(list)) => (list, current.unwrap_or_default()),
        };
        let (listed, server_only) = partition(merged, &order, merge_key)?;
        let sorted = normalize_order(listed, server_only, &order, &server_order, merge_key)?;
        original.insert(field, Value::Array(sorted));
    }
    Ok(())
}

/// The value an item is identified by: its merge key, or the item itself for primitives.
fn identity<'v>(item: &'v Value, merge_key: &str) -> Option<&'v Value> {
    if merge_key.is_empty() {
        Some(item)
    } else {
        item.get(merge_key)
    }
}

fn position(list: &[Value], item: &Value, merge_key: &str) -> Option<usize> {
    let id = identity(item, merge_key);
    list.iter().position(|v| identity(v, merge_key) == id)
}

/// Checks that the patch list's items (deletions and directives aside) appear in the order the
/// `$setElementOrder` list gives.
fn validate_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch.len());
    for item in patch {
        if !merge_key.is_empty() {
            let Value::Object(map) = item else {
                return Err(expected_map(item));
            };
            if map.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        if item.get(DIRECTIVE).is_some() {
            continue;
        }
        items.push(item);
    }
    let mut next = 0;
    for wanted in order {
        let Some(item) = items.get(next) else {
            break;
        };
        if same_key(item, wanted, merge_key)? {
            next += 1;
        }
    }
    if next < items.len() {
        return Err(PatchError::OrderMismatch {
            patch: compact(&Value::Array(patch.to_vec())),
            order: compact(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

fn same_key(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let key = |v: &Value| -> Result<Value, PatchError> {
        let Value::Object(map) = v else {
            return Err(expected_map(v));
        };
        map.get(merge_key).cloned().ok_or_else(|| no_merge_key(v, merge_key))
    };
    Ok(key(left)? == key(right)?)
}

fn no_merge_key(item: &Value, merge_key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: compact(item),
        key: merge_key.to_string(),
    }
}

/// Whether a list holds maps; errors for lists of lists and for mixed lists.
fn holds_maps(original: &[Value], patch: &[Value]) -> Result<bool, PatchError> {
    let mut kind: Option<&'static str> = None;
    for item in original.iter().chain(patch) {
        if item.is_array() {
            return Err(PatchError::ListOfLists);
        }
        let k = json_kind(item);
        match kind {
            None => kind = Some(k),
            Some(seen) if seen == k => {}
            Some(_) => {
                return Err(PatchError::MixedList(format!(
                    "{} {}",
                    compact(&Value::Array(original.to_vec())),
                    compact(&Value::Array(patch.to_vec()))
                )));
            }
        }
    }
    Ok(kind == Some("object"))
}

/// Merges two lists of a field with strategy `merge`.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    items: Node<'_>,
    merge_key: Option<&str>,
    delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    merge_list_detail(original, patch, items, merge_key, delete_list).map(|(merged, _)| merged)
}

/// Merges two lists for `$setElementOrder`, returning the merged list and the order of the
/// original list its items are then interleaved by. Upstream reads that order from the
/// original list's storage after the merge has shifted deletions out of it and written
/// appended items into it in place; this reproduces that view (same length as the original).
fn merge_list_in_order(
    original: Vec<Value>,
    patch: Vec<Value>,
    items: Node<'_>,
    merge_key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let len = original.len();
    let (merged, mut server_order) = merge_list_detail(original, patch, items, merge_key, false)?;
    server_order.truncate(len);
    Ok((merged, server_order))
}

/// The merged list, and the original list as upstream's in-place merge leaves it (see
/// [`merge_list_in_order`]).
fn merge_list_detail(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    items: Node<'_>,
    merge_key: Option<&str>,
    delete_list: bool,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok((original, Vec::new()));
    }
    if !holds_maps(&original, &patch)? {
        let before = original.clone();
        if delete_list {
            original.retain(|v| !patch.contains(v));
            return Ok((original, before));
        }
        let mut merged = original.clone();
        for item in &patch {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        let (listed, server_only) = partition(merged, &patch, "")?;
        return Ok((normalize_order(listed, server_only, &patch, &original, "")?, before));
    }
    if delete_list {
        // Deletion lists are for primitives.
        let key = merge_key.unwrap_or("");
        let order = ids(&original, key);
        return Ok((original, order));
    }
    let Some(key) = merge_key.filter(|k| !k.is_empty()) else {
        return Err(PatchError::NoMergeKeyDeclared("type map".into()));
    };

    // Directive items: deletions apply now; a replace makes the other items the whole list.
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let id = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                original.retain(|o| o.get(key) != Some(id));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeDirectiveInList),
            _ => {
                return Err(PatchError::BadPatchType {
                    directive: directive.as_str().map_or_else(|| compact(directive), str::to_string),
                    map: compact(&item),
                });
            }
        }
    }
    // What upstream's in-place merge leaves in the original list's storage: the list after the
    // deletions, then the appended items (identities suffice).
    let mut in_place = ids(&original, key);
    if replace {
        original = Vec::with_capacity(plain.len());
        for item in plain.drain(..) {
            let Value::Object(map) = item else {
                return Err(expected_map(&item));
            };
            original.push(merge_map(Map::new(), map, items)?.into());
        }
    }

    let server_order = ids(&original, key);
    let patch_order = ids(&plain, key);
    for item in plain {
        let Value::Object(map) = item else {
            return Err(expected_map(&item));
        };
        let Some(id) = map.get(key).cloned() else {
            return Err(no_merge_key(&Value::Object(map), key));
        };
        match original.iter().position(|o| o.get(key) == Some(&id)) {
            Some(i) => {
                let current = match std::mem::take(&mut original[i]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                original[i] = merge_map(current, map, items)?.into();
            }
            None => {
                let mut identity = Map::new();
                identity.insert(key.to_string(), id);
                in_place.push(Value::Object(identity));
                original.push(merge_map(Map::new(), map, items)?.into());
            }
        }
    }
    let (listed, server_only) = partition(original, &patch_order, key)?;
    Ok((
        normalize_order(listed, server_only, &patch_order, &server_order, key)?,
        in_place,
    ))
}

/// The identities of a list's items: `{<key>: value}` for maps, the items for primitives.
fn ids(list: &[Value], merge_key: &str) -> Vec<Value> {
    if merge_key.is_empty() {
        return list.to_vec();
    }
    list.iter()
        .map(|item| {
            let mut identity = Map::new();
            if let Some(id) = item.get(merge_key) {
                identity.insert(merge_key.to_string(), id.clone());
            }
            Value::Object(identity)
        })
        .collect()
}

/// Splits `list` into the items present in `by` and the others, keeping their order.
fn partition(list: Vec<Value>, by: &[Value], merge_key: &str) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut listed = Vec::new();
    let mut others = Vec::new();
    for item in list {
        if !merge_key.is_empty() {
            if !item.is_object() {
                return Err(expected_map(&item));
            }
            if item.get(merge_key).is_none() {
                return Err(no_merge_key(&item, merge_key));
            }
        }
        if position(by, &item, merge_key).is_some() {
            listed.push(item);
        } else {
            others.push(item);
        }
    }
    Ok((listed, others))
}

/// Sorts `listed` by `order` and `server_only` by `server_order`, then interleaves them: a
/// server-only item goes before a listed item when it came first in the original list.
fn normalize_order(
    listed: Vec<Value>,
    server_only: Vec<Value>,
    order: &[Value],
    server_order: &[Value],
    merge_key: &str,
) -> Result<Vec<Value>, PatchError> {
    let listed = sort_by(listed, order, merge_key)?;
    let server_only = sort_by(server_only, server_order, merge_key)?;
    let mut out = Vec::with_capacity(listed.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = listed.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    position(server_order, l, merge_key),
                    position(server_order, r, merge_key),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

/// Stable sort by position in `order` (items not in it last); deletion items go to the end.
fn sort_by(items: Vec<Value>, order: &[Value], merge_key: &str) -> Result<Vec<Value>, PatchError> {
    if !merge_key.is_empty() {
        for item in order {
            if !item.is_object() {
                return Err(expected_map(item));
            }
            if item.get(merge_key).is_none() {
                return Err(no_merge_key(item, merge_key));
            }
        }
    }
    let mut keep = Vec::with_capacity(items.len());
    let mut deletions = Vec::new();
    for item in items {
        if !merge_key.is_empty() {
            if !item.is_object() {
                return Err(expected_map(&item));
            }
            if item.get(merge_key).is_none() {
                return Err(no_merge_key(&item, merge_key));
            }
            if item.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                deletions.push(item);
                continue;
            }
        }
        keep.push(item);
    }
    keep.sort_by_key(|item| position(order, item, merge_key).unwrap_or(usize::MAX));
    keep.extend(deletions);
    Ok(keep)
}
