//! The reference's session with its timed calls altered: what [`crate::faults`] and
//! [`crate::twins`] share. A double says what it does around a timed call ([`Around`]); the
//! untimed calls reach the reference unchanged.

use dlbench_core::{Mode, Result, Session, Values};

/// A timed call of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimedCall {
    Forward(Mode),
    Backward,
    TrainStep,
}

impl TimedCall {
    /// Makes the call on `session`, unaltered.
    pub(crate) fn run(self, session: &mut dyn Session) -> Result<()> {
        match self {
            TimedCall::Forward(mode) => session.forward(mode),
            TimedCall::Backward => session.backward(),
            TimedCall::TrainStep => session.train_step(),
        }
    }
}

/// What a test double does in place of a timed call of the reference's session.
pub(crate) trait Around {
    /// Makes `call` on `inner` (by [`TimedCall::run`]), altered as the double does.
    fn around(&mut self, call: TimedCall, inner: &mut dyn Session) -> Result<()>;
}

/// `inner`, the reference's session, with its timed calls passed through `around`.
pub(crate) struct Wrapped<A> {
    pub(crate) inner: Box<dyn Session>,
    pub(crate) around: A,
}

impl<A: Around> Session for Wrapped<A> {
    fn load(&mut self, inputs: &Values) -> Result<()> {
        self.inner.load(inputs)
    }
    fn forward(&mut self, mode: Mode) -> Result<()> {
        self.around
            .around(TimedCall::Forward(mode), self.inner.as_mut())
    }
    fn backward(&mut self) -> Result<()> {
        self.around.around(TimedCall::Backward, self.inner.as_mut())
    }
    fn train_step(&mut self) -> Result<()> {
        self.around
            .around(TimedCall::TrainStep, self.inner.as_mut())
    }
    fn outputs(&mut self) -> Result<Values> {
        self.inner.outputs()
    }
    fn intermediates(&mut self) -> Result<Values> {
        self.inner.intermediates()
    }
    fn gradients(&mut self) -> Result<Values> {
        self.inner.gradients()
    }
    fn weights(&mut self) -> Result<Values> {
        self.inner.weights()
    }
}
