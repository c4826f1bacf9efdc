//! kube-proxy: programs iptables for Services.
//!
//! Not built yet: see issue 6. The binary refuses to run rather than pretend.

/// The issue that will deliver this component.
pub const TRACKING_ISSUE: u32 = 6;
