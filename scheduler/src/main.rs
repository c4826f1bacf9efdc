//! `kube-scheduler`: thin entry point.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "kube-scheduler is not implemented yet in kaji (tracking issue {})",
        scheduler::TRACKING_ISSUE
    )
}
