//! Where settings come from, besides the built-in defaults: `App.toml`, `.env` and the
//! process environment. Every source hands values over as they were written (strings
//! stay strings), so that parsing and its error messages live in one place.

use std::{ffi::OsString, path::PathBuf};

use figment::{
    providers::{Format, Toml},
    value::{Dict, Map, Value},
    Error, Metadata, Profile, Provider,
};

use super::is_key;

/// `App.toml` in the working directory, if there is one. Unlike `.env`, which may hold
/// settings of other tools, this file is ours alone: a key we do not know (a typo, a
/// lower-case name) is an error rather than a setting silently ignored.
pub(super) struct AppToml {
    pub(super) path: PathBuf,
}

impl Provider for AppToml {
    fn metadata(&self) -> Metadata {
        Metadata::from("App.toml", self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        if !self.path.is_file() {
            return Ok(Map::new());
        }
        let data = Toml::file_exact(&self.path)
            .data()
            .map_err(|e| file_error("App.toml", toml_error_line(&e.kind.to_string())))?;
        for dict in data.values() {
            if let Some(key) = dict.keys().find(|key| !is_key(key)) {
                return Err(file_error(
                    "App.toml",
                    format!("unknown key `{key}` (keys are upper-case, as listed in .env.example)"),
                ));
            }
        }
        Ok(data)
    }
}

/// The TOML parser's message is several lines with a snippet of the file, which may show
/// the secret key: keep the position and the diagnosis, drop the snippet.
fn toml_error_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let position = lines.next().unwrap_or("invalid TOML");
    let diagnosis: Vec<&str> = message
        .lines()
        .skip_while(|l| !l.contains('^'))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if diagnosis.is_empty() {
        position.to_owned()
    } else {
        format!("{position}: {}", diagnosis.join("; "))
    }
}

/// A `.env` file in the working directory, if there is one, read with dotenvy's parser
/// but without touching the process environment. Keys other than ours are ignored: the
/// file may also configure other tools.
pub(super) struct DotenvFile {
    pub(super) path: PathBuf,
}

impl Provider for DotenvFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(".env", self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let content = match std::fs::read_to_string(&self.path) {
            Ok(content) => content,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(file_error(".env", format!("cannot read: {e}"))),
        };
        // dotenvy only strips a byte-order mark when it loads into the environment.
        let content = content.strip_prefix('\u{feff}').unwrap_or(&content);
        let mut dict = Dict::new();
        for item in dotenvy::from_read_iter(content.as_bytes()) {
            let (key, value) = item.map_err(|e| dotenv_error(&e, content))?;
            if is_key(&key) {
                // The last assignment wins, as when a shell sources the file.
                dict.insert(key, Value::from(value));
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// dotenvy's message quotes the offending line, which may hold the secret key: name the
/// line by its number instead.
fn dotenv_error(error: &dotenvy::Error, content: &str) -> Error {
    let message = match error {
        dotenvy::Error::LineParse(line, _) => {
            let first = line.lines().next().unwrap_or_default().trim();
            match content.lines().position(|l| l.trim() == first) {
                Some(index) => format!("line {} is not `KEY=value`", index + 1),
                None => "a line is not `KEY=value`".to_owned(),
            }
        }
        dotenvy::Error::EnvVar(e) => format!("cannot substitute a variable: {e}"),
        other => format!("cannot read: {other}"),
    };
    file_error(".env", message)
}

/// An error about a whole file. Not `with_path`, which would split the name at the dot.
fn file_error(file: &str, message: String) -> Error {
    let mut error = Error::from(message);
    error.path = vec![file.to_owned()];
    error
}

/// Environment variables, our keys only (a stray `PATH` or `HOME` is none of our
/// business). Unlike figment's `Env`, values are not guessed at: `SECRET_KEY=[abc]` is a
/// string, not an array.
pub(super) struct Environment {
    vars: Vec<(String, OsString)>,
}

impl Environment {
    /// The process environment, as it is now.
    pub(super) fn process() -> Self {
        Self::from_vars(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))))
    }

    /// Given variables: tests use this rather than change the process environment, which
    /// other tests running at the same time read (`MONGODB_URL` is also the test kit's).
    pub(super) fn from_vars(vars: impl IntoIterator<Item = (String, OsString)>) -> Self {
        Self {
            vars: vars.into_iter().filter(|(key, _)| is_key(key)).collect(),
        }
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment").source(figment::Source::Custom("the environment".into()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.vars {
            let value = value
                .to_str()
                .ok_or_else(|| Error::from("not valid UTF-8".to_owned()).with_path(key))?;
            dict.insert(key.clone(), Value::from(value.to_owned()));
        }
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_syntax_error_keeps_its_position_but_not_the_snippet() {
        let message = "TOML parse error at line 1, column 14\n  |\n1 | SECRET_KEY = hunter2\n  |              ^\ninvalid string\nexpected `\"`, `'`\n";
        let line = toml_error_line(message);
        assert_eq!(
            line,
            "TOML parse error at line 1, column 14: invalid string; expected `\"`, `'`"
        );
        assert!(!line.contains("hunter2"));
    }
}
