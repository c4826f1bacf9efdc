//! `kubectl`: thin entry point.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "kubectl is not implemented yet in kaji (tracking issue {})",
        kubectl::TRACKING_ISSUE
    )
}
