//! dlbench-harness: spec files, training and evaluation runs, and the `dlbench.results/v1`
//! record. It sees backends only through the `dlbench-core` traits.

pub mod spec;
