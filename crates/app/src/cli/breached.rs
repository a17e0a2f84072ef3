//! `app passwords import`: HaveIBeenPwned's file in, the breached-password filter out. It
//! reads no configuration and opens no database: the filter is a file of its own, which
//! `BREACHED_PASSWORDS` then names.

use std::{
    fs::File,
    io::BufReader,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use auth_domain::breached::{hibp, BreachedPasswords, FALSE_POSITIVE_RATE};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{args::PasswordsCommand, render::Output};

/// Reads are this large: the file is read once, front to back.
const READ_BUFFER: usize = 1 << 20;

/// Runs `app passwords ...`.
pub(super) fn run(command: &PasswordsCommand) -> anyhow::Result<Output> {
    match command {
        PasswordsCommand::Import {
            hibp_file,
            filter_file,
        } => import(hibp_file, filter_file),
    }
}

/// Builds the filter of `hibp_file` into `filter_file`.
fn import(hibp_file: &Path, filter_file: &Path) -> anyhow::Result<Output> {
    let started = Instant::now();
    let reading = || format!("reading {}", hibp_file.display());
    let file = File::open(hibp_file).with_context(reading)?;
    let len = file.metadata().with_context(reading)?.len();
    // Drawn on stderr, and only when it is a terminal: stdout keeps the one result.
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template(
            "{spinner} reading {bytes}/{total_bytes} [{bar:40}] {percent}% ({eta} left)",
        )
        .context("the progress bar's template")?
        .progress_chars("=> "),
    );
    let keys = hibp::read_keys(
        BufReader::with_capacity(READ_BUFFER, file),
        Some(len),
        |read| bar.set_position(read),
    )
    .with_context(reading)?;
    let hashes = keys.len();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid"));
    bar.set_message(format!("building the filter of {hashes} hashes"));
    bar.enable_steady_tick(Duration::from_millis(200));
    let source = hibp_file.file_name().map_or_else(
        || hibp_file.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let filter = BreachedPasswords::build(keys, &source)
        .with_context(|| format!("building the filter of {}", hibp_file.display()))?;
    bar.set_message(format!("writing {}", filter_file.display()));
    filter
        .save(filter_file)
        .with_context(|| format!("writing {}", filter_file.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(filter_file)
        .with_context(|| format!("reading {}", filter_file.display()))?
        .len();
    Ok(Output::Done {
        message: format!(
            "{} distinct hashes (of {} lines) from {} written to {}: {:.1} MiB, \
             false-positive rate 1 in {:.0}, in {seconds:.1} s",
            filter.count(),
            hashes,
            filter.source(),
            filter_file.display(),
            bytes as f64 / (1024.0 * 1024.0),
            1.0 / FALSE_POSITIVE_RATE,
        ),
        json: json!({
            "count": filter.count(),
            "source": filter.source(),
            "filter": filter_file.display().to_string(),
            "bytes": bytes,
            "false_positive_rate": FALSE_POSITIVE_RATE,
            "seconds": seconds,
        }),
    })
}
