//! Zip archives as Tableau packages files in them (`.twbx`, `.tdsx`): read one entry, and
//! write a new archive in which one entry is replaced and every other entry is copied with
//! its compressed bytes and CRC untouched.
//!
//! A thin layer over the `zip` crate (deflate through flate2's pure-Rust zlib-rs backend):
//! the crate finds the central directory (zip64, data descriptors, prepended bytes), inflates,
//! and copies entries raw (`ZipArchive::by_index_raw` + `ZipWriter::raw_copy_file`, which
//! keeps names, times, attributes, comments and extra fields, and an encrypted entry's data
//! descriptor). What stays here is tabflow's own: the errors with the fix they name, which
//! package entry is the document ([`Archive::document`]), the [`Limits`] on what an archive
//! from outside may make us hold, and the CRC-32 and size check of a read entry. That check is done here (with
//! `crc32fast`, which the crate uses itself) rather than by the crate, whose failure is a bare
//! "Invalid checksum" without the two values [`Error::Crc`] names.
//!
//! # Bounds
//! Packages come from the server or the user, so an archive is not trusted to be what its
//! headers say. [`Archive::parse_with`] refuses more than [`Limits::entries`] entries and
//! archives whose entries share bytes (several directory records pointing into one stream,
//! the "overlapping" zip bomb) or reach past the end of the file. [`Archive::read`] inflates
//! at most [`Limits::entry_size`] bytes of one entry — through a `take` on the inflating
//! reader, so a header that understates the size cannot make it inflate more — and at most
//! [`Limits::total_size`] over every read of one archive. Nothing is ever extracted to disk;
//! [`Archive::replace`], which writes an archive that Tableau will unpack, refuses entry
//! names that would land outside the package folder (absolute, `..`, drive letters).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::io::{Cursor, Read, Write};

use zip::result::ZipError;
use zip::write::{FileOptions, SimpleFileOptions};
use zip::{CompressionMethod, DateTime, ExtraField, System, ZipArchive, ZipReadOptions, ZipWriter};

/// An entry read into memory may not inflate to more than this (a `.twb` is XML text).
pub const READ_LIMIT: u64 = 1 << 30;

/// What an archive from outside may make [`Archive`] hold or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in the central directory (a Tableau package holds a handful to a few
    /// thousand: the document, images, extracts).
    pub entries: usize,
    /// Bytes one entry may inflate to when read into memory.
    pub entry_size: u64,
    /// Bytes all reads of one archive may inflate to together.
    pub total_size: u64,
}

impl Default for Limits {
    /// 65 535 entries (the most a zip without zip64 records can list), [`READ_LIMIT`] per
    /// entry and 4 GiB in all.
    fn default() -> Self {
        Limits { entries: 65_535, entry_size: READ_LIMIT, total_size: 4 << 30 }
    }
}

/// What is wrong with an archive or one of its entries.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No end-of-central-directory record: not a zip archive at all.
    #[error("it is not a zip archive (no end-of-central-directory record); use the file exactly as Tableau wrote it")]
    NotZip,
    /// A record is cut short, points outside the file or has the wrong signature.
    #[error("the archive is damaged or truncated ({0}); download or save the file again")]
    Damaged(String),
    /// A split or spanned archive.
    #[error(
        "the archive spans several disks; join the parts into one file (`zip -s 0 in.zip --out whole.zip`) and try again"
    )]
    MultiDisk,
    /// An encrypted entry that would have to be read or rewritten.
    #[error("the entry {0} is encrypted; save the package again without a password")]
    Encrypted(String),
    /// A compression method other than stored or deflate, on an entry that is read.
    #[error(
        "the entry {name} uses compression method {method}; only stored (0) and deflate (8) are read — re-save the package in Tableau Desktop, which deflates"
    )]
    Method { name: String, method: u16 },
    /// An inflated entry whose CRC-32 differs from the recorded one.
    #[error(
        "the entry {name} fails its CRC-32 check (recorded {expected:08x}, computed {actual:08x}); the archive is damaged — download or save it again"
    )]
    Crc { name: String, expected: u32, actual: u32 },
    /// An entry too large to read into memory ([`Limits::entry_size`]): by its header, or
    /// by what it inflated to once read (`size` is then the limit plus one).
    #[error(
        "the entry {name} inflates to {size} bytes or more, over the {limit}-byte limit for a document read into memory; keep the document small (move images and extracts out of it) or open it in Tableau Desktop"
    )]
    TooLarge { name: String, size: u64, limit: u64 },
    /// Reading would inflate more than [`Limits::total_size`] from one archive.
    #[error(
        "reading {name} would take what this archive inflated to over {limit} bytes in all; the package is a zip bomb or far larger than a workbook — check where the file came from"
    )]
    TotalTooLarge { name: String, limit: u64 },
    /// More entries than [`Limits::entries`].
    #[error(
        "the archive lists {count} entries, over the limit of {limit}; a Tableau package holds far fewer — check that the file is the package Tableau wrote"
    )]
    TooManyEntries { count: usize, limit: usize },
    /// Two entries whose bytes in the archive overlap (one stream listed twice: a zip bomb).
    #[error(
        "the entries {first} and {second} share bytes of the archive (overlapping entries, a zip-bomb pattern); only archives in which each entry has its own data are read — save the package again from Tableau"
    )]
    Overlapping { first: String, second: String },
    /// An entry name that would be unpacked outside the package's folder.
    #[error(
        "the entry name {0:?} points outside the package (an absolute path, a drive letter or `..`); such an archive is not rewritten — save the package again from Tableau Desktop"
    )]
    UnsafeName(String),
    /// No entry with the wanted extension.
    #[error("the archive holds no {0} file; export the packaged file again from Tableau Desktop")]
    NoDocument(String),
    /// Several candidate documents at the same depth.
    #[error("the archive holds several {ext} files at the same level ({names}); keep one of them and package it again")]
    Ambiguous { ext: String, names: String },
    /// The archive being built cannot be written (such as a name given twice).
    #[error("the archive cannot be written: {0}")]
    Write(String),
}

