//! kubectl: the command-line client.
//!
//! Not built yet: see issue 10. The binary refuses to run rather than pretend.

/// The issue that will deliver this component.
pub const TRACKING_ISSUE: u32 = 10;
