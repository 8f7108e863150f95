//! Progress bars for long work, drawn on stderr (and only on a terminal).

use std::time::Duration;

use dlbench_harness::observer::Observer;
use indicatif::{ProgressBar, ProgressStyle};

/// Draws one bar per phase and prints each phase's outcome as a line.
#[derive(Default)]
pub struct Bars {
    bar: Option<ProgressBar>,
}

impl Observer for Bars {
    fn begin(&mut self, label: &str, total: u64) {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    fn advance(&mut self, done: u64, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            if !message.is_empty() {
                bar.set_message(message.to_string());
            }
        }
    }

    fn end(&mut self, outcome: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{outcome}");
    }
}
