//! The limits that keep a crafted or mistaken input from exhausting the machine: how much
//! memory a model and its data may need, how far a compressed file may expand, how large and
//! how deep a spec may be, how many nodes a graph and how many threads a run may have.
//!
//! Every reader checks sizes against these limits *before* it allocates, with checked
//! arithmetic, so that an input which cannot fit is refused as bad input (exit code 2) naming
//! the file, field or layer and the size, instead of aborting the process. Each limit has a
//! documented default and an environment variable that raises it (see `docs/limits.md`):
//!
//! | variable                    | default                                  |
//! |-----------------------------|------------------------------------------|
//! | `DLBENCH_MAX_MEMORY`        | half the machine's physical memory       |
//! | `DLBENCH_MAX_DECOMPRESSED`  | 4 GiB                                    |
//! | `DLBENCH_MAX_EXPANSION`     | 20 (x the compressed size, at least 64 MiB) |
//! | `DLBENCH_MAX_SPEC_BYTES`    | 1 MiB                                    |
//! | `DLBENCH_MAX_SPEC_DEPTH`    | 64                                       |
//! | `DLBENCH_MAX_NODES`         | 10000                                    |
//! | `DLBENCH_MAX_THREADS`       | 1024                                     |
//!
//! Sizes accept a plain byte count or a suffix `K`, `M`, `G`, `T` (powers of 1024).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Bytes a compressed input may always expand to, whatever its compressed size: small files
/// of real data compress well and must not be refused.
pub const EXPANSION_FLOOR: u64 = 64 << 20;

/// The limits in force; [`Limits::from_env`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one run's model and data may need (weights, gradients, optimizer state, one
    /// batch's activations, the dataset), and the most any one file may be read into memory.
    pub memory_bytes: u64,
    /// Bytes any one compressed input (a `.gz` file, a zip entry) may expand to.
    pub decompressed_bytes: u64,
    /// Decompressed bytes per compressed byte, above [`EXPANSION_FLOOR`].
    pub expansion_ratio: u64,
    /// Bytes of a spec file.
    pub spec_bytes: u64,
    /// Nesting depth of a spec's YAML (flow brackets and block indentation levels).
    pub spec_depth: usize,
    /// Nodes (layers) of one graph.
    pub nodes: usize,
    /// Threads of one backend run.
    pub threads: usize,
}

/// One limit: its field, its variable and how to read the default.
struct Variable {
    name: &'static str,
    what: &'static str,
}

const MEMORY: Variable = Variable {
    name: "DLBENCH_MAX_MEMORY",
    what: "memory",
};
const DECOMPRESSED: Variable = Variable {
    name: "DLBENCH_MAX_DECOMPRESSED",
    what: "decompressed size",
};
const EXPANSION: Variable = Variable {
    name: "DLBENCH_MAX_EXPANSION",
    what: "expansion ratio",
};
const SPEC_BYTES: Variable = Variable {
    name: "DLBENCH_MAX_SPEC_BYTES",
    what: "spec size",
};
const SPEC_DEPTH: Variable = Variable {
    name: "DLBENCH_MAX_SPEC_DEPTH",
    what: "spec nesting depth",
};
const NODES: Variable = Variable {
    name: "DLBENCH_MAX_NODES",
    what: "number of nodes",
};
const THREADS: Variable = Variable {
    name: "DLBENCH_MAX_THREADS",
    what: "number of threads",
};

impl Limits {
    /// The defaults, on a machine with `physical_memory` bytes.
    pub fn defaults(physical_memory: u64) -> Limits {
        Limits {
            memory_bytes: (physical_memory / 2).max(1 << 30),
            decompressed_bytes: 4 << 30,
            // Numeric CSVs gzip 3-10x; 20x leaves room while keeping a 3 MB bomb's text to
            // 60 MB, whose parsed values stay far below 1 GB.
            expansion_ratio: 20,
            spec_bytes: 1 << 20,
            spec_depth: 64,
            nodes: 10_000,
            threads: 1024,
        }
    }

    /// The limits in force: the defaults for this machine, each raised or lowered by its
    /// environment variable. A variable that is set but not a positive size is an error
    /// naming it.
    pub fn from_env() -> Result<Limits> {
        Limits::from_lookup(physical_memory(), |name| std::env::var(name).ok())
    }

