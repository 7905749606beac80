//! The `smbchaos` command line's library half: the terminal progress reporter (the binary is
//! `main.rs`). The product lives in the crates it drives: plan → lab → run → history → check →
//! report.

pub mod progress;
