//! Reading one key out of the merged figment and turning it into a typed value, with an
//! error that names the key and, when it helps, the file or environment it came from.
//!
//! Values arrive either typed (`PORT = 5000` in `App.toml`, a number merged in a test) or
//! as text (`.env`, the environment); both are accepted wherever they make sense.

use std::{fmt::Display, str::FromStr};

use figment::{
    value::{Num, Value},
    Figment, Provider, Source,
};
use secrecy::SecretString;

use super::ConfigError;

/// The merged settings, read one key at a time.
pub(super) struct Settings<'a> {
    figment: &'a Figment,
}

impl<'a> Settings<'a> {
    /// Fails when a source itself is broken (an unreadable `.env`, invalid TOML).
    pub(super) fn new(figment: &'a Figment) -> Result<Self, ConfigError> {
        figment.data().map_err(|e| source_error(&e))?;
        Ok(Self { figment })
    }

    /// An error about `key`, naming where its value came from.
    pub(super) fn error(&self, key: &str, message: impl Display) -> ConfigError {
        let origin = self
            .figment
            .find_metadata(key)
            .and_then(|metadata| metadata.source.as_ref())
            .and_then(|source| match source {
                Source::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
                Source::Custom(name) => Some(name.clone()),
                _ => None,
            });
        let message = match origin {
            Some(origin) => format!("{message} (set in {origin})"),
            None => message.to_string(),
        };
        ConfigError::new(key, message)
    }

    fn value(&self, key: &str) -> Option<Value> {
        // A key read but not listed would be missing from the sources and the docs.
        debug_assert!(super::is_key(key), "{key} is not in config::settings()");
        match self.figment.find_value(key) {
            Ok(Value::Empty(..)) | Err(_) => None,
            Ok(value) => Some(value),
        }
    }

    fn required(&self, key: &str) -> Result<Value, ConfigError> {
        self.value(key)
            .ok_or_else(|| ConfigError::new(key, "missing".to_owned()))
    }

    /// Whether `key` has a value at all, a built-in default included.
    pub(super) fn is_set(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    /// A text setting, trimmed.
    pub(super) fn string(&self, key: &str) -> Result<String, ConfigError> {
        match self.required(key)? {
            Value::String(_, s) => Ok(s.trim().to_owned()),
            Value::Char(_, c) => Ok(c.to_string()),
            _ => Err(self.error(key, "expected a string")),
        }
    }

    /// A secret, exactly as written; the value never appears in an error.
    pub(super) fn secret(&self, key: &str) -> Result<Option<SecretString>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(_, s)) => Ok(Some(SecretString::from(s))),
            Some(_) => Err(self.error(key, "expected a string")),
        }
    }

    /// A list: a TOML array of strings, or one string of comma-separated entries (the
    /// only way to write a list in `.env` or the environment). Entries are trimmed, since
    /// a space after a comma is how people write lists, and empty ones (a trailing comma)
    /// are dropped. No value ever appears in an error, so secrets may be read this way.
    pub(super) fn list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let entries: Vec<String> = match self.value(key) {
            None => Vec::new(),
            Some(Value::String(_, s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Array(_, items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(_, s) => Ok(s),
                    _ => Err(self.error(key, "expected a list of strings")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(self.error(
                    key,
                    "expected a list of strings, or one comma-separated string",
                ))
            }
        };
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let entry = entry.trim();
                (!entry.is_empty()).then(|| entry.to_owned())
            })
            .collect())
    }

    /// A list of secrets, read as [`Settings::list`].
    pub(super) fn secret_list(&self, key: &str) -> Result<Vec<SecretString>, ConfigError> {
        Ok(self
            .list(key)?
            .into_iter()
            .map(SecretString::from)
            .collect())
    }

    /// A whole non-negative number.
    pub(super) fn number<T>(&self, key: &str) -> Result<T, ConfigError>
    where
        T: TryFrom<u128> + FromStr,
        <T as FromStr>::Err: Display,
    {
        match self.required(key)? {
            Value::Num(_, num) => from_num(num).map_err(|message| self.error(key, message)),
            Value::String(_, s) => {
                let s = s.trim();
                s.parse().map_err(|e| {
                    // Said as plainly as for a typed value, not as the parser's "invalid digit".
                    if s.parse::<i128>().is_ok_and(i128::is_negative) {
                        self.error(key, "must not be negative")
                    } else {
                        self.error(key, e)
                    }
                })
            }
            _ => Err(self.error(key, "expected a whole number")),
        }
    }

    /// A whole number within `range`.
    pub(super) fn number_in<T>(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: TryFrom<u128> + FromStr + PartialOrd + Display,
        <T as FromStr>::Err: Display,
    {
        let n = self.number(key)?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(self.error(
                key,
                format!(
                    "must be between {} and {}, not {n}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    /// A yes/no setting, or `None` when it is not set at all.
    pub(super) fn optional_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let Some(value) = self.value(key) else {
            return Ok(None);
        };
        match value {
            Value::Bool(_, b) => Ok(Some(b)),
            Value::String(_, s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err(self.error(key, format!("expected true or false, not `{}`", s.trim()))),
            },
            _ => Err(self.error(key, "expected true or false")),
        }
    }
}

fn from_num<T: TryFrom<u128>>(num: Num) -> Result<T, &'static str> {
    match num.to_u128_lossy() {
        Some(n) => T::try_from(n).map_err(|_| "number too large to fit in target type"),
        None if num.to_i128().is_some() => Err("must not be negative"),
        None => Err("expected a whole number"),
    }
}

/// A source that could not be read at all: the error names the file (or the key, for
/// the environment) and keeps to one line.
fn source_error(error: &figment::Error) -> ConfigError {
    let key = error
        .path
        .first()
        .cloned()
        .or_else(|| {
            error
                .metadata
                .as_ref()
                .map(|metadata| metadata.name.to_string())
        })
        .unwrap_or_else(|| "configuration".to_owned());
    let kind = error.kind.to_string();
    let message = kind.lines().next().unwrap_or("invalid").trim().to_owned();
    ConfigError::new(&key, message)
}
