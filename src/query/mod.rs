//! Query: plan (parse and check parameters) → exec (merge segments with the journal tail)
//! → agg (pure bucket folding). Reads only; the HTTP layer and the CLI format the results.

pub mod agg;
pub mod exec;
pub mod plan;

pub use agg::{Agg, Bucketing};
pub use exec::{run, run_chunked, run_pairs, RawPoint, ScanStats, SeriesResult};
pub use plan::{Mode, Params, Plan, PlanError};
