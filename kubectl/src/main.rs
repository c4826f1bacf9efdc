//! `kubectl`: thin entry point.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("kubectl: being built on the kubectl branch")
}
