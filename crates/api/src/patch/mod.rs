//! Strategic merge patch (`application/strategic-merge-patch+json`) with the semantics of
//! upstream's apimachinery `pkg/util/strategicpatch` as the apiserver applies it, driven by the
//! patch metadata of the kind's OpenAPI schema ([`patch_meta`]).
//!
//! - Maps merge recursively; a `null` value deletes the key. `{"$patch": "replace"}` in a map
//!   replaces the original map, `{"$patch": "delete"}` deletes it.
//! - `$retainKeys: [...]` clears the original's keys not listed (every non-null key of the
//!   patch must be listed).
//! - Lists whose field has strategy `merge` merge: lists of maps by the field's merge key
//!   (matched items merge, `{"$patch": "delete", <key>: v}` removes, `{"$patch": "replace"}`
//!   makes the other items the whole list), lists of primitives as sets
//!   (`$deleteFromPrimitiveList/<field>` removes values). Other lists are replaced.
//! - `$setElementOrder/<field>` fixes the relative order of the listed items; items of the
//!   original that are not listed keep their place relative to the others, as upstream orders
//!   them (the patch's items and the original-only items interleaved by their positions in the
//!   original list).

mod merge;
pub(crate) mod meta;
#[cfg(test)]
mod tests;
mod three_way;
#[cfg(test)]
mod three_way_tests;

pub use merge::strategic_merge;
pub use meta::{FieldMeta, PatchMeta, patch_meta, patch_meta_for_kind};
pub use three_way::{three_way_merge_patch, two_way_merge_patch};

/// Why a strategic merge patch could not be applied. Messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not a JSON object.
    #[error("json: cannot unmarshal {0} into Go value of type map[string]interface {{}}")]
    NotAnObject(&'static str),
    /// `$deleteFromPrimitiveList` without a field name, or not a list.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// `$retainKeys` that is not a list.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// A patch key that `$retainKeys` does not list.
    #[error("patch content doesn't match retainKeys list")]
    RetainKeysMismatch,
    /// `$setElementOrder` without a field name.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// The patch's items are not in the order `$setElementOrder` gives.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch { patch: String, order: String },
    /// A list of lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// Items of different JSON types in one merged list.
    #[error("list element types are not identical: {0}")]
    MixedList(String),
    /// A value of the wrong JSON type where a map or list was needed.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    /// A merged list item without the merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    /// A `$patch` directive that is not valid where it is.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    /// `{"$patch": "merge"}` in a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A list of maps with strategy `merge` but no merge key.
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyDeclared(String),
    /// An invalid `x-kubernetes-patch-strategy`.
    #[error("unexpected patch strategy: {0}")]
    BadStrategy(String),
    /// A three-way patch (computed without overwrite) changes a field that was changed
    /// differently from the original to the current object. Upstream prints both as YAML;
    /// these are compact JSON.
    #[error("patch:\n{patch}\nconflicts with changes made from original to current:\n{changes}\n")]
    Conflict { patch: String, changes: String },
    /// The two halves of a three-way patch carry different directives for one map.
    #[error("{0}")]
    PatchesDisagree(String),
}

impl PatchError {
    /// The HTTP status upstream's apiserver answers with: 400 for malformed patches and
    /// directives, 422 for content the metadata rules out, 500 for the rest (upstream reports
    /// those as internal errors).
    pub fn code(&self) -> u16 {
        match self {
            PatchError::NotAnObject(_)
            | PatchError::BadPrimitiveListFormat
            | PatchError::BadRetainKeysFormat
            | PatchError::BadSetElementOrderFormat => 400,
            PatchError::ListOfLists | PatchError::RetainKeysMismatch => 422,
            _ => 500,
        }
    }
}
