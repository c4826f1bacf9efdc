//! `kubelet`: thin entry point.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "kubelet is not implemented yet in kaji (tracking issue {})",
        kubelet::TRACKING_ISSUE
    )
}
