//! What the server knows about each kind: the resource registry that routing, discovery and
//! OpenAPI come from; per-kind defaulting, validation and version conversion; label and field
//! selectors. No I/O here.

pub mod field;
pub mod kinds;
pub mod limitrange;
pub mod managed;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod selector;
pub mod strategy;
pub mod table;
pub mod validation;

pub use field::FieldError;
pub use registry::{RESOURCES, ResourceDef, Subresource};
pub use strategy::{AdmitError, KindStrategy, Operation};
