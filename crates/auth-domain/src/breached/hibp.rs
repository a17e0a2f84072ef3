//! HaveIBeenPwned's downloader format: one `SHA1HEX:COUNT` line per breached password
//! (40 hexadecimal digits, upper-case as published, then how often it was seen), read as
//! a stream: only the 64-bit keys are kept, never the text.

use std::io::{self, BufRead};

use sha1::{Digest as _, Sha1};

use super::key;
use crate::Password;

/// How many lines are read between two reports of progress.
const PROGRESS_EVERY: u64 = 1 << 16;

/// The shortest line there is (`<40 digits>:0\n`): a file of `n` bytes has at most
/// `n / SHORTEST_LINE` lines, so the keys never need to grow past that.
const SHORTEST_LINE: u64 = 43;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A line that is not `SHA1HEX:COUNT`.
    #[error("line {line}: {reason}")]
    Malformed {
        /// Its number, from 1.
        line: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file has no hash at all.
    #[error("no hashes: the file is empty")]
    Empty,
    /// Reading failed.
    #[error("cannot read it: {0}")]
    Io(#[from] io::Error),
}

/// The keys (see [`super::key`]) of every line of `reader`, a file of `file_len` bytes
/// when known (to reserve the keys' memory once). Blank lines and CRLF endings are
/// tolerated. `progress` hears how many bytes were read, now and then and at the end.
pub fn read_keys(
    mut reader: impl BufRead,
    file_len: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<Vec<u64>, ImportError> {
    let capacity = file_len.map_or(0, |len| len / SHORTEST_LINE + 1);
    let mut keys = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut line = Vec::with_capacity(64);
    let mut number = 0;
    let mut read = 0;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        read += n as u64;
        if let Some(key) = parse_line(&line).map_err(|reason| ImportError::Malformed {
            line: number,
            reason,
        })? {
            keys.push(key);
        }
        if number.is_multiple_of(PROGRESS_EVERY) {
            progress(read);
        }
    }
    progress(read);
    if keys.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(keys)
}

/// The key of one line, `None` for a blank one.
fn parse_line(line: &[u8]) -> Result<Option<u64>, &'static str> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err("expected `SHA1HEX:COUNT`, found no colon");
    };
    let (hash, count) = (&line[..colon], &line[colon + 1..]);
    match hash.len() {
        40 => {}
        32 => return Err("32 hexadecimal digits: an NTLM hash? Use the SHA-1 file"),
        _ => return Err("expected 40 hexadecimal digits (a SHA-1) before the colon"),
    }
    let mut sha1 = [0; 20];
    hex::decode_to_slice(hash, &mut sha1)
        .map_err(|_| "the hash has a character that is not a hexadecimal digit")?;
    if count.is_empty() || !count.iter().all(u8::is_ascii_digit) {
        return Err("the count after the colon is not a number");
    }
    Ok(Some(key(&sha1)))
}

/// The line HaveIBeenPwned's file has for `password`, seen `count` times: for tests and
/// tools that make such a file.
pub fn line_of(password: &Password, count: u64) -> String {
    let sha1 = Sha1::digest(password.expose().as_bytes());
    format!("{}:{count}", hex::encode_upper(sha1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<Vec<u64>, ImportError> {
        read_keys(text.as_bytes(), Some(text.len() as u64), |_| {})
    }

    const PASSWORD: &str = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";

    #[test]
    fn a_good_file_gives_one_key_per_line() {
        let text = format!("{PASSWORD}:10437277\n000000005AD76BD555C1D6D771DE417A4B87E4B4:4\n");
        assert_eq!(
            keys(&text).expect("parsed"),
            vec![0x5BAA_61E4_C9B9_3F3F, 0x0000_0000_5AD7_6BD5]
        );
    }

    #[test]
    fn crlf_blank_lines_and_a_missing_last_newline_are_tolerated() {
        let text = format!("\r\n{PASSWORD}:1\r\n\n   \r\n{}:2", PASSWORD.to_lowercase());
        assert_eq!(keys(&text).expect("parsed").len(), 2);
    }

    #[test]
    fn a_malformed_line_is_told_with_its_number() {
        for (bad, reason) in [
            ("nonsense", "no colon"),
            ("5BAA61E4:3", "40 hexadecimal digits"),
            ("8846F7EAEE8FB117AD06BDD830B7586C:3", "NTLM"),
            (
                "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FDZ:3",
                "hexadecimal digit",
            ),
            (&format!("{PASSWORD}:"), "not a number"),
            (&format!("{PASSWORD}:12x"), "not a number"),
        ] {
            let text = format!("{PASSWORD}:1\n\n{bad}\n{PASSWORD}:1\n");
            match keys(&text) {
                Err(ImportError::Malformed {
                    line: 3,
                    reason: why,
                }) => {
                    assert!(why.contains(reason), "{bad}: {why}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_empty_file_or_one_of_blank_lines_is_refused() {
        assert!(matches!(keys(""), Err(ImportError::Empty)));
        assert!(matches!(keys("\n\r\n\n"), Err(ImportError::Empty)));
    }

    #[test]
    fn progress_ends_at_the_whole_length() {
        let text = format!("{PASSWORD}:1\r\n").repeat(3);
        let mut seen = Vec::new();
        read_keys(text.as_bytes(), None, |read| seen.push(read)).expect("parsed");
        assert_eq!(seen.last(), Some(&(text.len() as u64)));
    }

    #[test]
    fn the_line_of_a_password_is_what_the_file_has() {
        assert_eq!(
            line_of(&Password::new("password"), 3),
            format!("{PASSWORD}:3")
        );
        let key = keys(&line_of(&Password::new("password"), 3)).expect("parsed");
        assert_eq!(key, vec![0x5BAA_61E4_C9B9_3F3F]);
    }
}
