//! The filter's file, written by `app passwords import` and read at start-up. Everything
//! little-endian:
//!
//! | field | bytes |
//! |---|---|
//! | magic `AUTHBPF\0` | 8 |
//! | format version ([`FORMAT_VERSION`]) | 4 |
//! | count of distinct hashes | 8 |
//! | false-positive rate (f64) | 8 |
//! | source: length, then UTF-8 (the input file's name) | 4 + n |
//! | the filter's seed, segment length, its mask, segments' total length | 8 + 4 + 4 + 4 |
//! | number of fingerprints | 8 |
//! | fingerprints (u16 each) | 2 each |
//! | SHA-256 of everything above | 32 |
//!
//! The digest at the end finds a corrupt file, and its absence a truncated one, before
//! the filter answers a single question.

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    path::Path,
};

use sha2::{Digest as _, Sha256};
use xorf::{BinaryFuse16, Descriptor};

use super::{BreachedPasswords, FALSE_POSITIVE_RATE};

/// The first bytes of every filter file.
const MAGIC: [u8; 8] = *b"AUTHBPF\0";

/// The version of the layout above; a file of another is refused, never guessed at.
pub const FORMAT_VERSION: u32 = 1;

/// The longest source name kept, in bytes.
const MAX_SOURCE_BYTES: usize = 1024;

/// Fingerprints are read and written this many at a time.
const CHUNK: usize = 32 * 1024;

/// Why a filter file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum FilterFileError {
    /// It could not be opened or read.
    #[error("cannot read it: {0}")]
    Io(io::Error),
    /// It is not a filter file at all.
    #[error("not a breached-password filter (wrong magic number)")]
    BadMagic,
    /// It is a filter file of another format version.
    #[error("format version {0}, but this build reads version {FORMAT_VERSION}: rebuild it with `app passwords import`")]
    Version(u32),
    /// It ends before its end.
    #[error("truncated: the file ends early")]
    Truncated,
    /// Its content does not hold together.
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
}

impl From<io::Error> for FilterFileError {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated
        } else {
            Self::Io(error)
        }
    }
}

impl BreachedPasswords {
    /// Loads the filter file at `path`.
    pub fn open(path: &Path) -> Result<Self, FilterFileError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        read(BufReader::new(file), Some(len))
    }

    /// Reads a filter file from `reader`.
    pub fn read_from(reader: impl Read) -> Result<Self, FilterFileError> {
        read(reader, None)
    }

    /// Writes the filter file to `path`, replacing it only once it is whole: a reader
    /// never sees half a file.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let mut writer = BufWriter::new(File::create(&partial)?);
        self.write_to(&mut writer)?;
        writer
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        std::fs::rename(&partial, path)
    }

    /// Writes the filter file to `writer`.
    pub fn write_to(&self, writer: impl Write) -> io::Result<()> {
        let mut out = Digesting::new(writer);
        let descriptor = &self.0.fuse.descriptor;
        let source = truncated(&self.0.source, MAX_SOURCE_BYTES);
        out.write_all(&MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(&self.0.count.to_le_bytes())?;
        out.write_all(&FALSE_POSITIVE_RATE.to_le_bytes())?;
        out.write_all(&(source.len() as u32).to_le_bytes())?;
        out.write_all(source.as_bytes())?;
        out.write_all(&descriptor.seed.to_le_bytes())?;
        out.write_all(&descriptor.segment_length.to_le_bytes())?;
        out.write_all(&descriptor.segment_length_mask.to_le_bytes())?;
        out.write_all(&descriptor.segment_count_length.to_le_bytes())?;
        let fingerprints = &self.0.fuse.fingerprints;
        out.write_all(&(fingerprints.len() as u64).to_le_bytes())?;
        let mut bytes = Vec::with_capacity(CHUNK * 2);
        for chunk in fingerprints.chunks(CHUNK) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|f| f.to_le_bytes()));
            out.write_all(&bytes)?;
        }
        let digest = out.digest.finalize_reset();
        out.inner.write_all(&digest)?;
        out.inner.flush()
    }
}

