//! Zip archives as Tableau packages files in them (`.twbx`, `.tdsx`): read one entry, and
//! write a new archive in which one entry is replaced and every other entry is copied with
//! its compressed bytes and CRC untouched.
//!
//! What is read: stored (0) and deflated (8) entries, located through the central directory
//! (so local headers whose sizes are deferred to a data descriptor, general-purpose bit 3,
//! are fine), zip64 sizes, offsets and end records, UTF-8 and legacy names; every inflated
//! entry is checked against its CRC-32 and its recorded size. Refused with an error naming
//! the fix: archives spanning several disks, encrypted entries (only when one of them must
//! be inflated or rewritten), other compression methods (only for an entry that is read).
//!
//! What is written: local headers carry the sizes and CRC (bit 3 is cleared and no data
//! descriptor follows), the central directory keeps each entry's times, attributes, extra
//! fields and comments, and zip64 records appear only where a size, offset or count needs
//! them. Inflate and deflate come from `miniz_oxide` (pure Rust); the CRC is a table CRC-32.

use std::borrow::Cow;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
/// The extra-field tag of zip64 sizes and offsets.
const ZIP64_TAG: u16 = 0x0001;
/// General-purpose flag bits.
const ENCRYPTED: u16 = 0x0001;
const DATA_DESCRIPTOR: u16 = 0x0008;
const UTF8_NAME: u16 = 0x0800;
/// An entry read into memory may not inflate to more than this (a `.twb` is XML text).
pub const READ_LIMIT: u64 = 1 << 30;

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
    /// An entry too large to read into memory.
    #[error(
        "the entry {name} inflates to {size} bytes, over the {READ_LIMIT}-byte limit for a document read into memory"
    )]
    TooLarge { name: String, size: u64 },
    /// No entry with the wanted extension.
    #[error("the archive holds no {0} file; export the packaged file again from Tableau Desktop")]
    NoDocument(String),
    /// Several candidate documents at the same depth.
    #[error("the archive holds several {ext} files at the same level ({names}); keep one of them and package it again")]
    Ambiguous { ext: String, names: String },
}

/// Result of zip operations.
pub type Result<T> = std::result::Result<T, Error>;

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// The CRC-32 (IEEE 802.3, as zip uses it) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn damaged(what: impl Into<String>) -> Error {
    Error::Damaged(what.into())
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn range(b: &[u8], start: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    b.get(start..end)
}

/// The extra field without its zip64 block (the writer adds one back where needed), and
/// the zip64 block's payload.
fn split_extra(extra: &[u8]) -> (Vec<u8>, Option<&[u8]>) {
    let mut rest = Vec::with_capacity(extra.len());
    let mut zip64 = None;
    let mut at = 0;
    while at + 4 <= extra.len() {
        let tag = u16::from_le_bytes([extra[at], extra[at + 1]]);
        let len = u16::from_le_bytes([extra[at + 2], extra[at + 3]]) as usize;
        let Some(body) = extra.get(at + 4..at + 4 + len) else { break };
        if tag == ZIP64_TAG {
            zip64 = Some(body);
        } else {
            rest.extend_from_slice(&extra[at..at + 4 + len]);
        }
        at += 4 + len;
    }
    // A trailing fragment that is not a whole block is kept as it was.
    rest.extend_from_slice(&extra[at.min(extra.len())..]);
    (rest, zip64)
}

/// One entry of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as stored (`/`-separated), decoded as UTF-8 (lossily for legacy names).
    pub name: String,
    /// Compression method: 0 stored, 8 deflate.
    pub method: u16,
    /// The recorded CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Size of the compressed data.
    pub compressed_size: u64,
    /// Size of the uncompressed data.
    pub size: u64,
    raw_name: Vec<u8>,
    made_by: u16,
    needed: u16,
    flags: u16,
    time: u16,
    date: u16,
    internal_attributes: u16,
    external_attributes: u32,
    central_extra: Vec<u8>,
    local_extra: Vec<u8>,
    comment: Vec<u8>,
    data_start: u64,
}

