//! Running pods: the per-pod worker's decide step, status generation, environments.

pub mod container;
pub mod context;
pub mod env;
pub mod files;
pub mod manager;
pub mod plan;
pub mod pleg;
pub mod probes;
pub mod sources;
pub mod start;
pub mod status;
pub mod volumes;
pub mod worker;
