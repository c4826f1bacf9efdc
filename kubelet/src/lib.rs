//! kubelet: the node agent with a built-in OCI runtime.
//!
//! Not built yet: see issue 4. The binary refuses to run rather than pretend.

/// The issue that will deliver this component.
pub const TRACKING_ISSUE: u32 = 4;
