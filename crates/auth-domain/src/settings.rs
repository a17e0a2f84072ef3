//! How a crate states the settings it reads: each key once, with its default and one line
//! saying what it is for. Each crate keeps a table of its own beside the type the setting
//! fills (`HashingConfig::SETTINGS`, `HttpConfig::SETTINGS`, ...); the app joins them into
//! the one list that it reads from its sources and that `.env.example` and the README are
//! checked against. Reading the values (figment) stays in the app.

/// One setting: its key, its default and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The upper-case key, as written in `App.toml`, `.env` and the environment.
    pub key: &'static str,
    /// What applies when the key is not set.
    pub default: DefaultValue,
    /// What the setting is for, in one line.
    pub doc: &'static str,
}

impl Setting {
    /// A setting named `key`.
    pub const fn new(key: &'static str, default: DefaultValue, doc: &'static str) -> Self {
        Self { key, default, doc }
    }
}

/// What a setting is when it is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// Nothing: the feature is off, the list empty, or the value required (a secret).
    Unset,
    /// This whole number.
    Number(u64),
    /// This text.
    Text(&'static str),
    /// A value that depends on the build, the machine or another setting, said in words
    /// (as the README's table says it).
    Computed(&'static str),
}

impl DefaultValue {
    /// The default as it is written in a `KEY=value` line, when it is one fixed value.
    pub fn literal(self) -> Option<String> {
        match self {
            Self::Number(n) => Some(n.to_string()),
            Self::Text(text) => Some(text.to_owned()),
            Self::Unset | Self::Computed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_number_or_a_text_is_a_literal_default() {
        assert_eq!(
            DefaultValue::Number(5000).literal().as_deref(),
            Some("5000")
        );
        assert_eq!(DefaultValue::Text("sql").literal().as_deref(), Some("sql"));
        assert_eq!(DefaultValue::Unset.literal(), None);
        assert_eq!(DefaultValue::Computed("number of CPUs").literal(), None);
    }
}