    /// [`Limits::from_env`] with the environment given by `lookup` (for tests).
    pub fn from_lookup(
        physical_memory: u64,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Limits> {
        let d = Limits::defaults(physical_memory);
        let size = |v: &Variable, default: u64| -> Result<u64> {
            match lookup(v.name) {
                None => Ok(default),
                Some(text) => parse_size(&text).ok_or_else(|| {
                    Error::invalid(format!(
                        "{} (the {} limit) is `{text}`: expected a positive size such as \
                         `512M`, `16G` or a byte count",
                        v.name, v.what
                    ))
                }),
            }
        };
        let count = |v: &Variable, default: usize| -> Result<usize> {
            size(v, default as u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok(Limits {
            memory_bytes: size(&MEMORY, d.memory_bytes)?,
            decompressed_bytes: size(&DECOMPRESSED, d.decompressed_bytes)?,
            expansion_ratio: size(&EXPANSION, d.expansion_ratio)?,
            spec_bytes: size(&SPEC_BYTES, d.spec_bytes)?,
            spec_depth: count(&SPEC_DEPTH, d.spec_depth)?,
            nodes: count(&NODES, d.nodes)?,
            threads: count(&THREADS, d.threads)?,
        })
    }

    /// Refuses `bytes` of memory for `what` (a layer, a dataset, a file) over the memory
    /// limit; the error names `what`, the size, the limit and how to raise it.
    pub fn check_memory(&self, what: &str, bytes: u64) -> Result<()> {
        check(what, "needs", bytes, self.memory_bytes, &MEMORY)
    }

    /// Refuses a graph of more than [`Limits::nodes`] nodes.
    pub fn check_nodes(&self, what: &str, nodes: usize) -> Result<()> {
        if nodes > self.nodes {
            return Err(Error::invalid(format!(
                "{what} has {nodes} nodes, over the limit of {} ({}; set it higher to allow more)",
                self.nodes, NODES.name
            )));
        }
        Ok(())
    }

    /// Refuses a thread count over [`Limits::threads`].
    pub fn check_threads(&self, what: &str, threads: usize) -> Result<()> {
        if threads > self.threads {
            return Err(Error::invalid(format!(
                "{what}: {threads} threads is over the limit of {} ({}; set it higher to allow \
                 more)",
                self.threads, THREADS.name
            )));
        }
        Ok(())
    }

    /// Refuses a spec file of `bytes` over [`Limits::spec_bytes`].
    pub fn check_spec_bytes(&self, what: &str, bytes: u64) -> Result<()> {
        check(what, "is", bytes, self.spec_bytes, &SPEC_BYTES)
    }

    /// The most bytes a compressed input of `compressed` bytes may expand to.
    pub fn decompressed_cap(&self, compressed: u64) -> u64 {
        compressed
            .saturating_mul(self.expansion_ratio)
            .max(EXPANSION_FLOOR)
            .min(self.decompressed_bytes)
            .min(self.memory_bytes)
    }

    /// A message for a compressed input that expanded past `cap` bytes.
    pub fn decompression_message(&self, cap: u64) -> String {
        format!(
            "expands to more than {} (at most {}x its compressed size, at least {}, and at most \
             {}: a decompression bomb or a file too large; raise {}, {} or {} to allow it)",
            format_bytes(cap),
            self.expansion_ratio,
            format_bytes(EXPANSION_FLOOR),
            format_bytes(self.decompressed_bytes.min(self.memory_bytes)),
            EXPANSION.name,
            DECOMPRESSED.name,
            MEMORY.name
        )
    }
}

fn check(what: &str, verb: &str, bytes: u64, limit: u64, v: &Variable) -> Result<()> {
    if bytes > limit {
        return Err(Error::invalid(format!(
            "{what} {verb} {}, over the {} limit of {} ({}; set it higher to allow more)",
            format_bytes(bytes),
            v.what,
            format_bytes(limit),
            v.name
        )));
    }
    Ok(())
}

/// A positive byte count, with an optional `K`/`M`/`G`/`T` suffix (powers of 1024, an
/// optional trailing `B` or `iB`).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 10),
        (i, 'M' | 'm') => (&t[..i], 20),
        (i, 'G' | 'g') => (&t[..i], 30),
        (i, 'T' | 't') => (&t[..i], 40),
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    let n = n.checked_mul(1u64 << shift)?;
    (n > 0).then_some(n)
}

/// `1.5 GiB`, `64 MiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The machine's physical memory in bytes (`MemTotal` of `/proc/meminfo`), or 8 GiB where it
/// cannot be read.
pub fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
        .unwrap_or(8 << 30)
}

/// The number of elements of `shape`, or `None` when it overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The bytes of `elements` values of `bytes_per_element` each, saturating (a saturated size
/// is always over any limit).
pub fn bytes_of(elements: usize, bytes_per_element: usize) -> u64 {
    (elements as u64).saturating_mul(bytes_per_element as u64)
}

/// Reads the whole of `path`: a regular file over `cap` bytes is refused before anything is
/// allocated, and anything else (a pipe, a device such as `/dev/zero`) is stopped at `cap`.
/// `what` says what the file is for (`the spec`, `the model`) in the error.
pub fn read_file(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let too_large = |size: &str| {
        Error::file(
            path,
            format!(
                "{what} is {size}, over the {} allowed for it; see docs/limits.md to raise it",
                format_bytes(cap)
            ),
        )
    };
    if len > cap {
        return Err(too_large(&format_bytes(len)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    BoundedReader::new(file, cap)
        .read_to_end(&mut bytes)
        .map_err(|e| match is_over_cap(&e) {
            true => too_large(&format!("more than {}", format_bytes(cap))),
            false => Error::io(path, e),
        })?;
    Ok(bytes)
}

/// A reader that fails once more than `cap` bytes have come through it, so that a stream of
/// unknown length (a decompressor, a pipe, `/dev/zero`) cannot grow a buffer without end.
#[derive(Debug)]
pub struct BoundedReader<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R: Read> BoundedReader<R> {
    /// `inner`, of which at most `cap` bytes may be read.
    pub fn new(inner: R, cap: u64) -> Self {
        BoundedReader {
            inner,
            left: cap,
            cap,
        }
    }

    /// Bytes read so far.
    pub fn consumed(&self) -> u64 {
        self.cap - self.left
    }
}

/// The error a [`BoundedReader`] returns past its cap; [`is_over_cap`] recognises it.
#[derive(Debug)]
struct OverCap(u64);

impl std::fmt::Display for OverCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} of content", format_bytes(self.0))
    }
}

impl std::error::Error for OverCap {}

/// Whether `error` is a [`BoundedReader`] refusing to read past its cap.
pub fn is_over_cap(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<OverCap>().is_some())
}

