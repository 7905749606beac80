//! The runner: one plan through its lab, workload and nemesis to a history, the heals
//! verified, the history judged. It emits events (`events`) and never prints: reporters
//! (the terminal in `cli`, report.html and JUnit in `report`) render them.
//!
//! plan → lab → (workload ∥ nemesis ∥ sampler) → history → checkers → verdict → results.

pub mod cluster_watch;
pub mod environment;
pub mod events;
pub mod generator;
pub mod nemesis;
pub mod planset;
pub mod repro;
pub mod runner;
pub mod sampler;
pub mod shrink;
pub mod sweep;
pub mod verdict;
pub mod workload;