impl Entry {
    /// A directory entry (name ending in `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// Encrypted (general-purpose bit 0).
    pub fn is_encrypted(&self) -> bool {
        self.flags & ENCRYPTED != 0
    }
}

/// A parsed archive over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    entries: Vec<Entry>,
    comment: Vec<u8>,
}

/// Whether `bytes` start like a zip archive (a local header, or the end record of an
/// empty archive).
pub fn looks_like_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

impl<'a> Archive<'a> {
    /// Reads the central directory of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let end = find_end(bytes)?;
        let disk = u16_at(bytes, end + 4).unwrap_or(0);
        let cd_disk = u16_at(bytes, end + 6).unwrap_or(0);
        let here = u16_at(bytes, end + 8).unwrap_or(0);
        let mut count = u16_at(bytes, end + 10).unwrap_or(0) as u64;
        let mut cd_size = u32_at(bytes, end + 12).unwrap_or(0) as u64;
        let mut cd_offset = u32_at(bytes, end + 16).unwrap_or(0) as u64;
        let comment_len = u16_at(bytes, end + 20).unwrap_or(0) as usize;
        let comment = bytes.get(end + 22..end + 22 + comment_len).unwrap_or_default().to_vec();
        let mut cd_limit = end as u64;
        let locator = end.checked_sub(20).filter(|&l| u32_at(bytes, l) == Some(LOCATOR64));
        if let Some(l) = locator {
            let end64_disk = u32_at(bytes, l + 4).ok_or_else(|| damaged("zip64 locator"))?;
            let end64 = u64_at(bytes, l + 8).ok_or_else(|| damaged("zip64 locator"))?;
            let disks = u32_at(bytes, l + 16).ok_or_else(|| damaged("zip64 locator"))?;
            if end64_disk != 0 || disks > 1 {
                return Err(Error::MultiDisk);
            }
            let e = usize::try_from(end64).ok().filter(|&e| e < l).ok_or_else(|| damaged("zip64 end record offset"))?;
            if u32_at(bytes, e) != Some(END64) {
                return Err(damaged("zip64 end record signature"));
            }
            let field = |o: usize| u64_at(bytes, e + o).ok_or_else(|| damaged("zip64 end record"));
            let (d, cd) = (u32_at(bytes, e + 16).unwrap_or(0), u32_at(bytes, e + 20).unwrap_or(0));
            if d != 0 || cd != 0 || field(24)? != field(32)? {
                return Err(Error::MultiDisk);
            }
            count = field(32)?;
            cd_size = field(40)?;
            cd_offset = field(48)?;
            cd_limit = e as u64;
        } else if disk != 0 || cd_disk != 0 || here as u64 != count {
            return Err(Error::MultiDisk);
        }
        if cd_offset.checked_add(cd_size).is_none_or(|e| e > cd_limit) {
            return Err(damaged(format!(
                "the central directory ({cd_size} bytes at {cd_offset}) lies outside the file"
            )));
        }
        let cd = range(bytes, cd_offset, cd_size).ok_or_else(|| damaged("central directory"))?;
        let mut entries = Vec::with_capacity(count.min(cd.len() as u64 / 46) as usize);
        let mut at = 0usize;
        for n in 0..count {
            let (entry, next) = central_entry(bytes, cd, at, cd_offset).map_err(|e| match e {
                Error::Damaged(d) => damaged(format!("central directory entry {}: {d}", n + 1)),
                other => other,
            })?;
            entries.push(entry);
            at = next;
        }
        Ok(Archive { bytes, entries, comment })
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
    pub fn raw(&self, e: &Entry) -> Result<&'a [u8]> {
        range(self.bytes, e.data_start, e.compressed_size)
            .ok_or_else(|| damaged(format!("the data of {} runs past the end of the file", e.name)))
    }

    /// The uncompressed bytes of an entry, checked against its size and CRC-32.
    pub fn read(&self, e: &Entry) -> Result<Vec<u8>> {
        if e.is_encrypted() {
            return Err(Error::Encrypted(e.name.clone()));
        }
        if e.size > READ_LIMIT {
            return Err(Error::TooLarge { name: e.name.clone(), size: e.size });
        }
        let raw = self.raw(e)?;
        let data = match e.method {
            0 => raw.to_vec(),
            // One byte over the recorded size, so a longer stream shows as a size mismatch.
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(raw, e.size as usize + 1)
                .map_err(|x| damaged(format!("{} does not inflate: {x}", e.name)))?,
            method => return Err(Error::Method { name: e.name.clone(), method }),
        };
        if data.len() as u64 != e.size {
            return Err(damaged(format!("{} holds {} bytes, the directory says {}", e.name, data.len(), e.size)));
        }
        let actual = crc32(&data);
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
        if top.len() > 1 {
            return Err(Error::Ambiguous {
                ext: ext.to_string(),
                names: top.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
        Ok(top[0])
    }

    /// A new archive with the entry `name` holding `content` (deflated again) and every
    /// other entry copied as it is: same compressed bytes, CRC, times, attributes and order.
    pub fn replace(&self, name: &str, content: &[u8]) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        let mut found = false;
        for e in &self.entries {
            if e.name == name {
                if e.is_encrypted() {
                    return Err(Error::Encrypted(e.name.clone()));
                }
                w.add_deflated_like(e, content);
                found = true;
            } else {
                w.copy(self, e)?;
            }
        }
        if !found {
            return Err(damaged(format!("no entry named {name}")));
        }
        Ok(w.finish(&self.comment))
    }
}

/// Finds the end-of-central-directory record: the last signature whose comment length
/// reaches exactly to the end of the file (or, for files with trailing bytes, the last one).
fn find_end(bytes: &[u8]) -> Result<usize> {
    if bytes.len() < 22 {
        return Err(if looks_like_zip(bytes) { damaged("shorter than an end record") } else { Error::NotZip });
    }
    let last = bytes.len() - 22;
    let first = last.saturating_sub(u16::MAX as usize);
    let mut fallback = None;
    for at in (first..=last).rev() {
        if u32_at(bytes, at) == Some(END) {
            let comment = u16_at(bytes, at + 20).unwrap_or(0) as usize;
            if at + 22 + comment == bytes.len() {
                return Ok(at);
            }
            if fallback.is_none() && at + 22 + comment <= bytes.len() {
                fallback = Some(at);
            }
        }
    }
    fallback.ok_or(if looks_like_zip(bytes) {
        damaged("no end-of-central-directory record; the file is probably cut short")
    } else {
        Error::NotZip
    })
}

/// One central-directory entry at `at` within `cd`, and where the next one starts.
fn central_entry(bytes: &[u8], cd: &[u8], at: usize, cd_offset: u64) -> Result<(Entry, usize)> {
    let f16 = |o: usize| u16_at(cd, at + o).ok_or_else(|| damaged("cut short"));
    let f32 = |o: usize| u32_at(cd, at + o).ok_or_else(|| damaged("cut short"));
    if f32(0)? != CENTRAL {
        return Err(damaged("wrong signature"));
    }
    let (name_len, extra_len, comment_len) = (f16(28)? as usize, f16(30)? as usize, f16(32)? as usize);
    let name_at = at + 46;
    let raw_name = cd.get(name_at..name_at + name_len).ok_or_else(|| damaged("name cut short"))?.to_vec();
    let extra = cd.get(name_at + name_len..name_at + name_len + extra_len).ok_or_else(|| damaged("extra cut short"))?;
    let comment_at = name_at + name_len + extra_len;
    let comment = cd.get(comment_at..comment_at + comment_len).ok_or_else(|| damaged("comment cut short"))?.to_vec();
    let flags = f16(8)?;
    let name = match String::from_utf8(raw_name.clone()) {
        Ok(s) => s,
        Err(_) if flags & UTF8_NAME != 0 => return Err(damaged("a name flagged UTF-8 is not UTF-8")),
        Err(_) => String::from_utf8_lossy(&raw_name).into_owned(),
    };
    let (central_extra, zip64) = split_extra(extra);
    let mut size = f32(24)? as u64;
    let mut compressed_size = f32(20)? as u64;
    let mut offset = f32(42)? as u64;
    let mut disk = f16(34)? as u32;
    // The zip64 block holds, in this order, only the fields whose 32/16-bit slot is saturated.
    let mut z = zip64.unwrap_or_default();
    let mut take64 = |v: &mut u64| -> Result<()> {
        if *v == u32::MAX as u64 {
            *v = u64_at(z, 0).ok_or_else(|| damaged(format!("{name}: zip64 field missing")))?;
            z = &z[8..];
        }
        Ok(())
    };
    take64(&mut size)?;
    take64(&mut compressed_size)?;
    take64(&mut offset)?;
    if disk == u16::MAX as u32 {
        disk = u32_at(z, 0).ok_or_else(|| damaged(format!("{name}: zip64 disk missing")))?;
    }
    if disk != 0 {
        return Err(Error::MultiDisk);
    }
    // The local header: its own name and extra lengths decide where the data starts.
    let lh = range(bytes, offset, 30).ok_or_else(|| damaged(format!("{name}: local header outside the file")))?;
    if u32_at(lh, 0) != Some(LOCAL) {
        return Err(damaged(format!("{name}: no local header at offset {offset}")));
    }
    let local_name_len = u16_at(lh, 26).unwrap_or(0) as u64;
    let local_extra_len = u16_at(lh, 28).unwrap_or(0) as u64;
    let local_extra = range(bytes, offset + 30 + local_name_len, local_extra_len)
        .ok_or_else(|| damaged(format!("{name}: local header cut short")))?;
    let data_start = offset + 30 + local_name_len + local_extra_len;
    if data_start.checked_add(compressed_size).is_none_or(|e| e > cd_offset) {
        return Err(damaged(format!("{name}: its {compressed_size} bytes run into the central directory")));
    }
    let entry = Entry {
        name,
        method: f16(10)?,
        crc32: f32(16)?,
        compressed_size,
        size,
        raw_name,
        made_by: f16(4)?,
        needed: f16(6)?,
        flags,
        time: f16(12)?,
        date: f16(14)?,
        internal_attributes: f16(36)?,
        external_attributes: f32(38)?,
        central_extra,
        local_extra: split_extra(local_extra).0,
        comment,
        data_start,
    };
    Ok((entry, comment_at + comment_len))
}

/// Builds an archive in memory, entry after entry.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    central: Vec<u8>,
    count: u64,
    force_zip64: bool,
}

