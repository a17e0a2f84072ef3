//! The tracing subscriber, installed once per process: human-readable lines or one JSON
//! object per line (`LOG_FORMAT`), on stderr.

use std::{fmt, io::IsTerminal, str::FromStr};

use tracing::Subscriber;
use tracing_subscriber::{fmt::MakeWriter, util::SubscriberInitExt as _, EnvFilter};

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event, its spans' fields in front (`text`).
    #[default]
    Text,
    /// One JSON object per line (`json`), through tracing-subscriber's JSON formatter: the
    /// event's fields at the top level, every enclosing span's fields under `spans`.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("`{other}` is not a log format: `text` or `json`")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Installs the process-wide subscriber: lines in `format` on stderr, filtered by
/// `filter` (an `EnvFilter` directive such as `info` or `info,auth_http=debug`; see
/// [`crate::Config::log`]). Does nothing if a subscriber is already installed, so tests
/// may call it freely.
pub fn init_tracing(filter: &str, format: LogFormat) {
    // The configuration has already checked the directive; this fallback only serves
    // callers that skip it.
    let (filter, rejected) = match EnvFilter::try_new(filter) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let ansi = std::io::stderr().is_terminal();
    let installed = subscriber(filter, format, std::io::stderr, ansi)
        .try_init()
        .is_ok();
    if let (true, Some(e)) = (installed, rejected) {
        tracing::warn!("invalid LOG directive ({e}); logging at info");
    }
}

/// The subscriber `init_tracing` installs, writing to `writer`.
fn subscriber<W>(
    filter: EnvFilter,
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use auth_testkit::logs::CapturedLogs;
    use serde_json::Value;

    use super::*;

    fn lines_in(format: LogFormat) -> String {
        let captured = CapturedLogs::default();
        let subscriber = subscriber(EnvFilter::new("info"), format, captured.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "json-42", route = "/x");
            let _entered = span.enter();
            let inner = tracing::info_span!("register");
            let _inner = inner.enter();
            tracing::info!(status = 200, "request finished");
            tracing::debug!("left out at info");
        });
        captured.text()
    }

    #[test]
    fn json_lines_carry_the_event_and_every_enclosing_span() {
        let output = lines_in(LogFormat::Json);
        let lines: Vec<Value> = output
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 1, "{output}");
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request finished");
        assert_eq!(line["status"], 200);
        assert_eq!(line["spans"][0]["request_id"], "json-42");
        assert_eq!(line["spans"][0]["route"], "/x");
        assert_eq!(line["spans"][1]["name"], "register");
    }

    #[test]
    fn text_lines_name_the_spans_fields() {
        let output = lines_in(LogFormat::Text);
        assert_eq!(output.lines().count(), 1, "{output}");
        assert!(output.contains(r#"request_id="json-42""#), "{output}");
        assert!(output.contains("request finished"), "{output}");
    }

    #[test]
    fn only_text_and_json_are_formats() {
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert!("JSON".parse::<LogFormat>().is_err());
        assert!("".parse::<LogFormat>().is_err());
    }
}