impl<R: Read> Read for BoundedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // At the cap: one more byte means the content is too large; none means it ended.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(OverCap(self.cap))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("2 MiB"), Some(2 << 20));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn a_bad_variable_is_named() {
        let err = Limits::from_lookup(1 << 34, |n| {
            (n == "DLBENCH_MAX_NODES").then(|| "many".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("DLBENCH_MAX_NODES"), "{err}");
        let limits = Limits::from_lookup(1 << 34, |n| {
            (n == "DLBENCH_MAX_MEMORY").then(|| "3G".to_string())
        })
        .unwrap();
        assert_eq!(limits.memory_bytes, 3 << 30);
        assert_eq!(limits.nodes, 10_000);
    }

    #[test]
    fn memory_over_the_limit_is_refused_by_name() {
        let limits = Limits::defaults(16 << 30);
        assert!(limits.check_memory("layer `d`", 8 << 30).is_ok());
        let err = limits
            .check_memory("layer `d`", (8 << 30) + 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer `d`") && err.contains("DLBENCH_MAX_MEMORY"),
            "{err}"
        );
    }

    #[test]
    fn the_decompression_cap_scales_with_the_input_within_bounds() {
        let limits = Limits::defaults(16 << 30);
        assert_eq!(limits.decompressed_cap(1000), EXPANSION_FLOOR);
        assert_eq!(limits.decompressed_cap(10 << 20), 200 << 20);
        assert_eq!(limits.decompressed_cap(u64::MAX), 4 << 30);
    }

    #[test]
    fn the_bounded_reader_stops_at_its_cap_but_not_at_an_exact_end() {
        let mut exact = BoundedReader::new(&[1u8; 10][..], 10);
        let mut out = Vec::new();
        assert_eq!(exact.read_to_end(&mut out).unwrap(), 10);
        let mut over = BoundedReader::new(std::io::repeat(0), 1000);
        let err = over.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(is_over_cap(&err), "{err}");
        assert_eq!(over.consumed(), 1000);
    }

    #[test]
    fn reading_a_device_stops_at_the_cap() {
        let err = read_file(Path::new("/dev/zero"), 4096, "the spec")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/dev/zero") && err.contains("more than 4.0 KiB"),
            "{err}"
        );
    }

    #[test]
    fn element_counts_do_not_wrap() {
        assert_eq!(checked_numel(&[2, 3, 4]), Some(24));
        assert_eq!(checked_numel(&[1 << 32, 1 << 32, 1 << 32]), None);
        assert_eq!(bytes_of(usize::MAX, 4), u64::MAX);
    }
}
