//! kubelet: the node agent. Registers its Node, heartbeats a Lease, runs the pods bound to it
//! (and static pods) with the built-in runtime, reports their status and serves their logs.

pub mod attach;
pub mod flags;
pub mod hostports;
pub mod image_gc;
pub mod logs;
pub mod machine;
pub mod network;
pub mod node;
pub mod pods;
pub mod portforward;
pub mod resource_metrics;
pub mod run;
pub mod server;
pub mod static_pods;
mod stream_spdy;
pub mod streaming;

pub use flags::Options;