/// A deflated entry's metadata as the writer needs it.
struct Meta<'e> {
    raw_name: Cow<'e, [u8]>,
    made_by: u16,
    needed: u16,
    flags: u16,
    method: u16,
    time: u16,
    date: u16,
    crc32: u32,
    compressed_size: u64,
    size: u64,
    internal_attributes: u16,
    external_attributes: u32,
    central_extra: &'e [u8],
    local_extra: &'e [u8],
    comment: &'e [u8],
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// A 32-bit field, or the saturated marker when the value needs the zip64 block.
fn narrow(x: u64, force: bool) -> u32 {
    if force || x >= u32::MAX as u64 { u32::MAX } else { x as u32 }
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    /// Writes zip64 sizes and end records even when the values fit in 32 bits (as some
    /// tools do); readers must accept both forms.
    pub fn force_zip64(mut self) -> Self {
        self.force_zip64 = true;
        self
    }

    /// Copies an entry of `from` with its compressed bytes and CRC unchanged.
    pub fn copy(&mut self, from: &Archive<'_>, e: &Entry) -> Result<()> {
        if e.is_encrypted() && e.flags & DATA_DESCRIPTOR != 0 {
            // Traditional encryption checks a header byte against the time instead of the
            // CRC when a data descriptor is used; rewriting the header would break it.
            return Err(Error::Encrypted(e.name.clone()));
        }
        let raw = from.raw(e)?;
        self.put(
            &Meta {
                raw_name: Cow::Borrowed(&e.raw_name),
                made_by: e.made_by,
                needed: e.needed,
                flags: e.flags & !DATA_DESCRIPTOR,
                method: e.method,
                time: e.time,
                date: e.date,
                crc32: e.crc32,
                compressed_size: e.compressed_size,
                size: e.size,
                internal_attributes: e.internal_attributes,
                external_attributes: e.external_attributes,
                central_extra: &e.central_extra,
                local_extra: &e.local_extra,
                comment: &e.comment,
            },
            raw,
        );
        Ok(())
    }

    /// Adds `data` deflated under the name, times and attributes of `like`.
    pub fn add_deflated_like(&mut self, like: &Entry, data: &[u8]) {
        let packed = miniz_oxide::deflate::compress_to_vec(data, 6);
        self.put(
            &Meta {
                raw_name: Cow::Borrowed(&like.raw_name),
                made_by: like.made_by,
                needed: like.needed.max(20),
                flags: like.flags & UTF8_NAME,
                method: 8,
                time: like.time,
                date: like.date,
                crc32: crc32(data),
                compressed_size: packed.len() as u64,
                size: data.len() as u64,
                internal_attributes: like.internal_attributes,
                external_attributes: like.external_attributes,
                central_extra: &like.central_extra,
                local_extra: &like.local_extra,
                comment: &like.comment,
            },
            &packed,
        );
    }

    /// Adds a new deflated file entry (regular file, mode 0644, 1980-01-01 00:00).
    pub fn add_deflated(&mut self, name: &str, data: &[u8]) {
        let packed = miniz_oxide::deflate::compress_to_vec(data, 6);
        self.put(
            &Meta {
                raw_name: Cow::Owned(name.as_bytes().to_vec()),
                made_by: (3 << 8) | 20,
                needed: 20,
                flags: if name.is_ascii() { 0 } else { UTF8_NAME },
                method: 8,
                time: 0,
                date: (1 << 5) | 1,
                crc32: crc32(data),
                compressed_size: packed.len() as u64,
                size: data.len() as u64,
                internal_attributes: 0,
                external_attributes: 0o100644 << 16,
                central_extra: &[],
                local_extra: &[],
                comment: &[],
            },
            &packed,
        );
    }

    fn put(&mut self, m: &Meta<'_>, data: &[u8]) {
        let offset = self.out.len() as u64;
        let force = self.force_zip64;
        let big = force || m.size >= u32::MAX as u64 || m.compressed_size >= u32::MAX as u64;
        let needed = if big || offset >= u32::MAX as u64 { m.needed.max(45) } else { m.needed };
        // Local header: a zip64 block here always has both sizes.
        let mut local_extra = Vec::new();
        if big {
            put16(&mut local_extra, ZIP64_TAG);
            put16(&mut local_extra, 16);
            put64(&mut local_extra, m.size);
            put64(&mut local_extra, m.compressed_size);
        }
        local_extra.extend_from_slice(m.local_extra);
        let o = &mut self.out;
        put32(o, LOCAL);
        put16(o, needed);
        put16(o, m.flags);
        put16(o, m.method);
        put16(o, m.time);
        put16(o, m.date);
        put32(o, m.crc32);
        put32(o, if big { u32::MAX } else { m.compressed_size as u32 });
        put32(o, if big { u32::MAX } else { m.size as u32 });
        put16(o, m.raw_name.len() as u16);
        put16(o, local_extra.len() as u16);
        o.extend_from_slice(&m.raw_name);
        o.extend_from_slice(&local_extra);
        o.extend_from_slice(data);
        // Central directory: the zip64 block holds only the saturated fields, in order.
        let (size32, packed32, offset32) =
            (narrow(m.size, force), narrow(m.compressed_size, force), narrow(offset, force));
        let mut z = Vec::new();
        for (v, n) in [(m.size, size32), (m.compressed_size, packed32), (offset, offset32)] {
            if n == u32::MAX {
                put64(&mut z, v);
            }
        }
        let mut central_extra = Vec::new();
        if !z.is_empty() {
            put16(&mut central_extra, ZIP64_TAG);
            put16(&mut central_extra, z.len() as u16);
            central_extra.extend_from_slice(&z);
        }
        central_extra.extend_from_slice(m.central_extra);
        let c = &mut self.central;
        put32(c, CENTRAL);
        put16(c, m.made_by);
        put16(c, needed);
        put16(c, m.flags);
        put16(c, m.method);
        put16(c, m.time);
        put16(c, m.date);
        put32(c, m.crc32);
        put32(c, packed32);
        put32(c, size32);
        put16(c, m.raw_name.len() as u16);
        put16(c, central_extra.len() as u16);
        put16(c, m.comment.len() as u16);
        put16(c, 0);
        put16(c, m.internal_attributes);
        put32(c, m.external_attributes);
        put32(c, offset32);
        c.extend_from_slice(&m.raw_name);
        c.extend_from_slice(&central_extra);
        c.extend_from_slice(m.comment);
        self.count += 1;
    }

    /// The finished archive: entries, central directory, (zip64 end records,) end record.
    pub fn finish(mut self, comment: &[u8]) -> Vec<u8> {
        let cd_offset = self.out.len() as u64;
        let cd_size = self.central.len() as u64;
        self.out.append(&mut self.central);
        let force = self.force_zip64;
        let zip64 =
            force || self.count >= u16::MAX as u64 || cd_offset >= u32::MAX as u64 || cd_size >= u32::MAX as u64;
        let o = &mut self.out;
        if zip64 {
            let end64 = o.len() as u64;
            put32(o, END64);
            put64(o, 44);
            put16(o, (3 << 8) | 45);
            put16(o, 45);
            put32(o, 0);
            put32(o, 0);
            put64(o, self.count);
            put64(o, self.count);
            put64(o, cd_size);
            put64(o, cd_offset);
            put32(o, LOCATOR64);
            put32(o, 0);
            put64(o, end64);
            put32(o, 1);
        }
        let count16 = if zip64 { u16::MAX } else { self.count as u16 };
        put32(o, END);
        put16(o, 0);
        put16(o, 0);
        put16(o, count16);
        put16(o, count16);
        put32(o, if zip64 { u32::MAX } else { cd_size as u32 });
        put32(o, if zip64 { u32::MAX } else { cd_offset as u32 });
        let comment = &comment[..comment.len().min(u16::MAX as usize)];
        put16(o, comment.len() as u16);
        o.extend_from_slice(comment);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        w.add_deflated("Book.twb", &TWB.repeat(20));
        w.add_deflated("Data/Extracts/x.hyper", &binary(5000, 3));
        w.add_deflated("Image/é.png", b"");
        w.finish(b"made by a test")
    }

    /// A deflated entry written by hand, independently of [`Writer`]: optionally with its
    /// sizes deferred to a data descriptor (bit 3), as streaming writers do.
    fn handmade(entries: &[(&str, &[u8])], descriptor: bool) -> Vec<u8> {
        let (mut out, mut cd) = (Vec::new(), Vec::new());
        for (name, data) in entries {
            let packed = miniz_oxide::deflate::compress_to_vec(data, 9);
            let (crc, offset) = (crc32(data), out.len() as u32);
            let flags: u16 = if descriptor { 8 } else { 0 };
            let hidden = |v: u32| if descriptor { 0 } else { v };
            out.extend_from_slice(&LOCAL.to_le_bytes());
            for v in [20u16, flags, 8, 0x6000, 0x5a21] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [hidden(crc), hidden(packed.len() as u32), hidden(data.len() as u32)] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&packed);
            if descriptor {
                out.extend_from_slice(b"PK\x07\x08");
                for v in [crc, packed.len() as u32, data.len() as u32] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            cd.extend_from_slice(&CENTRAL.to_le_bytes());
            for v in [20u16, 20, flags, 8, 0x6000, 0x5a21] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, packed.len() as u32, data.len() as u32] {
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
        out.extend_from_slice(&END.to_le_bytes());
        for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_plain_and_zip64() {
        for zip64 in [false, true] {
            let bytes = package(zip64);
            assert_eq!(zip64, bytes.windows(4).any(|w| w == END64.to_le_bytes()), "zip64 end record");
            let a = Archive::parse(&bytes).unwrap();
            let names: Vec<&str> = a.entries().iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["Book.twb", "Data/Extracts/x.hyper", "Image/é.png"]);
            assert_eq!(a.read(&a.entries()[0]).unwrap(), TWB.repeat(20));
            assert!(a.entries()[0].compressed_size < a.entries()[0].size, "deflated");
            assert_eq!(a.read(&a.entries()[1]).unwrap(), binary(5000, 3));
            assert_eq!(a.read(&a.entries()[2]).unwrap(), b"");
            assert_eq!(a.comment, b"made by a test");
            assert_eq!(a.document(".twb").unwrap().name, "Book.twb");
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
            for (x, y) in a.entries().iter().zip(b.entries()).skip(1) {
                assert_eq!(a.raw(x).unwrap(), b.raw(y).unwrap(), "{}: compressed bytes", x.name);
                assert_eq!((x.crc32, x.size, x.method, x.time, x.date), (y.crc32, y.size, y.method, y.time, y.date));
                assert_eq!((&x.central_extra, x.external_attributes), (&y.central_extra, y.external_attributes));
            }
            // Replacing with the same text gives the same archive again (zip64 records are
            // written only where needed, so a forced-zip64 input comes back without them).
            let again = b.replace("Book.twb", &TWB.repeat(20)).unwrap();
            if zip64 {
                assert!(!again.windows(4).any(|w| w == END64.to_le_bytes()));
                let c = Archive::parse(&again).unwrap();
                assert_eq!(c.read(&c.entries()[1]).unwrap(), binary(5000, 3));
            } else {
                assert_eq!(again, bytes, "deterministic and faithful");
            }
            assert!(matches!(a.replace("Nope.twb", b""), Err(Error::Damaged(_))));
        }
    }

    #[test]
    fn data_descriptors_and_handmade_archives() {
        let hyper = binary(7000, 9);
        for descriptor in [false, true] {
            let bytes = handmade(&[("Book.twb", TWB), ("Data/Extracts/x.hyper", &hyper)], descriptor);
            let a = Archive::parse(&bytes).unwrap();
            assert_eq!(a.read(a.document(".twb").unwrap()).unwrap(), TWB);
            assert_eq!(a.read(&a.entries()[1]).unwrap(), hyper);
            // The rewritten archive puts sizes in the local headers and drops the descriptors.
            let out = a.replace("Book.twb", b"<workbook/>").unwrap();
            let b = Archive::parse(&out).unwrap();
            assert!(b.entries().iter().all(|e| e.flags & DATA_DESCRIPTOR == 0));
            assert_eq!(b.raw(&b.entries()[1]).unwrap(), a.raw(&a.entries()[1]).unwrap());
            assert_eq!(b.read(&b.entries()[1]).unwrap(), hyper);
            assert_eq!(u32_at(&out, 14), Some(crc32(b"<workbook/>")), "CRC in the local header");
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
        let cd_of_first = bytes.windows(4).position(|w| w == CENTRAL.to_le_bytes()).unwrap();
        let mut bad = bytes.clone();
        bad[cd_of_first + 16] ^= 0x55;
        let b = Archive::parse(&bad).unwrap();
        assert!(matches!(b.read(&b.entries()[0]), Err(Error::Crc { .. })), "{:?}", b.read(&b.entries()[0]));
        // A flipped bit inside the compressed data: inflating fails or the CRC catches it.
        // (Not in the first bytes: the extract does not compress, so they are a stored
        // block's header, whose padding bits mean nothing.)
        let start = a.entries()[1].data_start as usize;
        for k in [5usize, 100, 2000, 4999] {
            let mut bad = bytes.clone();
            bad[start + k] ^= 0x10;
            let b = Archive::parse(&bad).unwrap();
            assert!(b.read(&b.entries()[1]).is_err(), "flip at {k}");
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
        let cd = locked.windows(4).position(|w| w == CENTRAL.to_le_bytes()).unwrap();
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
                w.add_deflated(n, b"<workbook/>");
            }
            w.finish(b"")
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
    }

    #[test]
    fn garbage_and_mutations_never_panic() {
        let seeds = [package(false), package(true), handmade(&[("Book.twb", TWB)], true)];
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
}
