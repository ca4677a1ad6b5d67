//! The `billing` CLI (being built).
fn main() {}
