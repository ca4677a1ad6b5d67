//! Reliability tools (being built).
fn main() {}
