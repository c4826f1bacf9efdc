//! Client side of strategic merge patch: the patches kubectl computes for client-side `apply`
//! (upstream's `CreateThreeWayMergePatch`) and for edits (`CreateTwoWayMergePatch`).
//!
//! The three-way patch is built from two diffs: `delta`, current → modified ignoring deletions,
//! and `deletions`, original (the last applied configuration) → modified ignoring changes and
//! additions. Merging the two (the way upstream merges two patches: directives kept, nulls
//! kept) gives the patch. Fields only the live object has (server defaults, status, fields set
//! by others) are left alone; fields the user removed from the manifest are deleted.
//!
//! As upstream's, the diff emits per field, by its patch metadata:
//! - maps: changed and added keys, `null` for deleted keys;
//! - lists with strategy `merge` of maps: changed items as partial maps carrying the merge
//!   key, added items whole, removed items as `{"$patch": "delete", <key>: v}`, and
//!   `$setElementOrder/<field>` (the merge keys of the modified list) when the list changed;
//! - lists with strategy `merge` of primitives: added values, `$deleteFromPrimitiveList/<field>`
//!   for removed values, `$setElementOrder/<field>`;
//! - other lists: the modified list whole when it differs;
//! - maps whose field has strategy `retainKeys`: `$retainKeys` listing the modified map's keys.

use std::cmp::Ordering;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::PatchError;
use super::merge::{expected_list, expected_map};
use super::meta::{FieldMeta, Node, PatchMeta};

type Obj = Map<String, Value>;
type Result<T, E = PatchError> = std::result::Result<T, E>;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PREFIX: &str = "$deleteFromPrimitiveList";
const ORDER_PREFIX: &str = "$setElementOrder";

/// Computes the strategic merge patch kubectl's client-side `apply` sends (upstream's
/// `CreateThreeWayMergePatch`): applied to `current` (the live object) it sets every field of
/// `modified` (the new manifest, with the new last-applied annotation already in it) and
/// deletes the fields `original` (the last applied configuration; `None` when the object has
/// none) had and `modified` no longer has, leaving fields only `current` has alone.
///
/// An empty object means nothing to change (kubectl then reports `unchanged`). The patch's
/// keys are sorted, so its compact serialization is byte for byte kubectl's.
///
/// With `overwrite` false, a patch that changes a field differently from how it was changed
/// from `original` to `current` fails with [`PatchError::Conflict`]; kubectl's `apply` passes
/// true. Every document must be a JSON object (`null` stands for an empty one).
pub fn three_way_merge_patch(
    original: Option<&Value>,
    modified: &Value,
    current: &Value,
    meta: &PatchMeta,
    overwrite: bool,
) -> Result<Value> {
    let original = match original {
        Some(v) => as_object(v)?,
        None => &EMPTY,
    };
    let modified = as_object(modified)?;
    let current = as_object(current)?;
    let root = meta.root();

    // Diff::new(set element order, ignore changes and additions, ignore deletions).
    let delta = diff_maps(current, modified, root, Diff::new(true, false, true))?;
    let deletions = diff_maps(original, modified, root, Diff::new(true, true, false))?;
    let patch = merge_patches(deletions, delta, root)?;

    if !overwrite {
        let changes = diff_maps(original, current, root, Diff::new(false, false, false))?;
        if maps_conflict(&patch, &changes, root)? {
            return Err(PatchError::Conflict {
                patch: compact(&Value::Object(patch)),
                changes: compact(&Value::Object(changes)),
            });
        }
    }
    Ok(sorted(Value::Object(patch)))
}

/// Computes the strategic merge patch that turns `original` into `modified` (upstream's
/// `CreateTwoWayMergePatch`, as `kubectl edit` and `kubectl annotate` use it), keys sorted.
pub fn two_way_merge_patch(original: &Value, modified: &Value, meta: &PatchMeta) -> Result<Value> {
    let diff = Diff::new(true, false, false);
    let patch = diff_maps(as_object(original)?, as_object(modified)?, meta.root(), diff)?;
    Ok(sorted(Value::Object(patch)))
}

/// The empty object `null` documents stand for.
static EMPTY: LazyLock<Obj> = LazyLock::new(Obj::new);

fn as_object(v: &Value) -> Result<&Obj> {
    match v {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(&EMPTY),
        other => Err(PatchError::NotAnObject(json_kind(other))),
    }
}

