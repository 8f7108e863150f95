//! Twins: backends that compute exactly what the f64 reference does, two at its speed and one
//! slowed by 10% on purpose, so that a test knows the truth that `dlbench compare` must find:
//! the slowed twin is `slower` than its twin, the other twin `no significant change`.
//!
//! The slowdown is proportional, not a fixed delay: each timed call (forward, backward,
//! training step) is timed and followed by a busy wait of a tenth of its own time, so the
//! ratio holds at every batch size and whatever state the machine is in.

use std::time::Instant;

use dlbench_core::{Backend, Capabilities, Model, PrepareOptions, Result, Session};
use dlbench_reference::ReferenceBackend;

use crate::wrapped::{Around, TimedCall, Wrapped};

/// The slowed twin's extra time, as a fraction of each timed call's own.
pub const SLOWDOWN: f64 = 0.10;

/// A twin of the reference, slowed by `slowdown` of its own time.
#[derive(Debug, Clone, Copy)]
pub struct Twin {
    /// The backend name.
    pub name: &'static str,
    /// 0 for a true twin, [`SLOWDOWN`] for the slowed one.
    pub slowdown: f64,
}

/// `test-twin-a` and `test-twin-b` at the reference's speed, `test-twin-slowed` 10% slower.
pub const TWINS: [Twin; 3] = [
    Twin {
        name: "test-twin-a",
        slowdown: 0.0,
    },
    Twin {
        name: "test-twin-b",
        slowdown: 0.0,
    },
    Twin {
        name: "test-twin-slowed",
        slowdown: SLOWDOWN,
    },
];

impl Backend for Twin {
    fn name(&self) -> &'static str {
        self.name
    }

    fn version(&self) -> String {
        "test".into()
    }

    fn capabilities(&self) -> Capabilities {
        ReferenceBackend.capabilities()
    }

    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(Wrapped {
            inner: ReferenceBackend.prepare(model, options)?,
            around: Slowed(self.slowdown),
        }))
    }
}

/// Waits, after each timed call, this fraction of the time the call took.
struct Slowed(f64);

impl Around for Slowed {
    /// Makes the call, then waits (busily, as compute would) its share of the time it took.
    fn around(&mut self, call: TimedCall, inner: &mut dyn Session) -> Result<()> {
        let started = Instant::now();
        let result = call.run(inner);
        if self.0 > 0.0 {
            let until = started + started.elapsed().mul_f64(1.0 + self.0);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        result
    }
}

/// Every twin.
pub fn backends() -> Vec<Box<dyn Backend>> {
    TWINS
        .iter()
        .map(|&twin| Box::new(twin) as Box<dyn Backend>)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use dlbench_core::{Mode, Values};

    /// A session whose forward pass takes 2 ms.
    struct Sleeper;

    impl Session for Sleeper {
        fn load(&mut self, _: &Values) -> Result<()> {
            Ok(())
        }
        fn forward(&mut self, _: Mode) -> Result<()> {
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        }
        fn backward(&mut self) -> Result<()> {
            Ok(())
        }
        fn train_step(&mut self) -> Result<()> {
            Ok(())
        }
        fn outputs(&mut self) -> Result<Values> {
            Ok(Values::new())
        }
        fn intermediates(&mut self) -> Result<Values> {
            Ok(Values::new())
        }
        fn gradients(&mut self) -> Result<Values> {
            Ok(Values::new())
        }
        fn weights(&mut self) -> Result<Values> {
            Ok(Values::new())
        }
    }

    #[test]
    fn the_slowed_twin_takes_a_tenth_longer_than_its_call() {
        let mut session = Wrapped {
            inner: Box::new(Sleeper),
            around: Slowed(SLOWDOWN),
        };
        let started = Instant::now();
        session.forward(Mode::Inference).unwrap();
        // The sleep took at least 2 ms, the wait a tenth of however long it took.
        assert!(started.elapsed() >= Duration::from_micros(2200));
        let names: Vec<&str> = backends().iter().map(|b| b.name()).collect();
        assert_eq!(names, ["test-twin-a", "test-twin-b", "test-twin-slowed"]);
    }
}
