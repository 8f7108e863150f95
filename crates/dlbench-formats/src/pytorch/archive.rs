//! The zip container of `torch.save` (PyTorch >= 1.6): every entry sits under one folder, the
//! archive name (`<archive>/data.pkl`, `<archive>/data/<key>`, `<archive>/byteorder`,
//! `<archive>/version`, ...). Entries are stored, not compressed, with their data 64-byte
//! aligned so that torch can memory-map them.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use dlbench_core::limits::Limits;
use zip::result::ZipError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::{Error, Result};

/// The largest `data.pkl` read: a state_dict's pickle is about 100 bytes per tensor, so this
/// bounds what a hostile (compressed) entry can make us allocate without limiting real files.
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// The most bytes read from a compressed entry (torch never compresses; other zip tools may).
pub const MAX_COMPRESSED_BYTES: u64 = 256 << 20;

/// Alignment of each entry's data, as torch writes it (`.storage_alignment`).
const ALIGNMENT: u16 = 64;

/// An open `torch.save` archive.
pub struct Archive {
    path: PathBuf,
    zip: ZipArchive<BufReader<File>>,
    /// The folder all entries live in.
    prefix: String,
    /// Bounds how far a compressed entry may expand.
    limits: Limits,
}

impl Archive {
    /// Opens `path` under the limits of the environment ([`Limits::from_env`]); see
    /// [`Archive::open_with`].
    pub fn open(path: &Path) -> Result<Archive> {
        Archive::open_with(path, &Limits::from_env()?)
    }

    /// Opens `path`, checking that it is a torch zip archive; the errors say what the file
    /// looks like instead (the legacy format, another zip, not a zip). A compressed entry
    /// will be read up to [`Limits::decompressed_cap`] of its compressed size.
    pub fn open_with(path: &Path, limits: &Limits) -> Result<Archive> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
        let magic = &magic[..n];
        if magic.first() == Some(&0x80) {
            return Err(Error::file(
                path,
                "this is the legacy torch.save format (a bare pickle, PyTorch < 1.6 or \
                 `_use_new_zipfile_serialization=False`); re-save it with a current torch.save",
            ));
        }
        if magic != b"PK\x03\x04" && magic != b"PK\x05\x06" {
            return Err(Error::file(
                path,
                "not a PyTorch file: expected the zip archive that torch.save writes",
            ));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let zip = ZipArchive::new(BufReader::new(file))
            .map_err(|e| Error::file(path, format!("not a readable zip archive: {e}")))?;
        let prefix = zip
            .file_names()
            .filter_map(|name| name.strip_suffix("/data.pkl"))
            .find(|prefix| !prefix.is_empty() && !prefix.contains('/'))
            .map(str::to_string)
            .ok_or_else(|| {
                Error::file(
                    path,
                    "a zip archive without `<archive>/data.pkl`: not written by torch.save",
                )
            })?;
        Ok(Archive {
            path: path.to_path_buf(),
            zip,
            prefix,
            limits: *limits,
        })
    }

    /// The file the archive was opened from, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the archive holds `name` (relative to the archive folder).
    pub fn contains(&self, name: &str) -> bool {
        self.zip
            .index_for_name(&format!("{}/{name}", self.prefix))
            .is_some()
    }

    /// The bytes of entry `name` (relative to the archive folder), or `None` when it is absent.
    /// An entry larger than `max` bytes is an error: the caller knows how much it needs.
    pub fn entry(&mut self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let full = format!("{}/{name}", self.prefix);
        let entry = match self.zip.by_name(&full) {
            Ok(entry) => entry,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(Error::file(&self.path, format!("entry `{full}`: {e}"))),
        };
        // A stored entry's bytes are in the file; a compressed one could inflate far beyond
        // it (a zip bomb) whatever size it declares, so it is read only up to a bound on its
        // expansion. torch itself writes every entry stored.
        let max = if entry.compression() == CompressionMethod::Stored {
            max
        } else {
            max.min(MAX_COMPRESSED_BYTES)
                .min(self.limits.decompressed_cap(entry.compressed_size()))
        };
        if entry.size() > max {
            return Err(Error::file(
                &self.path,
                format!(
                    "entry `{full}` holds {} bytes, at most {max} expected",
                    entry.size()
                ),
            ));
        }
        let mut bytes = Vec::new();
        // `take` bounds the read even when the declared size lies; one byte more than allowed
        // tells such a lie apart from an entry of exactly `max` bytes.
        entry
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::file(&self.path, format!("entry `{full}`: {e}")))?;
        if bytes.len() as u64 > max {
            return Err(Error::file(
                &self.path,
                format!("entry `{full}` holds more than the {max} bytes it may"),
            ));
        }
        Ok(Some(bytes))
    }
}

/// Reads as many bytes as the file has, up to `buf.len()`.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The archive folder torch would use for `path`: the file name up to its first dot. Names
/// with other characters than letters, digits, `_` and `-` fall back to `archive` (torch's
/// name for in-memory saves) to keep entry names plain.
pub fn archive_name(path: &Path) -> String {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .unwrap_or_default();
    let plain = stem
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if stem.is_empty() || !plain {
        "archive".to_string()
    } else {
        stem.to_string()
    }
}

/// A torch archive in memory: `data.pkl`, the format files and `data/<i>` for each storage, in
/// the order torch writes them.
pub fn write(archive: &str, pickle: &[u8], storages: &[Vec<u8>]) -> Result<Vec<u8>, ZipError> {
    let mut entries: Vec<(String, &[u8])> = vec![
        ("data.pkl".to_string(), pickle),
        (".format_version".to_string(), b"1"),
        (".storage_alignment".to_string(), b"64"),
        ("byteorder".to_string(), b"little"),
    ];
    for (i, bytes) in storages.iter().enumerate() {
        entries.push((format!("data/{i}"), bytes));
    }
    entries.push(("version".to_string(), b"3\n"));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .with_alignment(ALIGNMENT)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(format!("{archive}/{name}"), options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}