/// What a diff keeps (upstream's `DiffOptions`).
#[derive(Clone, Copy, Debug)]
struct Diff {
    /// Emit `$setElementOrder` lists.
    set_element_order: bool,
    /// Leave changed and added fields out.
    ignore_changes: bool,
    /// Leave deleted fields out.
    ignore_deletions: bool,
    /// Emit `$retainKeys` for this map (its field has strategy `retainKeys`).
    retain_keys: bool,
}

impl Diff {
    fn new(set_element_order: bool, ignore_changes: bool, ignore_deletions: bool) -> Self {
        let retain_keys = false;
        Diff {
            set_element_order,
            ignore_changes,
            ignore_deletions,
            retain_keys,
        }
    }
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

/// Whether two values have the same Go type once decoded. Upstream decodes whole numbers as
/// `int64` and others as `float64`, so those differ too.
fn same_type(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.is_f64() == y.is_f64(),
        _ => json_kind(a) == json_kind(b),
    }
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: compact(item),
        key: key.to_string(),
    }
}

fn bad_patch_type(directive: &Value, map: &Value) -> PatchError {
    PatchError::BadPatchType {
        directive: directive.as_str().map_or_else(|| compact(directive), str::to_string),
        map: compact(map),
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The value with every map's keys sorted, as Go's encoder writes them.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(list) => Value::Array(list.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A value as Go's `%v` prints it, which upstream sorts and matches list items by.
fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        other => compact(other),
    }
}

/// The (retainKeys, other strategy) of a field.
fn strategy<'a>(meta: &FieldMeta<'a>) -> Result<(bool, &'a str)> {
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

/// Whether the list's items are maps; errors for lists of lists and mixed lists. `None` for
/// two empty lists.
fn element_kind(a: &[Value], b: &[Value]) -> Result<Option<bool>> {
    let mut first: Option<&Value> = None;
    for item in a.iter().chain(b) {
        match first {
            None => {
                if item.is_array() {
                    return Err(PatchError::ListOfLists);
                }
                first = Some(item);
            }
            Some(f) if same_type(f, item) => {}
            Some(_) => {
                return Err(PatchError::MixedList(format!(
                    "{} {}",
                    compact(&Value::Array(a.to_vec())),
                    compact(&Value::Array(b.to_vec()))
                )));
            }
        }
    }
    Ok(first.map(Value::is_object))
}

// --- Diff

/// The patch turning `original` into `modified` (upstream's `diffMaps`).
fn diff_maps(original: &Obj, modified: &Obj, node: Node<'_>, diff: Diff) -> Result<Obj> {
    let mut patch = Obj::new();
    let mut retain: Vec<String> = Vec::new();
    for (key, new) in modified {
        if diff.retain_keys && !new.is_null() {
            retain.push(key.clone());
        }
        let Some(old) = original.get(key) else {
            if !diff.ignore_changes {
                patch.insert(key.clone(), new.clone());
            }
            continue;
        };
        if key == DIRECTIVE {
            let (Some(old), Some(new_str)) = (old.as_str(), new.as_str()) else {
                return Err(bad_patch_type(new, &Value::Object(modified.clone())));
            };
            if old != new_str {
                patch.insert(key.clone(), new.clone());
            }
            continue;
        }
        // Values of different types (whole and fractional numbers included) differ.
        match (old, new) {
            (Value::Object(old), Value::Object(new)) => diff_map_field(key, old, new, &mut patch, node, diff)?,
            (Value::Array(old), Value::Array(new)) => diff_list_field(key, old, new, &mut patch, node, diff)?,
            _ if !diff.ignore_changes && old != new => {
                patch.insert(key.clone(), new.clone());
            }
            _ => {}
        }
    }
    if !diff.ignore_deletions {
        for key in original.keys() {
            if !modified.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    let original_has_more = original.iter().any(|(k, v)| !v.is_null() && !modified.contains_key(k));
    if !retain.is_empty() && (!patch.is_empty() || original_has_more) {
        retain.sort();
        patch.insert(RETAIN_KEYS.into(), retain.into_iter().map(Value::String).collect());
    }
    Ok(patch)
}

/// A map-valued field present in both (upstream's `handleMapDiff`).
fn diff_map_field(key: &str, old: &Obj, new: &Obj, patch: &mut Obj, node: Node<'_>, mut diff: Diff) -> Result<()> {
    let (child, meta) = node.field(key);
    let (retain, strategy) = strategy(&meta)?;
    diff.retain_keys = retain;
    if strategy == "replace" {
        if !diff.ignore_changes {
            patch.insert(key.into(), Value::Object(new.clone()));
        }
        return Ok(());
    }
    let value = diff_maps(old, new, child, diff)?;
    if !value.is_empty() {
        patch.insert(key.into(), Value::Object(value));
    }
    Ok(())
}

/// A list-valued field present in both (upstream's `handleSliceDiff`).
fn diff_list_field(key: &str, old: &[Value], new: &[Value], patch: &mut Obj, node: Node, mut diff: Diff) -> Result<()> {
    let (child, meta) = node.field(key);
    let (retain, strategy) = strategy(&meta)?;
    if strategy != "merge" {
        if !diff.ignore_changes && old != new {
            patch.insert(key.into(), Value::Array(new.to_vec()));
        }
        return Ok(());
    }
    diff.retain_keys = retain;
    let (add, delete, order) = diff_lists(old, new, child.items(), meta.merge_key.unwrap_or(""), diff)?;
    if !add.is_empty() {
        patch.insert(key.into(), Value::Array(add));
    }
    if !delete.is_empty() {
        patch.insert(format!("{DELETE_PREFIX}/{key}"), Value::Array(delete));
    }
    if !order.is_empty() {
        patch.insert(format!("{ORDER_PREFIX}/{key}"), Value::Array(order));
    }
    Ok(())
}

type ListDiff = (Vec<Value>, Vec<Value>, Vec<Value>);
type Pair = (Vec<Value>, Vec<Value>);

/// The patch list, the primitive deletion list and the order list of a merged list (upstream's
/// `diffLists`).
fn diff_lists(original: &[Value], modified: &[Value], items: Node<'_>, key: &str, diff: Diff) -> Result<ListDiff> {
    if original.is_empty() {
        if modified.is_empty() || diff.ignore_changes {
            return Ok(Default::default());
        }
        return Ok((modified.to_vec(), Vec::new(), Vec::new()));
    }
    let maps = element_kind(original, modified)?.unwrap_or(false);
    if maps {
        let (changed, deleted) = diff_lists_of_maps(original, modified, items, key, diff)?;
        let mut patch = sort_by_order(changed, modified, key, true)?;
        let order_same = original.len() == modified.len()
            && original
                .iter()
                .zip(modified)
                .all(|(o, m)| o.get(key).is_some() && o.get(key) == m.get(key));
        patch.extend(deleted);
        let changes = !diff.ignore_changes && (!patch.is_empty() || !order_same);
        let deletions = !diff.ignore_deletions && !patch.is_empty();
        let mut order = Vec::new();
        if diff.set_element_order && (changes || deletions) {
            order = modified.iter().map(|m| identity(m, key)).collect();
        }
        return Ok((patch, Vec::new(), order));
    }
    let (added, deleted) = diff_lists_of_scalars(original, modified, diff)?;
    let added = sort_by_order(added, modified, "", false)?;
    // Upstream compares the original list as its scalar diff left it: sorted in place.
    let mut original_sorted = original.to_vec();
    original_sorted.sort_by_key(go_string);
    let mut order = Vec::new();
    if diff.set_element_order
        && ((!diff.ignore_deletions && !deleted.is_empty()) || (!diff.ignore_changes && original_sorted != modified))
    {
        order = modified.to_vec();
    }
    Ok((added, deleted, order))
}

/// `{<key>: value}` of a list item.
fn identity(item: &Value, key: &str) -> Value {
    let mut map = Obj::new();
    map.insert(key.to_string(), item.get(key).cloned().unwrap_or(Value::Null));
    Value::Object(map)
}

/// One step of a walk over two lists sorted by their printed identities.
enum Step<'v> {
    Both(&'v Value, &'v Value),
    Added(&'v Value),
    Removed(&'v Value),
}

/// Walks `original` and `modified` sorted by `id` (Go's `%v` of the item or of its merge
/// key), the way upstream's list diffs compare them.
fn walk<'v>(
    original: &'v [Value],
    modified: &'v [Value],
    id: impl Fn(&Value) -> Result<String>,
    mut step: impl FnMut(Step<'v>) -> Result<()>,
) -> Result<()> {
    let sort = |list: &'v [Value]| -> Result<Vec<(String, &'v Value)>> {
        let mut out = list.iter().map(|v| Ok((id(v)?, v))).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    };
    let (old, new) = (sort(original)?, sort(modified)?);
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let cmp = match (old.get(i), new.get(j)) {
            (Some(o), Some(m)) => o.0.cmp(&m.0),
            (None, _) => Ordering::Greater,
            (_, None) => Ordering::Less,
        };
        match cmp {
            Ordering::Equal => step(Step::Both(old[i].1, new[j].1))?,
            Ordering::Greater => step(Step::Added(new[j].1))?,
            Ordering::Less => step(Step::Removed(old[i].1))?,
        }
        i += usize::from(cmp != Ordering::Greater);
        j += usize::from(cmp != Ordering::Less);
    }
    Ok(())
}

/// Additions and deletions between two lists of primitives, compared as sorted sets of their
/// printed values (upstream's `diffListsOfScalars`).
fn diff_lists_of_scalars(original: &[Value], modified: &[Value], diff: Diff) -> Result<Pair> {
    let (mut added, mut deleted) = (Vec::new(), Vec::new());
    walk(
        original,
        modified,
        |v| Ok(go_string(v)),
        |step| {
            match step {
                Step::Added(m) if !diff.ignore_changes => added.push(m.clone()),
                Step::Removed(o) if !diff.ignore_deletions => deleted.push(o.clone()),
                _ => {}
            }
            Ok(())
        },
    )?;
    Ok((added, dedup_scalars(deleted)))
}

/// Removes duplicates the way upstream does (a duplicate is replaced by the last item).
fn dedup_scalars(mut list: Vec<Value>) -> Vec<Value> {
    let mut i = 0;
    while i < list.len() {
        match list[i + 1..].iter().position(|v| *v == list[i]) {
            Some(j) => drop(list.swap_remove(i + 1 + j)),
            None => i += 1,
        }
    }
    list
}

/// Changed/added items and deletion directives between two lists of maps matched by merge key
/// (upstream's `diffListsOfMaps`).
fn diff_lists_of_maps(original: &[Value], modified: &[Value], items: Node, key: &str, diff: Diff) -> Result<Pair> {
    let id = |item: &Value| merge_id(item, key).map(go_string);
    let (mut changed, mut deleted) = (Vec::new(), Vec::new());
    walk(original, modified, id, |step| {
        match step {
            Step::Both(Value::Object(o), Value::Object(m)) => {
                let mut value = diff_maps(o, m, items, diff)?;
                if !value.is_empty() {
                    value.insert(key.to_string(), m[key].clone());
                    changed.push(Value::Object(value));
                }
            }
            Step::Added(m) if !diff.ignore_changes => changed.push(m.clone()),
            Step::Removed(o) if !diff.ignore_deletions => {
                let mut directive = Obj::new();
                directive.insert(DIRECTIVE.into(), Value::String("delete".into()));
                directive.insert(key.to_string(), o[key].clone());
                deleted.push(Value::Object(directive));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok((changed, deleted))
}

// --- Ordering (upstream's `normalizeElementOrder` and friends)

/// The value an item is matched by: its merge key for maps, the item for primitives.
fn match_value<'v>(item: &'v Value, key: &str, maps: bool) -> Option<&'v Value> {
    if maps { item.get(key) } else { Some(item) }
}

fn index_of(list: &[Value], item: &Value, key: &str, maps: bool) -> Option<usize> {
    let wanted = match_value(item, key, maps);
    list.iter().position(|v| match_value(v, key, maps) == wanted)
}

/// The merge key value of a list item, which must be a map holding it.
fn merge_id<'v>(item: &'v Value, key: &str) -> Result<&'v Value> {
    match item {
        Value::Object(map) => map.get(key).ok_or_else(|| no_merge_key(item, key)),
        other => Err(expected_map(other)),
    }
}

fn check_keyed(list: &[Value], key: &str) -> Result<()> {
    list.iter().try_for_each(|item| merge_id(item, key).map(drop))
}

/// Stable sort of `items` by position in `order` (unlisted last); deletion directives go to
/// the end (upstream's `normalizeSliceOrder`).
fn sort_by_order(items: Vec<Value>, order: &[Value], key: &str, maps: bool) -> Result<Vec<Value>> {
    let (mut keep, deletions): (Vec<Value>, Vec<Value>) = if maps {
        check_keyed(&items, key)?;
        check_keyed(order, key)?;
        items.into_iter().partition(|item| item[DIRECTIVE] != "delete")
    } else {
        (items, Vec::new())
    };
    keep.sort_by_key(|item| index_of(order, item, key, maps).unwrap_or(usize::MAX));
    keep.extend(deletions);
    Ok(keep)
}

/// Splits `list` into the items `by` has and the others.
fn partition(list: Vec<Value>, by: &[Value], key: &str, maps: bool) -> Result<Pair> {
    if maps {
        check_keyed(&list, key)?;
    }
    Ok(list
        .into_iter()
        .partition(|item| index_of(by, item, key, maps).is_some()))
}

/// Sorts the patch items by `order` and the other items by `server_order`, then interleaves
/// them: another item goes first when both are in `server_order` and it comes first there.
fn normalize_order(
    listed: Vec<Value>,
    others: Vec<Value>,
    order: &[Value],
    server_order: &[Value],
    key: &str,
    maps: bool,
) -> Result<Vec<Value>> {
    let listed = sort_by_order(listed, order, key, maps)?;
    let others = sort_by_order(others, server_order, key, maps)?;
    let mut out = Vec::with_capacity(listed.len() + others.len());
    let mut left = others.into_iter().peekable();
    let mut right = listed.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, key, maps), index_of(server_order, r, key, maps)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    Ok(out)
}

// --- Merging the deletions patch with the delta patch (upstream's `mergeMap` without merging
// parallel lists and keeping unmatched nulls)

fn merge_patches(mut original: Obj, mut patch: Obj, node: Node<'_>) -> Result<Obj> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Obj::new()),
            _ => Err(bad_patch_type(directive, &Value::Object(patch.clone()))),
        };
    }
    if let Some(retain) = patch.remove(RETAIN_KEYS) {
        let existing = original.entry(RETAIN_KEYS).or_insert_with(|| retain.clone());
        if *existing != retain {
            return Err(PatchError::PatchesDisagree(format!(
                "{} and {} are not deep equal: this may happen when calculating the 3-way diff patch",
                compact(existing),
                compact(&retain)
            )));
        }
    }
    merge_ordered_lists(&mut original, &mut patch, node)?;

    for (key, value) in patch {
        if key.starts_with(DELETE_PREFIX) || value.is_null() {
            original.insert(key, value);
            continue;
        }
        let (child, meta) = node.field(&key);
        let (_, strategy) = strategy(&meta)?;
        let key_of = meta.merge_key.unwrap_or("");
        // Values of different types, scalars and replaced maps and lists: the patch's value.
        let merged = match (original.remove(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) if strategy != "replace" => {
                Value::Object(merge_patches(old, new, child)?)
            }
            (Some(Value::Array(old)), Value::Array(new)) if strategy == "merge" => {
                Value::Array(merge_lists(old, new, child.items(), key_of)?)
            }
            (_, value) => value,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// The `$setElementOrder` directives of `patch`: kept once in `original` (both patches must
/// agree), and their lists merged and put in that order.
fn merge_ordered_lists(original: &mut Obj, patch: &mut Obj, node: Node<'_>) -> Result<()> {
    let keys: Vec<String> = patch.keys().filter(|k| k.starts_with(ORDER_PREFIX)).cloned().collect();
    for directive in keys {
        let Some(order) = patch.remove(&directive) else {
            continue;
        };
        if *original.entry(directive.clone()).or_insert_with(|| order.clone()) != order {
            return Err(PatchError::BadSetElementOrderFormat);
        }
        let Value::Array(order) = order else {
            return Err(expected_list(&order));
        };
        let field = match directive.split_once('/') {
            Some((ORDER_PREFIX, field)) => field.to_string(),
            _ => return Err(PatchError::BadSetElementOrderFormat),
        };
        let old = list_field(original.get(&field).cloned())?;
        let new = list_field(patch.remove(&field))?;
        let (child, meta) = node.field(&field);
        let (_, strategy) = strategy(&meta)?;
        let key = meta.merge_key.unwrap_or("");
        let maps = element_kind(old.as_deref().unwrap_or(&[]), new.as_deref().unwrap_or(&[]))?.unwrap_or(false);
        let merged = match (old.clone(), new) {
            (None, None) => continue,
            (Some(old), None) => old,
            (None, Some(new)) => new,
            (Some(old), Some(new)) if strategy == "merge" => merge_lists(old, new, child.items(), key)?,
            (Some(_), Some(new)) => new,
        };
        let (listed, others) = partition(merged, &order, key, maps)?;
        let both = normalize_order(listed, others, &order, old.as_deref().unwrap_or(&[]), key, maps)?;
        original.insert(field, Value::Array(both));
    }
    Ok(())
}

fn list_field(value: Option<Value>) -> Result<Option<Vec<Value>>> {
    match value {
        Some(Value::Array(list)) => Ok(Some(list)),
        Some(other) => Err(expected_list(&other)),
        None => Ok(None),
    }
}

/// Merges two patch lists of a field with strategy `merge` (upstream's `mergeSlice`): deletion
/// lists stay as they are, items with the same merge key merge.
fn merge_lists(mut original: Vec<Value>, patch: Vec<Value>, items: Node<'_>, key: &str) -> Result<Vec<Value>> {
    let Some(maps) = element_kind(&original, &patch)? else {
        return Ok(original);
    };
    if !maps {
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        let merged = dedup_scalars(both);
        let (listed, others) = partition(merged, &patch, "", false)?;
        return normalize_order(listed, others, &patch, &original, "", false);
    }
    if key.is_empty() {
        return Err(PatchError::NoMergeKeyDeclared("type map".into()));
    }
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let id = merge_id(&item, key)?;
                original.retain(|o| o.get(key) != Some(id));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeDirectiveInList),
            _ => return Err(bad_patch_type(directive, &item)),
        }
    }
    if replace {
        original = std::mem::take(&mut plain);
    }
    let mut merged = original.clone();
    for item in &plain {
        let id = merge_id(item, key)?;
        match merged.iter().position(|m| m.get(key) == Some(id)) {
            Some(i) => match (std::mem::take(&mut merged[i]), item) {
                (Value::Object(old), Value::Object(new)) => {
                    merged[i] = Value::Object(merge_patches(old, new.clone(), items)?);
                }
                (old, _) => return Err(expected_map(&old)),
            },
            None => merged.push(item.clone()),
        }
    }
    let (listed, others) = partition(merged, &plain, key, true)?;
    normalize_order(listed, others, &plain, &original, key, true)
}

