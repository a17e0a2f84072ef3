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

/// Control characters (NUL included) are refused everywhere: PostgreSQL cannot store NUL
/// in text, and none of them belongs in an address or a name.
pub(crate) fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}
