//! Where a new password comes from: the terminal, without echo, asked twice; or one line
//! of stdin when stdin is not a terminal (a script, a pipe). Never an argument, which would
//! leak it into the shell history and the process list.

use std::io::{self, BufRead, IsTerminal};

use anyhow::{bail, Context as _};
use auth_domain::Password;

/// Reads a new password, asking with `prompt` when stdin is a terminal.
pub(crate) fn read_new_password(prompt: &str) -> anyhow::Result<Password> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password(prompt).context("reading the password")?;
        let again = rpassword::prompt_password("Repeat it: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        Ok(Password::new(first))
    } else {
        read_line(stdin.lock()).map(Password::new)
    }
}

/// The first line of `input` without its line ending; every other character is kept,
/// spaces included, since they may be part of the password.
fn read_line(mut input: impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    if read == 0 {
        bail!("no password on stdin");
    }
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str) -> anyhow::Result<String> {
        read_line(input.as_bytes())
    }

    #[test]
    fn only_the_line_ending_is_stripped() {
        assert_eq!(read("  spaced out  \n").unwrap(), "  spaced out  ");
        assert_eq!(read("windows\r\n").unwrap(), "windows");
        assert_eq!(read("no newline").unwrap(), "no newline");
        assert_eq!(read("first\nsecond\n").unwrap(), "first");
    }

    #[test]
    fn empty_stdin_is_an_error() {
        assert!(read("").is_err());
    }
}