/// The bytes a file has besides its fingerprints and its source.
const FIXED_BYTES: u64 = 8 + 4 + 8 + 8 + 4 + 8 + 4 + 4 + 4 + 8 + 32;

fn read(reader: impl Read, file_len: Option<u64>) -> Result<BreachedPasswords, FilterFileError> {
    let mut input = Digesting::new(reader);
    if input.array::<8>()? != MAGIC {
        return Err(FilterFileError::BadMagic);
    }
    let version = u32::from_le_bytes(input.array()?);
    if version != FORMAT_VERSION {
        return Err(FilterFileError::Version(version));
    }
    let count = u64::from_le_bytes(input.array()?);
    let _false_positive_rate = f64::from_le_bytes(input.array()?);
    let source_len = u32::from_le_bytes(input.array()?) as usize;
    if source_len > MAX_SOURCE_BYTES {
        return Err(FilterFileError::Corrupt("the source's name is too long"));
    }
    let mut source = vec![0; source_len];
    input.read_exact(&mut source)?;
    let source = String::from_utf8(source)
        .map_err(|_| FilterFileError::Corrupt("the source's name is not UTF-8"))?;
    let descriptor = Descriptor {
        seed: u64::from_le_bytes(input.array()?),
        segment_length: u32::from_le_bytes(input.array()?),
        segment_length_mask: u32::from_le_bytes(input.array()?),
        segment_count_length: u32::from_le_bytes(input.array()?),
    };
    let len = u64::from_le_bytes(input.array()?);
    check_layout(&descriptor, len)?;
    if let Some(file_len) = file_len {
        let expected = FIXED_BYTES + source_len as u64 + len * 2;
        if file_len < expected {
            return Err(FilterFileError::Truncated);
        }
        if file_len > expected {
            return Err(FilterFileError::Corrupt("bytes after the end"));
        }
    }
    let len = usize::try_from(len).map_err(|_| FilterFileError::Corrupt("too large"))?;
    // Reserved whole only once the file's length vouches for it; grown otherwise.
    let mut fingerprints = Vec::with_capacity(if file_len.is_some() {
        len
    } else {
        len.min(CHUNK)
    });
    let mut bytes = vec![0; CHUNK * 2];
    while fingerprints.len() < len {
        let n = (len - fingerprints.len()).min(CHUNK);
        let bytes = &mut bytes[..n * 2];
        input.read_exact(bytes)?;
        fingerprints.extend(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]])),
        );
    }
    let computed = input.digest.finalize_reset();
    let mut stored = [0; 32];
    input.inner.read_exact(&mut stored)?;
    if computed.as_slice() != stored {
        return Err(FilterFileError::Corrupt("checksum mismatch"));
    }
    if input.inner.read(&mut [0])? != 0 {
        return Err(FilterFileError::Corrupt("bytes after the end"));
    }
    let fuse = BinaryFuse16 {
        descriptor,
        fingerprints: fingerprints.into_boxed_slice(),
    };
    Ok(BreachedPasswords::from_parts(fuse, count, source))
}

/// A lookup reads fingerprints at offsets computed from the descriptor: a descriptor that
/// does not fit the fingerprints would read out of bounds (a panic in a request), so it is
/// checked even when the digest matches.
fn check_layout(descriptor: &Descriptor, fingerprints: u64) -> Result<(), FilterFileError> {
    let segment = descriptor.segment_length;
    let fits = segment.is_power_of_two()
        && descriptor.segment_length_mask == segment - 1
        && descriptor.segment_count_length.is_multiple_of(segment)
        && fingerprints == u64::from(descriptor.segment_count_length) + 2 * u64::from(segment);
    if fits {
        Ok(())
    } else {
        Err(FilterFileError::Corrupt(
            "the filter's layout does not fit its size",
        ))
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A reader or writer that digests what passes through it.
struct Digesting<T> {
    inner: T,
    digest: Sha256,
}

impl<T> Digesting<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            digest: Sha256::new(),
        }
    }
}

