//! `kaji`: thin entry point.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = kaji::Cli::parse();
    kaji::run(cli)
}
