//! Validation helpers shared by the kinds: names, labels, metadata, quantities.

pub mod common;
pub mod meta;
pub mod names;
pub mod quantity;

pub use names::{is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value};