impl<R: Read> Digesting<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.digest.update(&*buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut bytes = [0; N];
        self.read_exact(&mut bytes)?;
        Ok(bytes)
    }
}

impl<W: Write> Digesting<W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.digest.update(bytes);
        self.inner.write_all(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Password;

    fn sample() -> (Vec<Password>, Vec<u8>) {
        let listed: Vec<Password> = (0..2_000)
            .map(|i| Password::new(format!("leaked-{i}")))
            .collect();
        let mut bytes = Vec::new();
        BreachedPasswords::of_passwords(&listed)
            .write_to(&mut bytes)
            .expect("written");
        (listed, bytes)
    }

    #[test]
    fn a_written_filter_reads_back_the_same() {
        let (listed, bytes) = sample();
        let filter = BreachedPasswords::read_from(bytes.as_slice()).expect("read");
        assert_eq!(filter.count(), 2_000);
        assert_eq!(filter.source(), "passwords given");
        assert!(listed.iter().all(|p| filter.contains(p)));
        assert!(!filter.contains(&Password::new("velvet-otter-harbour")));
    }

    #[test]
    fn a_file_of_something_else_is_not_a_filter() {
        let (_, mut bytes) = sample();
        bytes[0] = b'X';
        assert!(matches!(
            BreachedPasswords::read_from(bytes.as_slice()),
            Err(FilterFileError::BadMagic)
        ));
    }

    #[test]
    fn another_format_version_is_refused() {
        let (_, mut bytes) = sample();
        bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
        let error = BreachedPasswords::read_from(bytes.as_slice()).unwrap_err();
        assert!(matches!(error, FilterFileError::Version(2)), "{error}");
    }

    #[test]
    fn a_truncated_file_is_refused_wherever_it_ends() {
        let (_, bytes) = sample();
        for end in [0, 5, 20, 60, bytes.len() / 2, bytes.len() - 1] {
            let error = BreachedPasswords::read_from(&bytes[..end]).unwrap_err();
            assert!(
                matches!(error, FilterFileError::Truncated),
                "{end}: {error}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_is_found_by_the_checksum() {
        let (_, mut bytes) = sample();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        let error = BreachedPasswords::read_from(bytes.as_slice()).unwrap_err();
        assert!(
            matches!(error, FilterFileError::Corrupt("checksum mismatch")),
            "{error}"
        );
    }

    #[test]
    fn a_layout_that_does_not_fit_is_refused_before_the_checksum() {
        let (_, mut bytes) = sample();
        // The fingerprints' count, just before them: source "passwords given" (15 bytes).
        let at = 8 + 4 + 8 + 8 + 4 + 15 + 20;
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        bytes[at..at + 8].copy_from_slice(&(len + 1).to_le_bytes());
        let error = BreachedPasswords::read_from(bytes.as_slice()).unwrap_err();
        assert!(matches!(error, FilterFileError::Corrupt(_)), "{error}");
    }

    #[test]
    fn bytes_after_the_end_are_refused() {
        let (_, mut bytes) = sample();
        bytes.push(0);
        let error = BreachedPasswords::read_from(bytes.as_slice()).unwrap_err();
        assert!(matches!(error, FilterFileError::Corrupt(_)), "{error}");
    }

    #[test]
    fn a_saved_file_opens_and_a_short_one_is_truncated() {
        let dir = std::env::temp_dir().join(format!("breached-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("filter.bin");
        let (listed, bytes) = sample();
        BreachedPasswords::read_from(bytes.as_slice())
            .expect("read")
            .save(&path)
            .expect("saved");
        let filter = BreachedPasswords::open(&path).expect("opened");
        assert!(filter.contains(&listed[0]));
        std::fs::write(&path, &bytes[..bytes.len() - 10]).expect("written");
        let error = BreachedPasswords::open(&path).unwrap_err();
        assert!(matches!(error, FilterFileError::Truncated), "{error}");
        let error = BreachedPasswords::open(&dir.join("missing.bin")).unwrap_err();
        assert!(matches!(error, FilterFileError::Io(_)), "{error}");
        std::fs::remove_dir_all(&dir).expect("removed");
    }
}
