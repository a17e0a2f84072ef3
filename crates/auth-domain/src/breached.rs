//! The offline breached-password check: a set of SHA-1s of leaked passwords (from
//! HaveIBeenPwned's downloader, [`hibp`]) kept as a binary fuse filter with 16-bit
//! fingerprints, loaded from a file of ours ([`file`]) and asked in memory. Nothing here
//! touches the network.
//!
//! A filter answers "maybe in the set" or "certainly not": an imported password is always
//! found, and a password that was never imported is taken for a breached one with the
//! probability [`FALSE_POSITIVE_RATE`] (one in 65,536), a refusal its user can answer by
//! choosing another password.

pub mod file;
pub mod hibp;

use std::{fmt, sync::Arc};

use sha1::{Digest as _, Sha1};
use xorf::{BinaryFuse16, Filter as _};

use crate::Password;

/// The chance that a password which was never imported is found all the same: a 16-bit
/// fingerprint matches by chance once in 2^16.
pub const FALSE_POSITIVE_RATE: f64 = 1.0 / 65_536.0;

/// The filter's key for a SHA-1: its first 64 bits. SHA-1 spreads them evenly, and two
/// of a billion passwords share them with a chance of about 3%, which only makes one of
/// them found for the other (a false positive, never a miss).
pub fn key(sha1: &[u8; 20]) -> u64 {
    let mut first = [0; 8];
    first.copy_from_slice(&sha1[..8]);
    u64::from_be_bytes(first)
}

/// The SHA-1 of a password, as HaveIBeenPwned hashes it: of its UTF-8 bytes, as typed.
fn sha1_of(password: &Password) -> [u8; 20] {
    Sha1::digest(password.expose().as_bytes()).into()
}

/// A loaded set of breached passwords. Cloning shares it.
#[derive(Clone)]
pub struct BreachedPasswords(Arc<Loaded>);

/// The filter and what its file says about it.
struct Loaded {
    fuse: BinaryFuse16,
    count: u64,
    source: String,
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// There was not one hash to build it from.
    #[error("no hashes to build a filter from")]
    Empty,
    /// More distinct hashes than a filter holds (2^32 - 1).
    #[error("too many hashes for one filter: {0}")]
    TooMany(usize),
    /// The filter's construction gave up (it does not, for distinct keys).
    #[error("the filter could not be built: {0}")]
    Construction(&'static str),
}

impl BreachedPasswords {
    /// The filter of `keys` (see [`key`]; duplicates allowed), saying it was built from
    /// `source`. Sorts `keys` in place to drop duplicates: the filter's construction needs
    /// distinct keys.
    pub fn build(mut keys: Vec<u64>, source: &str) -> Result<Self, BuildError> {
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Err(BuildError::Empty);
        }
        // The construction counts in u32.
        if u32::try_from(keys.len()).is_err() {
            return Err(BuildError::TooMany(keys.len()));
        }
        let fuse = BinaryFuse16::try_from(&keys).map_err(BuildError::Construction)?;
        Ok(Self::from_parts(fuse, keys.len() as u64, source.to_owned()))
    }

    /// The filter of these passwords, in memory: for tests and tools.
    pub fn of_passwords<'a>(passwords: impl IntoIterator<Item = &'a Password>) -> Self {
        let keys = passwords.into_iter().map(|p| key(&sha1_of(p))).collect();
        Self::build(keys, "passwords given").expect("at least one password")
    }

    fn from_parts(fuse: BinaryFuse16, count: u64, source: String) -> Self {
        Self(Arc::new(Loaded {
            fuse,
            count,
            source,
        }))
    }

    /// Whether `password` is in the set (or, with [`FALSE_POSITIVE_RATE`], looks so).
    /// One SHA-1 and three memory reads: cheap enough for the request's own thread.
    pub fn contains(&self, password: &Password) -> bool {
        self.0.fuse.contains(&key(&sha1_of(password)))
    }

    /// How many distinct hashes it was built from.
    pub fn count(&self) -> u64 {
        self.0.count
    }

    /// The name of the file it was built from.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// The size of its fingerprints, in bytes: about what it takes in memory and on disk.
    pub fn size_bytes(&self) -> u64 {
        self.0.fuse.fingerprints.len() as u64 * 2
    }
}

impl fmt::Debug for BreachedPasswords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreachedPasswords")
            .field("count", &self.0.count)
            .field("source", &self.0.source)
            .finish_non_exhaustive()
    }
}

/// Two handles are equal when they share one loaded filter.
impl PartialEq for BreachedPasswords {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for BreachedPasswords {}

#[cfg(test)]
mod tests {
    use super::*;

    fn passwords(n: usize, prefix: &str) -> Vec<Password> {
        (0..n)
            .map(|i| Password::new(format!("{prefix}-{i}")))
            .collect()
    }

    #[test]
    fn every_imported_password_is_found() {
        let listed = passwords(5_000, "leaked");
        let filter = BreachedPasswords::of_passwords(&listed);
        assert_eq!(filter.count(), 5_000);
        assert!(listed.iter().all(|p| filter.contains(p)));
    }

    #[test]
    fn few_other_passwords_are_taken_for_breached_ones() {
        let filter = BreachedPasswords::of_passwords(&passwords(5_000, "leaked"));
        let found = passwords(10_000, "never-leaked")
            .iter()
            .filter(|p| filter.contains(p))
            .count();
        // Expected 10,000 / 65,536 ≈ 0.15; twenty times that would be a broken filter.
        let rate = found as f64 / 10_000.0;
        assert!(rate < 20.0 * FALSE_POSITIVE_RATE, "{found} false positives");
    }

    #[test]
    fn duplicates_count_once() {
        let filter = BreachedPasswords::build(vec![7, 7, 3, 7, 3], "dups").expect("built");
        assert_eq!(filter.count(), 2);
    }

    #[test]
    fn a_single_hash_makes_a_filter() {
        let one = [Password::new("hunter2-but-longer")];
        let filter = BreachedPasswords::of_passwords(&one);
        assert!(filter.contains(&one[0]));
    }

    #[test]
    fn nothing_makes_no_filter() {
        assert!(matches!(
            BreachedPasswords::build(Vec::new(), "none"),
            Err(BuildError::Empty)
        ));
    }

    #[test]
    fn the_key_is_the_first_64_bits_of_the_sha1() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
        let sha1 = sha1_of(&Password::new("password"));
        assert_eq!(key(&sha1), 0x5BAA_61E4_C9B9_3F3F);
    }
}
