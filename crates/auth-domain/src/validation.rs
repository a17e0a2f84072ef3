use std::collections::BTreeMap;

use serde::Serialize;

/// Why one field was refused. The message never repeats the submitted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// A stable, machine-readable reason (`too_short`, `common`, ...).
    pub code: &'static str,
    /// A sentence for people.
    pub message: &'static str,
}

impl FieldError {
    /// A refusal with its code and message.
    pub const fn new(code: &'static str, message: &'static str) -> Self {
        Self { code, message }
    }
}

/// Every refused field of one request, by field name, whichever layer refused it.
/// Serialises as `{"field": ["message", ...]}`: the messages, never a submitted value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(BTreeMap<&'static str, Vec<&'static str>>);

impl ValidationErrors {
    /// Records that `field` was refused for `error`.
    pub fn add(&mut self, field: &'static str, error: FieldError) {
        self.0.entry(field).or_default().push(error.message);
    }

    /// True when nothing was refused.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The messages recorded for `field`.
    pub fn field(&self, field: &str) -> &[&'static str] {
        self.0.get(field).map_or(&[], Vec::as_slice)
    }

    /// The first message recorded, for a one-line summary.
    pub fn first_message(&self) -> Option<&'static str> {
        self.0.values().flatten().next().copied()
    }
}

/// Keeps the value of a parse, or records its error under `field`.
pub(crate) fn collect<T>(
    errors: &mut ValidationErrors,
    field: &'static str,
    result: Result<T, FieldError>,
) -> Option<T> {
    result.map_err(|e| errors.add(field, e)).ok()
}

/// Control characters (NUL included) and Unicode format characters are refused in
/// everything a client names itself with: PostgreSQL cannot store NUL in text, control
/// characters forge lines in a terminal or a log, and format characters (bidi overrides,
/// zero-width joiners and spaces) make text read other than it is (`moc.evil` shown as
/// `live.com`) and two different names look the same.
pub(crate) fn has_unsafe_chars(s: &str) -> bool {
    s.chars().any(is_unsafe_char)
}

/// Whether `c` is a control character or a format character (Unicode's general category
/// `Cf`, as of Unicode 16).
pub(crate) fn is_unsafe_char(c: char) -> bool {
    c.is_control() || is_format_char(c)
}

/// Unicode's format characters (general category `Cf`): invisible, they change how the
/// text around them is shown.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}
