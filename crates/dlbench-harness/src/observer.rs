//! Progress reporting: the [`Observer`] trait through which runs, agreement checks, timing
//! loops and workers report what they are doing, so that the binary can draw bars (and a
//! worker can forward the events to its orchestrator) while the library itself stays silent.

/// Receives progress, so the binary can draw bars while the library stays silent.
pub trait Observer {
    /// A new phase of `total` units begins (`label`: backend, device, what).
    fn begin(&mut self, label: &str, total: u64);
    /// `done` units of the current phase are finished.
    fn advance(&mut self, done: u64, message: &str);
    /// The current phase ended with this one-line outcome.
    fn end(&mut self, outcome: &str);
}
