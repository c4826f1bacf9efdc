//! `kube-proxy`: thin entry point.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "kube-proxy is not implemented yet in kaji (tracking issue {})",
        proxy::TRACKING_ISSUE
    )
}