// --- Conflicts (upstream's `MergingMapsHaveConflicts`)

fn fields_conflict(left: &Value, right: &Value, node: Node<'_>, strategy: &str, key: &str) -> Result<bool> {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            // A directive acts on the whole map: both must carry the same one.
            let (lm, rm) = (l.get(DIRECTIVE), r.get(DIRECTIVE));
            if (lm.is_some() || rm.is_some()) && lm != rm {
                return Ok(true);
            }
            if strategy == "replace" {
                return Ok(false);
            }
            maps_conflict(l, r, node)
        }
        (Value::Array(l), Value::Array(r)) => lists_conflict(l, r, node, strategy, key),
        (Value::Object(_) | Value::Array(_), _) => Ok(true),
        _ => Ok(left != right),
    }
}

fn maps_conflict(left: &Obj, right: &Obj, node: Node<'_>) -> Result<bool> {
    for (key, l) in left {
        if key == DIRECTIVE || key == RETAIN_KEYS {
            continue;
        }
        let Some(r) = right.get(key) else {
            continue;
        };
        let (child, meta) = node.field(key);
        let (_, strategy) = strategy(&meta)?;
        if fields_conflict(l, r, child, strategy, meta.merge_key.unwrap_or(""))? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lists_conflict(left: &[Value], right: &[Value], node: Node<'_>, strategy: &str, key: &str) -> Result<bool> {
    let Some(maps) = element_kind(left, right)? else {
        return Ok(false);
    };
    let items = node.items();
    if strategy == "merge" {
        if !maps {
            // Merging lists of primitives never conflict.
            return Ok(false);
        }
        let id = |item: &Value| merge_id(item, key).map(go_string);
        let right = right.iter().map(|r| Ok((id(r)?, r))).collect::<Result<Vec<_>>>()?;
        for l in left {
            let lid = id(l)?;
            if let Some((_, r)) = right.iter().find(|(rid, _)| *rid == lid)
                && fields_conflict(l, r, items, "", "")?
            {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if left.len() != right.len() {
        return Ok(true);
    }
    let (mut left, mut right) = (left.to_vec(), right.to_vec());
    if !maps {
        left = dedup_scalars(left);
        left.sort_by_key(go_string);
        right = dedup_scalars(right);
        right.sort_by_key(go_string);
    }
    for (l, r) in left.iter().zip(&right) {
        if fields_conflict(l, r, items, "", "")? {
            return Ok(true);
        }
    }
    Ok(false)
}
