//! Validation helpers shared by the kinds: names, labels, metadata, quantities.

pub mod common;
pub mod meta;
pub mod names;
pub mod quantity;
