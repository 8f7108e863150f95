//! Reading a worker's two pipes on their own threads: stdout as protocol lines, each
//! parsed into a [`Line`], and stderr into a bounded [`Tail`] for failure messages.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use super::{Message, TAIL_BYTES, TAIL_LINES};

/// The longest stdout line read whole; a record with all its raw samples is a few MB.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// One line of the worker's stdout, as the reader thread found it.
pub(super) enum Line {
    Message(Message),
    /// Not a protocol message: the line (shortened) and why it does not parse.
    Stray(String),
}

/// Reads the worker's stdout on a thread, parsing each line; the channel closes at its end.
pub(super) fn read_messages(child: &mut Child) -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            let mut number = 0;
            while let Ok(true) = read_line_capped(&mut reader, &mut buf, MAX_MESSAGE_BYTES) {
                number += 1;
                let text = String::from_utf8_lossy(&buf);
                let line = match Message::from_line(&text) {
                    Ok(message) => Line::Message(message),
                    Err(e) => Line::Stray(format!("line {number}: `{}`: {e}", shorten(&text))),
                };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Keeps the tail of the worker's stderr in `tail` on a thread; the returned channel closes
/// when stderr ends.
pub(super) fn read_tail(child: &mut Child, tail: Arc<Mutex<Tail>>) -> mpsc::Receiver<()> {
    let (done, drained) = mpsc::channel::<()>();
    if let Some(stderr) = child.stderr.take() {
        thread::spawn(move || {
            // Dropped when this thread ends, which tells the waiting side stderr is drained.
            let _done = done;
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            while let Ok(true) = read_line_capped(&mut reader, &mut buf, TAIL_BYTES) {
                if let Ok(mut tail) = tail.lock() {
                    tail.push(String::from_utf8_lossy(&buf).trim_end().to_string());
                }
            }
        });
    }
    drained
}

/// Reads one line into `line` without its newline, keeping at most `max` bytes of it (the
/// rest is read and dropped, so one endless line cannot exhaust memory). False at the end.
fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    line.clear();
    let mut read_any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(read_any);
        }
        read_any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(true);
        }
    }
}

/// At most 200 characters of `text`, for quoting in an error.
fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// The last lines of the worker's stderr: at most [`TAIL_LINES`] lines and [`TAIL_BYTES`]
/// bytes, since a failing framework can print megabytes and only its last words matter.
#[derive(Debug, Default)]
pub(super) struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: usize,
}

impl Tail {
    pub(super) fn push(&mut self, line: String) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES || (self.bytes > TAIL_BYTES && self.lines.len() > 1) {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.dropped += 1;
            }
        }
    }

    /// The tail as a block for an error message.
    pub(super) fn render(&self) -> String {
        if self.lines.is_empty() {
            return "the worker's stderr was empty".into();
        }
        let mut text = if self.dropped > 0 {
            format!(
                "the worker's stderr, last {} lines ({} earlier dropped):",
                self.lines.len(),
                self.dropped
            )
        } else {
            "the worker's stderr:".to_string()
        };
        for line in &self.lines {
            text.push_str("\n  ");
            text.push_str(line);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_within_its_byte_budget() {
        let mut tail = Tail::default();
        for i in 0..100 {
            tail.push(format!("line {i}"));
        }
        assert_eq!(tail.lines.len(), TAIL_LINES);
        assert_eq!(tail.lines.back().unwrap(), "line 99");
        assert!(tail.render().contains("80 earlier dropped"));
        tail.push("x".repeat(TAIL_BYTES));
        assert_eq!(tail.lines.len(), 1);
        assert!(tail.bytes <= TAIL_BYTES);
    }

    #[test]
    fn an_endless_line_is_cut_and_the_next_one_read() {
        let text = format!("{}\nnext\n", "a".repeat(10_000));
        let mut reader = BufReader::with_capacity(64, text.as_bytes());
        let mut line = Vec::new();
        assert!(read_line_capped(&mut reader, &mut line, 100).unwrap());
        assert_eq!(line.len(), 100);
        assert!(read_line_capped(&mut reader, &mut line, 100).unwrap());
        assert_eq!(line, b"next");
        assert!(!read_line_capped(&mut reader, &mut line, 100).unwrap());
    }
}
