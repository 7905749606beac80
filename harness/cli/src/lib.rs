//! smbchaos: plan → lab → workload and nemesis → history → checkers → verdict → results.

pub mod checker;
pub mod events;
pub use history;
pub mod junit;
pub mod nemesis;
pub mod progress;
pub mod report;
pub mod results;
pub mod runner;
pub mod sampler;
pub mod verdict;
pub mod workload;
