//! `kubectl`: thin entry point.

fn main() {
    std::process::exit(kubectl::main_with_args(std::env::args().collect()));
}
