//! Structure-aware mutation. An input is a pure function of (seed corpus, run seed, index), so
//! the supervisor can name any input by its index, a restarted worker resumes where the last
//! one died, and a failure found once is found again.
//!
//! Mutations know the formats they feed: numbers in text are swapped for the values that
//! break arithmetic (2^32, 2^62, `u64::MAX`, NaN), each target has a dictionary of its own
//! tokens, and containers with checksums (zip, safetensors' length prefix) are opened, one part
//! mutated and closed again, so that the mutation reaches the parser behind the checksum.

use std::io::{Cursor, Read, Write};

/// Inputs grow no larger than this (the spec size limit is 1 MiB too).
pub const MAX_INPUT: usize = 1 << 20;

/// A small, fast, seedable generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    /// The generator for input `index` of a run seeded with `seed`.
    pub fn for_input(seed: u64, index: u64) -> Rng {
        let mut rng = Rng(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.bits();
        rng
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n.max(1) as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers, as text, that overflow, wrap, divide by zero or are not finite.
pub const INTERESTING_TEXT: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "255",
    "65536",
    "2147483647",
    "2147483649",
    "4294967295",
    "4294967296",
    "1000000000",
    "1000000000000",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    ".nan",
    "inf",
    "-inf",
    ".inf",
    "NaN",
    "0.5",
    "-0",
    "1e1000",
];

/// Integers worth writing as raw little-endian bytes.
const INTERESTING_INTS: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,
];

/// Applies 1 to 6 stacked mutations to `input` (one half of the time, two a quarter, ...: most
/// inputs stay close enough to valid to reach past the first check), drawing tokens from
/// `dictionary` and splices from `corpus`.
pub fn mutate_bytes(rng: &mut Rng, input: &mut Vec<u8>, dictionary: &[&[u8]], corpus: &[Vec<u8>]) {
    let count = 1 + rng.bits().trailing_zeros().min(5);
    for _ in 0..count {
        mutate_once(rng, input, dictionary, corpus);
        input.truncate(MAX_INPUT);
    }
}

fn mutate_once(rng: &mut Rng, input: &mut Vec<u8>, dictionary: &[&[u8]], corpus: &[Vec<u8>]) {
    let len = input.len();
    let at = rng.below(len + 1);
    match rng.below(14) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, b'0', b'9', b'-', b'\n', b'"']);
        }
        2 => {
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.bits() as u8).collect();
            input.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let end = (at + 1 + rng.below(64)).min(len);
            input.drain(at.min(len - 1)..end);
        }
        4 if len > 0 => {
            // A chunk repeated: long lines, many rows, many list items.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            let chunk = input[start..end].to_vec();
            let times = *rng.pick(&[1usize, 2, 16, 256, 4096]);
            let repeated: Vec<u8> = chunk
                .iter()
                .copied()
                .cycle()
                .take(chunk.len() * times)
                .collect();
            input.splice(at..at, repeated);
        }
        5 if !corpus.is_empty() => {
            let other = rng.pick(corpus);
            if !other.is_empty() {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(256)).min(other.len());
                let cut = (at + rng.below(64)).min(len);
                input.splice(at..cut, other[start..end].iter().copied());
            }
        }
        6 | 7 if !dictionary.is_empty() => {
            let token = rng.pick(dictionary);
            input.splice(at..at, token.iter().copied());
        }
        8 | 9 => replace_number(rng, input),
        10 => {
            let value = *rng.pick(INTERESTING_INTS);
            let width = *rng.pick(&[1usize, 2, 4, 8]);
            let bytes = value.to_le_bytes();
            let end = (at + width).min(len);
            input.splice(at..end, bytes[..width].iter().copied());
        }
        11 if len > 0 => input.truncate(rng.below(len)),
        12 => mutate_lines(rng, input),
        _ => {
            // Nesting: flow brackets, block maps and lists, many levels deep.
            const OPENERS: [&[u8]; 6] = [b"[", b"{a: ", b"- ", b"{", b"(", b"\n  a:"];
            let opener = *rng.pick(&OPENERS);
            let times = *rng.pick(&[2usize, 64, 65, 1000, 20000]);
            let nested: Vec<u8> = opener
                .iter()
                .copied()
                .cycle()
                .take(opener.len() * times)
                .collect();
            input.splice(at..at, nested);
        }
    }
}

/// Replaces a run of digits (or inserts, if there is none) with an interesting number.
fn replace_number(rng: &mut Rng, input: &mut Vec<u8>) {
    let text = rng.pick(INTERESTING_TEXT).as_bytes();
    let digits: Vec<usize> = (0..input.len())
        .filter(|&i| input[i].is_ascii_digit())
        .collect();
    if digits.is_empty() {
        let at = rng.below(input.len() + 1);
        input.splice(at..at, text.iter().copied());
        return;
    }
    let mut start = *rng.pick(&digits);
    while start > 0 && (input[start - 1].is_ascii_digit() || input[start - 1] == b'.') {
        start -= 1;
    }
    let mut end = start;
    while end < input.len() && (input[end].is_ascii_digit() || input[end] == b'.') {
        end += 1;
    }
    input.splice(start..end, text.iter().copied());
}

/// Duplicates, deletes or swaps whole lines.
fn mutate_lines(rng: &mut Rng, input: &mut Vec<u8>) {
    let mut lines: Vec<Vec<u8>> = input.split(|&b| b == b'\n').map(|l| l.to_vec()).collect();
    let i = rng.below(lines.len());
    let j = rng.below(lines.len());
    match rng.below(3) {
        0 => {
            let line = lines[i].clone();
            lines.insert(j, line);
        }
        1 if lines.len() > 1 => {
            lines.remove(i);
        }
        _ => lines.swap(i, j),
    }
    *input = lines.join(&b'\n');
}

/// The members of a zip archive, in order, or `None` if it is not one.
pub fn unzip(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut members = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).ok()?;
        let mut data = Vec::new();
        file.by_ref()
            .take(MAX_INPUT as u64)
            .read_to_end(&mut data)
            .ok()?;
        members.push((file.name().to_string(), data));
    }
    Some(members)
}

/// A zip archive of `members`, stored or deflated.
pub fn zip_members(members: &[(String, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in members {
        // Writing to memory fails only on names zip cannot hold; such a member is dropped.
        if writer.start_file(name.as_str(), options).is_ok() {
            let _ = writer.write_all(data);
        }
    }
    writer.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// Gzips `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}
