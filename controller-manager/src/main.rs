//! `kube-controller-manager`: thin entry point.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "kube-controller-manager is not implemented yet in kaji (tracking issue {})",
        controller_manager::TRACKING_ISSUE
    )
}