/// Result of zip operations.
pub type Result<T> = std::result::Result<T, Error>;

fn damaged(what: impl Into<String>) -> Error {
    Error::Damaged(what.into())
}

/// What an error of the crate means for the entry `name` (or the whole archive).
fn crate_error(name: Option<&str>, e: ZipError) -> Error {
    let at = |detail: String| match name {
        Some(n) => damaged(format!("{n}: {detail}")),
        None => damaged(detail),
    };
    match e {
        ZipError::InvalidArchive(m) if m.contains("Multi-disk") => Error::MultiDisk,
        ZipError::UnsupportedArchive(ZipError::PASSWORD_REQUIRED) => {
            Error::Encrypted(name.unwrap_or_default().to_string())
        }
        ZipError::CompressionMethodNotSupported(method) => {
            Error::Method { name: name.unwrap_or_default().to_string(), method }
        }
        ZipError::InvalidArchive(m) => at(m.into_owned()),
        ZipError::Io(io) => at(io.to_string()),
        other => at(other.to_string()),
    }
}

/// The method number of a compression method (the crate only names the ones it supports).
fn method_number(m: CompressionMethod) -> u16 {
    match m {
        CompressionMethod::Stored => 0,
        CompressionMethod::Deflated => 8,
        #[allow(deprecated)] // the crate's only way to the number of a method it does not know
        other => other.to_u16(),
    }
}

/// One entry of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as stored (`/`-separated): UTF-8, else decoded as code page 437.
    pub name: String,
    /// Compression method: 0 stored, 8 deflate.
    pub method: u16,
    /// The recorded CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Size of the compressed data.
    pub compressed_size: u64,
    /// Size of the uncompressed data.
    pub size: u64,
    index: usize,
    encrypted: bool,
    descriptor: bool,
    modified: Option<DateTime>,
    external_attributes: u32,
}

impl Entry {
    /// A directory entry (name ending in `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// Encrypted (general-purpose bit 0).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }
}

impl Entry {
    /// The name stays inside the folder it is unpacked into: relative, no `..` component,
    /// no drive letter or backslash-rooted path, no NUL.
    pub fn has_safe_name(&self) -> bool {
        let name = self.name.as_str();
        let rooted = name.starts_with(['/', '\\']) || name.as_bytes().get(1) == Some(&b':');
        !rooted && !name.contains('\0') && !name.split(['/', '\\']).any(|part| part == "..")
    }
}

/// A parsed archive over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    entries: Vec<Entry>,
    limits: Limits,
    /// Bytes inflated by [`Archive::read`] so far, shared by clones (one budget per archive).
    inflated: Arc<AtomicU64>,
}

/// Whether `bytes` start like a zip archive (a local header, or the end record of an
/// empty archive).
pub fn looks_like_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

