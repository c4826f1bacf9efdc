//! kube-scheduler: assigns pods to nodes.
//!
//! Not built yet: see issue 5. The binary refuses to run rather than pretend.

/// The issue that will deliver this component.
pub const TRACKING_ISSUE: u32 = 5;
