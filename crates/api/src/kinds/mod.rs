//! Per-kind defaulting, validation and version conversion, one module per API group family.

pub mod apps;
pub mod batch;
pub mod core;
pub mod other;
pub mod rbac;

#[cfg(test)]
mod testutil;