impl<'a> Archive<'a> {
    /// Reads the central directory of `bytes`, within the default [`Limits`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        Self::parse_with(bytes, Limits::default())
    }

    /// Reads the central directory of `bytes`, refusing archives over `limits` and archives
    /// whose entries overlap or reach past the end of `bytes`.
    pub fn parse_with(bytes: &'a [u8], limits: Limits) -> Result<Self> {
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            // Not a zip at all: it neither starts like one nor holds an end record anywhere.
            if !looks_like_zip(bytes) && !bytes.windows(4).any(|w| w == b"PK\x05\x06") {
                Error::NotZip
            } else {
                crate_error(None, e)
            }
        })?;
        if zip.len() > limits.entries {
            return Err(Error::TooManyEntries { count: zip.len(), limit: limits.entries });
        }
        let entries = (0..zip.len())
            .map(|index| {
                let f = zip.by_index_data(index).map_err(|e| crate_error(None, e))?;
                Ok(Entry {
                    name: f.name().map_err(|e| crate_error(None, e))?.into_owned(),
                    method: method_number(f.compression()),
                    crc32: f.crc32(),
                    compressed_size: f.compressed_size(),
                    size: f.size(),
                    index,
                    encrypted: f.encrypted(),
                    descriptor: f.flags().is_using_data_descriptor(),
                    modified: f.last_modified(),
                    external_attributes: f.external_attributes(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        check_layout(bytes, &zip, &entries)?;
        Ok(Archive { zip, entries, limits, inflated: Arc::default() })
    }

    /// The entries in central-directory order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry of that exact name.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The compressed bytes of an entry, as stored.
    pub fn raw(&self, e: &Entry) -> Result<Vec<u8>> {
        let mut zip = self.zip.clone();
        let mut f = zip.by_index_raw(e.index).map_err(|x| crate_error(Some(&e.name), x))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out).map_err(|x| damaged(format!("the data of {} cannot be read: {x}", e.name)))?;
        if out.len() as u64 != e.compressed_size {
            return Err(damaged(format!("the data of {} runs past the end of the file", e.name)));
        }
        Ok(out)
    }

    /// The uncompressed bytes of an entry, checked against its size and CRC-32.
    pub fn read(&self, e: &Entry) -> Result<Vec<u8>> {
        if e.is_encrypted() {
            return Err(Error::Encrypted(e.name.clone()));
        }
        let limit = self.limits.entry_size;
        if e.size > limit {
            return Err(Error::TooLarge { name: e.name.clone(), size: e.size, limit });
        }
        // Reserve the recorded size from the archive's budget before inflating; the `take`
        // below keeps the inflater from producing more than that (plus the one byte that
        // shows a longer stream).
        let budget = self.limits.total_size;
        let reserved = self
            .inflated
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |done| {
                done.checked_add(e.size).filter(|&total| total <= budget)
            })
            .is_ok();
        if !reserved {
            return Err(Error::TotalTooLarge { name: e.name.clone(), limit: budget });
        }
        if !matches!(e.method, 0 | 8) {
            return Err(Error::Method { name: e.name.clone(), method: e.method });
        }
        let mut zip = self.zip.clone();
        let f = zip
            .by_index_with_options(e.index, ZipReadOptions::new().ignore_crc32(true))
            .map_err(|x| crate_error(Some(&e.name), x))?;
        let mut data = Vec::new();
        // One byte over the recorded size, so a longer stream shows as a size mismatch.
        f.take(e.size.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|x| damaged(format!("{} does not inflate: {x}", e.name)))?;
        if data.len() as u64 != e.size {
            return Err(damaged(format!("{} holds {} bytes, the directory says {}", e.name, data.len(), e.size)));
        }
        let actual = crc32fast::hash(&data);
        if actual != e.crc32 {
            return Err(Error::Crc { name: e.name.clone(), expected: e.crc32, actual });
        }
        Ok(data)
    }

    /// The one document with extension `ext` (such as `.twb`) the package is built around:
    /// the shallowest such file, skipping macOS resource forks (`__MACOSX/`, `._*`).
    pub fn document(&self, ext: &str) -> Result<&Entry> {
        let ext_lower = ext.to_ascii_lowercase();
        let candidates: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !e.is_dir() && e.name.to_ascii_lowercase().ends_with(&ext_lower))
            .filter(|e| {
                let base = e.name.rsplit('/').next().unwrap_or(&e.name);
                !e.name.starts_with("__MACOSX/") && !base.starts_with("._")
            })
            .collect();
        let depth = |e: &Entry| e.name.trim_start_matches('/').matches('/').count();
        let Some(min) = candidates.iter().map(|e| depth(e)).min() else {
            return Err(Error::NoDocument(ext.to_string()));
        };
        let top: Vec<&Entry> = candidates.into_iter().filter(|e| depth(e) == min).collect();
        match top.as_slice() {
            [one] => Ok(one),
            _ => Err(Error::Ambiguous {
                ext: ext.to_string(),
                names: top.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// A new archive with the entry `name` holding `content` (deflated again, under its own
    /// name, time, attributes and comment) and every other entry copied as it is: same
    /// compressed bytes, CRC, times, attributes, extra fields and order; the archive comment
    /// is kept.
    pub fn replace(&self, name: &str, content: &[u8]) -> Result<Vec<u8>> {
        let Some(target) = self.entry(name) else {
            return Err(damaged(format!("no entry named {name}")));
        };
        if target.is_encrypted() {
            return Err(Error::Encrypted(target.name.clone()));
        }
        if let Some(e) = self.entries.iter().find(|e| !e.has_safe_name()) {
            return Err(Error::UnsafeName(e.name.clone()));
        }
        if self.zip.has_duplicate_names() {
            // The crate keeps one entry per name, so a copy would lose the others.
            return Err(damaged("the central directory lists a name more than once"));
        }
        let mut zip = self.zip.clone();
        let mut w = Writer::new();
        let write = |x: ZipError| Error::Write(x.to_string());
        for e in &self.entries {
            let f = zip.by_index_raw(e.index).map_err(|x| crate_error(Some(&e.name), x))?;
            if e.index != target.index {
                w.zip.raw_copy_file(f).map_err(|x| crate_error(Some(&e.name), x))?;
                continue;
            }
            let mut options = f
                .options()
                .into_full_options()
                .compression_method(CompressionMethod::Deflated)
                .large_file(content.len() as u64 >= zip::ZIP64_BYTES_THR);
            if !f.comment().is_empty() {
                options = options.with_file_comment(f.comment());
            }
            for extra in f.extra_data_fields() {
                if let ExtraField::ExtendedTimestamp(t) = extra {
                    options = options.with_extended_timestamp(t.mod_time(), None, None).map_err(write)?;
                }
            }
            let raw_name = f.name_raw().to_vec();
            drop(f);
            w.zip.start_file_with_options(options.name(&raw_name)).map_err(write)?;
            w.zip.write_all(content).map_err(|x| Error::Write(x.to_string()))?;
        }
        let out = w.finish(self.zip.comment())?;
        // What is uploaded must read back: an archive the copy could not reproduce (found by
        // fuzzing: a directory entry with data the crate writes elsewhere than its record
        // says) is refused here, not sent to the server.
        if let Err(e) = Archive::parse_with(&out, self.limits) {
            return Err(damaged(format!(
                "the rewritten package would not read back ({e}); the original is left as it is"
            )));
        }
        Ok(out)
    }
}

/// Each entry's bytes — local header, name, extra field and compressed data — lie inside
/// `bytes` and apart from every other entry's. The crate reads each central record on its
/// own, so two records pointing into one deflate stream (the overlapping zip bomb: a few
/// kilobytes listing thousands of entries that all inflate the same data) pass it; here the
/// ranges are sorted by start and each must end before the next begins.
fn check_layout(bytes: &[u8], zip: &ZipArchive<Cursor<&[u8]>>, entries: &[Entry]) -> Result<()> {
    let mut ranges = Vec::with_capacity(entries.len());
    for e in entries {
        let header = zip.by_index_data(e.index).map_err(|x| crate_error(Some(&e.name), x))?.header_start();
        let u16_at = |at: u64| -> Option<u64> {
            let at = usize::try_from(header.checked_add(at)?).ok()?;
            let b = bytes.get(at..at.checked_add(2)?)?;
            Some(u64::from(u16::from_le_bytes([*b.first()?, *b.get(1)?])))
        };
        let outside = || damaged(format!("the local header of {} lies outside the file", e.name));
        let start = usize::try_from(header).map_err(|_| outside())?;
        if bytes.get(start..start.saturating_add(4)) != Some(b"PK\x03\x04".as_slice()) {
            return Err(outside());
        }
        // 30 fixed bytes, then the name and the extra field, then the data.
        let (name_len, extra_len) = u16_at(26).zip(u16_at(28)).ok_or_else(outside)?;
        let end = header
            .checked_add(30 + name_len + extra_len)
            .and_then(|data| data.checked_add(e.compressed_size))
            .filter(|&end| end <= bytes.len() as u64)
            .ok_or_else(|| damaged(format!("the data of {} runs past the end of the file", e.name)))?;
        ranges.push((header, end, e));
    }
    ranges.sort_by_key(|&(start, end, _)| (start, end));
    for pair in ranges.windows(2) {
        if let [(_, first_end, first), (second_start, _, second)] = pair
            && second_start < first_end
        {
            return Err(Error::Overlapping { first: first.name.clone(), second: second.name.clone() });
        }
    }
    Ok(())
}

/// Builds an archive in memory, entry after entry.
#[derive(Debug)]
pub struct Writer {
    zip: ZipWriter<Cursor<Vec<u8>>>,
    force_zip64: bool,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Writer { zip: ZipWriter::new(Cursor::new(Vec::new())), force_zip64: false }
    }

    /// Writes zip64 sizes and end records even when the values fit in 32 bits (as some
    /// tools do); readers must accept both forms.
    pub fn force_zip64(mut self) -> Self {
        self.force_zip64 = true;
        self
    }

    /// Adds a new deflated file entry (regular file, mode 0644, 1980-01-01 00:00).
    pub fn add_deflated(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.add(name, data, CompressionMethod::Deflated)
    }

    /// Adds a new stored (uncompressed) file entry, like [`Writer::add_deflated`].
    pub fn add_stored(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.add(name, data, CompressionMethod::Stored)
    }

    fn add(&mut self, name: &str, data: &[u8], method: CompressionMethod) -> Result<()> {
        let options: SimpleFileOptions = FileOptions::default()
            .compression_method(method)
            .system(System::Unix)
            .unix_permissions(0o644)
            .last_modified_time(DateTime::default())
            .large_file(self.force_zip64 || data.len() as u64 >= zip::ZIP64_BYTES_THR);
        let write = |x: String| Error::Write(format!("{name}: {x}"));
        self.zip.start_file(name, options).map_err(|x| write(x.to_string()))?;
        self.zip.write_all(data).map_err(|x| write(x.to_string()))
    }

    /// The finished archive: entries, central directory, (zip64 end records,) end record.
    pub fn finish(mut self, comment: &[u8]) -> Result<Vec<u8>> {
        let write = |x: ZipError| Error::Write(x.to_string());
        self.zip.set_raw_comment(comment.into()).map_err(write)?;
        if self.force_zip64 {
            // An extensible data sector, even empty, makes the crate write the zip64 records.
            self.zip.set_raw_zip64_extensible_data_sector(Box::default());
        }
        Ok(self.zip.finish().map_err(write)?.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;

    const END64: &[u8] = b"PK\x06\x06";
    const CENTRAL: &[u8] = b"PK\x01\x02";

    const TWB: &[u8] = b"<?xml version='1.0' encoding='utf-8' ?>\n<workbook><datasources><datasource name='sqlproxy.0'><connection class='sqlproxy' dbname='SalesOld' server-ds-friendly-name='Sales' /></datasource></datasources></workbook>\n";

    /// Incompressible-looking binary data, like an extract.
    fn binary(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn package(zip64: bool) -> Vec<u8> {
        let mut w = if zip64 { Writer::new().force_zip64() } else { Writer::new() };
        w.add_deflated("Book.twb", &TWB.repeat(20)).unwrap();
        w.add_deflated("Data/Extracts/x.hyper", &binary(5000, 3)).unwrap();
        w.add_deflated("Image/é.png", b"").unwrap();
        w.finish(b"made by a test").unwrap()
    }

    fn has(bytes: &[u8], what: &[u8]) -> bool {
        bytes.windows(what.len()).any(|w| w == what)
    }

    /// Stored entries written by hand, independently of the crate: optionally with their
    /// sizes deferred to a data descriptor (bit 3), as streaming writers do.
    fn handmade(entries: &[(&str, &[u8])], descriptor: bool) -> Vec<u8> {
        let (mut out, mut cd) = (Vec::new(), Vec::new());
        for (name, data) in entries {
            let (crc, offset, len) = (crc32fast::hash(data), out.len() as u32, data.len() as u32);
            let flags: u16 = if descriptor { 8 } else { 0 };
            let hidden = |v: u32| if descriptor { 0 } else { v };
            out.extend_from_slice(b"PK\x03\x04");
            for v in [10u16, flags, 0, 0x6000, 0x5a21] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [hidden(crc), hidden(len), hidden(len)] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            if descriptor {
                out.extend_from_slice(b"PK\x07\x08");
                for v in [crc, len, len] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            cd.extend_from_slice(CENTRAL);
            for v in [10u16, 10, flags, 0, 0x6000, 0x5a21] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, len, len] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            for v in [name.len() as u16, 0, 0, 0, 0] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            cd.extend_from_slice(&0u32.to_le_bytes());
            cd.extend_from_slice(&offset.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let (cd_offset, cd_size) = (out.len() as u32, cd.len() as u32);
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06");
        for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    /// Deflated entries with data descriptors, as the crate's streaming writer makes them.
    fn streamed(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut z = ZipWriter::new_stream(Vec::new());
        for (name, data) in entries {
            z.start_file(*name, SimpleFileOptions::default().last_modified_time(DateTime::default())).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    #[test]
    fn round_trip_plain_and_zip64() {
        for zip64 in [false, true] {
            let bytes = package(zip64);
            assert_eq!(zip64, has(&bytes, END64), "zip64 end record");
            let a = Archive::parse(&bytes).unwrap();
            let names: Vec<&str> = a.entries().iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["Book.twb", "Data/Extracts/x.hyper", "Image/é.png"]);
            assert_eq!(a.read(&a.entries()[0]).unwrap(), TWB.repeat(20));
            assert!(a.entries()[0].compressed_size < a.entries()[0].size, "deflated");
            assert_eq!(a.read(&a.entries()[1]).unwrap(), binary(5000, 3));
            assert_eq!(a.read(&a.entries()[2]).unwrap(), b"");
            assert_eq!(a.zip.comment(), b"made by a test");
            assert_eq!(a.document(".twb").unwrap().name, "Book.twb");
            assert_eq!(a.entries()[0].external_attributes >> 16, 0o100644, "a regular file, mode 0644");
        }
    }

    #[test]
    fn replace_copies_the_other_entries_byte_for_byte() {
        for zip64 in [false, true] {
            let bytes = package(zip64);
            let a = Archive::parse(&bytes).unwrap();
            let new_twb = TWB.repeat(3).iter().map(|b| if *b == b'O' { b'N' } else { *b }).collect::<Vec<_>>();
            let out = a.replace("Book.twb", &new_twb).unwrap();
            let b = Archive::parse(&out).unwrap();
            assert_eq!(b.entries().len(), 3);
            assert_eq!(b.read(b.entry("Book.twb").unwrap()).unwrap(), new_twb);
            for (x, y) in a.entries().iter().zip(b.entries()) {
                assert_eq!((x.modified, x.external_attributes), (y.modified, y.external_attributes), "{}", x.name);
            }
            for (x, y) in a.entries().iter().zip(b.entries()).skip(1) {
                assert_eq!(a.raw(x).unwrap(), b.raw(y).unwrap(), "{}: compressed bytes", x.name);
                assert_eq!((x.crc32, x.size, x.method), (y.crc32, y.size, y.method));
            }
            assert_eq!(b.zip.comment(), b"made by a test");
            // Replacing with the same text gives the same archive again (zip64 records are
            // written only where needed, so a forced-zip64 input comes back without them).
            let again = b.replace("Book.twb", &TWB.repeat(20)).unwrap();
            if zip64 {
                assert!(!has(&again, END64));
                let c = Archive::parse(&again).unwrap();
                assert_eq!(c.read(&c.entries()[1]).unwrap(), binary(5000, 3));
            } else {
                assert_eq!(again, bytes, "deterministic and faithful");
            }
            assert!(matches!(a.replace("Nope.twb", b""), Err(Error::Damaged(_))));
        }
    }

    /// Whatever entry is replaced, every other one keeps its compressed bytes, CRC, sizes,
    /// method, time, attributes and encryption; stored, deflated, empty, directory, encrypted,
    /// data-descriptor and Python-written entries alike.
    #[test]
    fn a_rewrite_keeps_every_other_entry_raw_bytes_identical() {
        let mut mixed = Writer::new();
        mixed.add_deflated("Book.twb", TWB).unwrap();
        mixed.add_stored("Image/logo.png", b"\x89PNG\r\n\x1a\n stored").unwrap();
        mixed.add_deflated("Data/", b"").unwrap();
        mixed.add_deflated("Data/Extracts/x.hyper", &binary(20_000, 5)).unwrap();
        mixed.add_deflated("empty.txt", b"").unwrap();
        let mut locked = mixed.finish(b"comment").unwrap();
        // Flag the stored PNG as encrypted (in the central directory, which is what is read):
        // it can no longer be read, but it is still copied as it is.
        let cd = locked.windows(4).position(|w| w == CENTRAL).unwrap();
        let second = cd + 4 + locked[cd + 4..].windows(4).position(|w| w == CENTRAL).unwrap();
        locked[second + 8] |= 1;
        let python = include_bytes!("../testdata/python-descriptors.twbx").to_vec();
        let zip64 = include_bytes!("../testdata/python-zip64.twbx").to_vec();
        let stream = streamed(&[("Book.twb", TWB), ("Data/Extracts/x.hyper", &binary(3000, 7))]);
        let by_hand = handmade(&[("Book.twb", TWB), ("a.bin", &binary(300, 2)), ("b.bin", b"")], true);
        for (label, bytes) in
            [("mixed", &locked), ("python", &python), ("zip64", &zip64), ("stream", &stream), ("handmade", &by_hand)]
        {
            let a = Archive::parse(bytes).unwrap_or_else(|e| panic!("{label}: {e}"));
            for target in a.entries().iter().filter(|e| !e.is_encrypted()) {
                let out = a.replace(&target.name, b"<workbook/>").unwrap_or_else(|e| panic!("{label}: {e}"));
                let b = Archive::parse(&out).unwrap();
                assert_eq!(b.entries().len(), a.entries().len(), "{label}");
                for (x, y) in a.entries().iter().zip(b.entries()) {
                    assert_eq!(x.name, y.name, "{label}: same order");
                    assert_eq!((x.modified, x.external_attributes), (y.modified, y.external_attributes), "{label}");
                    if x.name == target.name {
                        assert_eq!(b.read(y).unwrap(), b"<workbook/>", "{label}");
                        continue;
                    }
                    assert_eq!(a.raw(x).unwrap(), b.raw(y).unwrap(), "{label}, {} replaced: {}", target.name, x.name);
                    assert_eq!(
                        (x.crc32, x.size, x.compressed_size, x.method, x.encrypted),
                        (y.crc32, y.size, y.compressed_size, y.method, y.encrypted),
                        "{label}: {}",
                        x.name
                    );
                    if !x.encrypted {
                        assert_eq!(a.read(x).unwrap(), b.read(y).unwrap(), "{label}: {}", x.name);
                    }
                }
            }
        }
        let a = Archive::parse(&locked).unwrap();
        assert_eq!(a.read(a.entry("Image/logo.png").unwrap()), Err(Error::Encrypted("Image/logo.png".into())));
    }

    #[test]
    fn data_descriptors_and_handmade_archives() {
        let hyper = binary(7000, 9);
        for (label, bytes) in [
            ("stored", handmade(&[("Book.twb", TWB), ("Data/Extracts/x.hyper", &hyper)], false)),
            ("stored, descriptors", handmade(&[("Book.twb", TWB), ("Data/Extracts/x.hyper", &hyper)], true)),
            ("deflated, descriptors", streamed(&[("Book.twb", TWB), ("Data/Extracts/x.hyper", &hyper)])),
        ] {
            let a = Archive::parse(&bytes).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(a.entries().iter().all(|e| e.descriptor), label.contains("descriptors"), "{label}");
            assert_eq!(a.read(a.document(".twb").unwrap()).unwrap(), TWB, "{label}");
            assert_eq!(a.read(&a.entries()[1]).unwrap(), hyper, "{label}");
            // The rewritten archive puts sizes in the local headers and drops the descriptors.
            let out = a.replace("Book.twb", b"<workbook/>").unwrap();
            let b = Archive::parse(&out).unwrap();
            assert!(b.entries().iter().all(|e| !e.descriptor), "{label}");
            assert_eq!(b.raw(&b.entries()[1]).unwrap(), a.raw(&a.entries()[1]).unwrap(), "{label}");
            assert_eq!(b.read(&b.entries()[1]).unwrap(), hyper, "{label}");
            assert_eq!(out[14..18], crc32fast::hash(b"<workbook/>").to_le_bytes(), "{label}: CRC in the local header");
        }
    }

    #[test]
    fn archives_made_by_python() {
        let hyper: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for (file, bytes) in [
            ("descriptors", &include_bytes!("../testdata/python-descriptors.twbx")[..]),
            ("zip64", &include_bytes!("../testdata/python-zip64.twbx")[..]),
        ] {
            let a = Archive::parse(bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
            let twb = String::from_utf8(a.read(a.document(".twb").unwrap()).unwrap()).unwrap();
            assert_eq!(twb.matches("dbname='SalesOld'").count(), 3, "{file}");
            assert_eq!(a.read(a.entry("Data/Extracts/x.hyper").unwrap()).unwrap(), hyper, "{file}");
            let out = a.replace("Book.twb", twb.replace("SalesOld", "SalesNew").as_bytes()).unwrap();
            let b = Archive::parse(&out).unwrap();
            assert!(String::from_utf8(b.read(b.entry("Book.twb").unwrap()).unwrap()).unwrap().contains("SalesNew"));
            for e in a.entries().iter().filter(|e| e.name != "Book.twb") {
                let f = b.entry(&e.name).unwrap();
                assert_eq!((a.raw(e).unwrap(), e.crc32), (b.raw(f).unwrap(), f.crc32), "{file}: {}", e.name);
            }
        }
        let a = Archive::parse(include_bytes!("../testdata/python-descriptors.twbx")).unwrap();
        let png = a.entry("Image/logo.png").unwrap();
        assert_eq!((png.method, a.read(png).unwrap()), (0, b"\x89PNG not really".to_vec()), "stored entry");
    }

    #[test]
    fn corrupt_crc_and_data_are_errors() {
        let bytes = package(false);
        let a = Archive::parse(&bytes).unwrap();
        let cd_of_first = bytes.windows(4).position(|w| w == CENTRAL).unwrap();
        let mut bad = bytes.clone();
        bad[cd_of_first + 16] ^= 0x55;
        let b = Archive::parse(&bad).unwrap();
        let expected = a.entries()[0].crc32 ^ 0x55;
        assert_eq!(
            b.read(&b.entries()[0]),
            Err(Error::Crc { name: "Book.twb".into(), expected, actual: a.entries()[0].crc32 })
        );
        // A flipped bit inside the compressed data: inflating fails or the CRC catches it.
        // (Not in the first bytes: the extract does not compress, so they are a stored
        // block's header, whose padding bits mean nothing.)
        let raw = a.raw(&a.entries()[1]).unwrap();
        let start = bytes.windows(raw.len()).position(|w| w == raw).unwrap();
        for k in [5usize, 100, 2000, 4999] {
            let mut bad = bytes.clone();
            bad[start + k] ^= 0x10;
            let b = Archive::parse(&bad).unwrap();
            assert!(b.read(&b.entries()[1]).is_err(), "flip at {k}");
        }
        // A recorded size that is too small or too large.
        for (delta, what) in [(-1i64, "inflates past"), (1, "holds")] {
            let mut bad = bytes.clone();
            let size_at = cd_of_first + 24;
            let size = u32::from_le_bytes(bad[size_at..size_at + 4].try_into().unwrap());
            bad[size_at..size_at + 4].copy_from_slice(&((size as i64 + delta) as u32).to_le_bytes());
            let b = Archive::parse(&bad).unwrap();
            assert!(matches!(b.read(&b.entries()[0]), Err(Error::Damaged(_))), "{what}: {:?}", b.read(&b.entries()[0]));
        }
    }

    #[test]
    fn truncated_and_refused_archives() {
        let bytes = package(true);
        for cut in 0..bytes.len() {
            let short = &bytes[..cut];
            if let Ok(a) = Archive::parse(short) {
                // A cut inside the trailing comment still leaves a readable archive, never a
                // wrong one.
                for e in a.entries() {
                    assert!(a.read(e).is_err() || cut > bytes.len() - 40, "cut at {cut}: {}", e.name);
                }
            }
        }
        assert_eq!(Archive::parse(b"<workbook/>").err(), Some(Error::NotZip));
        assert_eq!(Archive::parse(b"").err(), Some(Error::NotZip));
        assert!(matches!(Archive::parse(b"PK\x03\x04abc"), Err(Error::Damaged(_))));
        assert!(Archive::parse(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap().entries().is_empty());

        let plain = package(false);
        let end = plain.len() - 22 - b"made by a test".len();
        let mut split = plain.clone();
        split[end + 4] = 1;
        assert_eq!(Archive::parse(&split).err(), Some(Error::MultiDisk));

        let mut locked = plain.clone();
        let cd = locked.windows(4).position(|w| w == CENTRAL).unwrap();
        locked[cd + 8] |= 1;
        let a = Archive::parse(&locked).unwrap();
        assert_eq!(a.read(&a.entries()[0]).err(), Some(Error::Encrypted("Book.twb".into())));
        assert_eq!(a.replace("Book.twb", b"x").err(), Some(Error::Encrypted("Book.twb".into())));
        assert!(a.read(&a.entries()[1]).is_ok(), "the other entries are still readable");

        let mut bzip = plain;
        bzip[cd + 10] = 12;
        let a = Archive::parse(&bzip).unwrap();
        assert_eq!(a.read(&a.entries()[0]).err(), Some(Error::Method { name: "Book.twb".into(), method: 12 }));
        assert!(Error::MultiDisk.to_string().contains("zip -s 0"), "names the fix");
    }

    #[test]
    fn which_document_is_the_workbook() {
        let make = |names: &[&str]| {
            let mut w = Writer::new();
            for n in names {
                w.add_deflated(n, b"<workbook/>").unwrap();
            }
            w.finish(b"").unwrap()
        };
        let pick = |names: &[&str]| {
            let bytes = make(names);
            Archive::parse(&bytes).unwrap().document(".twb").map(|e| e.name.clone())
        };
        assert_eq!(pick(&["Book/", "Book/Sales.twb", "Book/Data/a.hyper"]), Ok("Book/Sales.twb".into()));
        assert_eq!(pick(&["__MACOSX/._Sales.twb", "._Sales.twb", "Sales.TWB"]), Ok("Sales.TWB".into()));
        assert_eq!(pick(&["a/x.twb", "y.twb"]), Ok("y.twb".into()));
        assert_eq!(pick(&["Data/a.hyper"]), Err(Error::NoDocument(".twb".into())));
        assert_eq!(
            pick(&["x.twb", "y.twb"]),
            Err(Error::Ambiguous { ext: ".twb".into(), names: "x.twb, y.twb".into() })
        );
        let mut twice = Writer::new();
        twice.add_deflated("x.twb", b"").unwrap();
        assert!(matches!(twice.add_deflated("x.twb", b""), Err(Error::Write(_))), "a name given twice");
    }

    #[test]
    fn garbage_and_mutations_never_panic() {
        let seeds =
            [package(false), package(true), handmade(&[("Book.twb", TWB)], true), streamed(&[("Book.twb", TWB)])];
        let mut x: u64 = 0x9E37_79B9;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..1 + next() % 6 {
                let at = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes[at] = 0xff,
                    2 => bytes.truncate(at.max(1)),
                    _ => bytes[at..].iter_mut().take(4).for_each(|b| *b = 0xff),
                }
            }
            if let Ok(a) = Archive::parse(&bytes) {
                for e in a.entries() {
                    let _ = a.read(e);
                    let _ = a.raw(e);
                }
                let _ = a.document(".twb").map(|e| a.replace(&e.name.clone(), b"<workbook/>"));
            }
        }
        for len in 0..200 {
            let junk: Vec<u8> =
                (0..len).map(|_| b"PK\x01\x02\x03\x04\x05\x06\x07\xff\0"[(next() % 11) as usize]).collect();
            let _ = Archive::parse(&junk).map(|a| a.entries().iter().filter(|e| a.read(e).is_ok()).count());
        }
    }

    /// A stored local header and its data, as written by hand.
    fn local(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"PK\x03\x04".to_vec();
        for v in [10u16, 0, 0, 0, 0x21] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc32fast::hash(data), data.len() as u32, data.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        out
    }

    /// `body` followed by a central directory of stored entries `(name, local header
    /// offset, data)` (whatever `body` holds there) and the end record.
    fn with_directory(mut body: Vec<u8>, records: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut cd = Vec::new();
        for (name, offset, data) in records {
            cd.extend_from_slice(CENTRAL);
            for v in [10u16, 10, 0, 0, 0, 0x21] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc32fast::hash(data), data.len() as u32, data.len() as u32] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            for v in [name.len() as u16, 0, 0, 0, 0] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            cd.extend_from_slice(&0u32.to_le_bytes());
            cd.extend_from_slice(&offset.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let (cd_offset, cd_size) = (body.len() as u32, cd.len() as u32);
        body.extend_from_slice(&cd);
        body.extend_from_slice(b"PK\x05\x06");
        for v in [0u16, 0, records.len() as u16, records.len() as u16] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&cd_size.to_le_bytes());
        body.extend_from_slice(&cd_offset.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body
    }

    #[test]
    fn too_many_entries_are_refused() {
        let names: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), b"x".as_slice())).collect();
        let bytes = handmade(&entries, false);
        let few = Limits { entries: 4, ..Limits::default() };
        assert_eq!(Archive::parse_with(&bytes, few).err(), Some(Error::TooManyEntries { count: 5, limit: 4 }));
        assert_eq!(Archive::parse_with(&bytes, Limits { entries: 5, ..few }).unwrap().entries().len(), 5);
        // An end record that claims 65 535 entries and a 4 GiB directory in a 22-byte file: an
        // error, not an allocation sized by the claim.
        let mut claim = b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\0\0\0".to_vec();
        assert!(Archive::parse(&claim).is_err());
        claim.splice(0..0, [0u8; 64]);
        assert!(Archive::parse(&claim).is_err());
    }

    #[test]
    fn entry_and_total_inflated_sizes_are_capped() {
        let mut w = Writer::new();
        for name in ["a.twb", "b.png", "c.png"] {
            w.add_deflated(name, &[b'x'; 2000]).unwrap();
        }
        let bytes = w.finish(b"").unwrap();
        let small = Limits { entry_size: 1000, ..Limits::default() };
        let a = Archive::parse_with(&bytes, small).unwrap();
        let e = a.entry("a.twb").unwrap();
        assert_eq!(a.read(e), Err(Error::TooLarge { name: "a.twb".into(), size: 2000, limit: 1000 }));
        let err = a.read(e).unwrap_err().to_string();
        assert!(err.contains("1000-byte limit") && err.contains("; "), "names the limit and a fix: {err}");

        let budget = Limits { total_size: 5000, ..Limits::default() };
        let a = Archive::parse_with(&bytes, budget).unwrap();
        assert!(a.read(&a.entries()[0]).is_ok());
        let clone = a.clone();
        assert!(clone.read(&clone.entries()[1]).is_ok(), "clones share one budget");
        assert_eq!(a.read(&a.entries()[2]), Err(Error::TotalTooLarge { name: "c.png".into(), limit: 5000 }));
        assert!(
            Archive::parse(&bytes).unwrap().entries().iter().all(|e| Archive::parse(&bytes).unwrap().read(e).is_ok())
        );
    }

    /// A deflate stream of a megabyte of zeros whose headers claim 100 bytes: the read stops
    /// at the claim instead of inflating what the stream holds.
    #[test]
    fn a_header_that_understates_the_size_is_not_trusted() {
        let mut w = Writer::new();
        w.add_deflated("bomb.twb", &vec![0u8; 1 << 20]).unwrap();
        let mut bytes = w.finish(b"").unwrap();
        let local_size = 22;
        bytes[local_size..local_size + 4].copy_from_slice(&100u32.to_le_bytes());
        let cd = bytes.windows(4).position(|win| win == CENTRAL).unwrap();
        bytes[cd + 24..cd + 28].copy_from_slice(&100u32.to_le_bytes());
        let a = Archive::parse(&bytes).unwrap();
        assert_eq!(a.entries()[0].size, 100);
        assert!(a.entries()[0].compressed_size < 4096, "a small stream");
        match a.read(&a.entries()[0]) {
            // The crate's reader stops at the declared size itself; the `take` is the
            // second fence.
            Err(Error::Damaged(m)) => {
                assert!(m.contains("larger than its declared") || m.contains("holds 101 bytes"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn overlapping_entries_are_refused() {
        // Two directory records for one local entry.
        let body = local("a.twb", TWB);
        let twice = with_directory(body.clone(), &[("a.twb", 0, TWB), ("b.twb", 0, TWB)]);
        assert_eq!(
            Archive::parse(&twice).err(),
            Some(Error::Overlapping { first: "a.twb".into(), second: "b.twb".into() })
        );
        // An entry whose stored data holds a whole second entry that the directory also lists
        // (the overlapping zip bomb, quoted so that both are valid on their own).
        let inner = local("inner.png", b"inner data");
        let outer_data = inner.clone();
        let mut body = local("outer.bin", &outer_data);
        let inner_at = (body.len() - outer_data.len()) as u32;
        let nested = with_directory(
            std::mem::take(&mut body),
            &[("outer.bin", 0, &outer_data), ("inner.png", inner_at, b"inner data")],
        );
        match Archive::parse(&nested) {
            Err(Error::Overlapping { first, second }) => {
                assert_eq!((first.as_str(), second.as_str()), ("outer.bin", "inner.png"))
            }
            other => panic!("{other:?}"),
        }
        let e = Error::Overlapping { first: "a".into(), second: "b".into() }.to_string();
        assert!(e.contains("zip-bomb") && e.contains("save the package again"), "{e}");
        // Entries side by side are fine.
        let mut body = local("a.twb", TWB);
        let b_at = body.len() as u32;
        body.extend(local("b.png", b"png"));
        let apart = with_directory(body, &[("a.twb", 0, TWB), ("b.png", b_at, b"png")]);
        let a = Archive::parse(&apart).unwrap();
        assert_eq!(a.read(a.entry("b.png").unwrap()).unwrap(), b"png");
    }

    #[test]
    fn a_directory_record_past_the_end_of_the_file_is_refused() {
        let body = local("a.twb", TWB);
        let far = with_directory(body.clone(), &[("a.twb", 0, TWB), ("b.twb", 1 << 30, TWB)]);
        assert!(matches!(Archive::parse(&far), Err(Error::Damaged(_))), "{:?}", Archive::parse(&far).err());
        // A recorded compressed size that reaches into the directory and beyond.
        let mut long = with_directory(body, &[("a.twb", 0, TWB)]);
        let cd = long.windows(4).position(|w| w == CENTRAL).unwrap();
        long[cd + 20..cd + 24].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(matches!(Archive::parse(&long), Err(Error::Damaged(_))), "{:?}", Archive::parse(&long).err());
    }

    #[test]
    fn names_that_leave_the_package_are_not_rewritten() {
        for bad in [
            "../evil.twb",
            "/etc/passwd",
            "\\\\host\\share",
            "C:/x.twb",
            "c:evil",
            "a/../../b.twb",
            "Data\\..\\..\\x",
            "a\0b",
        ] {
            let mut w = Writer::new();
            w.add_deflated("Book.twb", TWB).unwrap();
            w.add_deflated(bad, b"x").unwrap();
            let bytes = w.finish(b"").unwrap();
            let a = Archive::parse(&bytes).unwrap();
            assert!(!a.entry(bad).unwrap().has_safe_name(), "{bad}");
            assert_eq!(a.replace("Book.twb", b"<workbook/>").err(), Some(Error::UnsafeName(bad.into())), "{bad}");
            assert!(a.read(a.entry("Book.twb").unwrap()).is_ok(), "reading in memory stays possible");
        }
        for good in ["Book.twb", "Data/Extracts/x..y.hyper", "Image/é.png", "a/./b", "..hidden"] {
            let mut w = Writer::new();
            w.add_deflated(good, b"x").unwrap();
            let bytes = w.finish(b"").unwrap();
            assert!(Archive::parse(&bytes).unwrap().entries()[0].has_safe_name(), "{good}");
        }
    }
}
