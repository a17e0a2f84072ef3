//! `cargo xtask test`: provides the database backends, then runs every test with
//! cargo-nextest and the doc tests with `cargo test --doc` (nextest does not run those).
//!
//! The runners' output is passed through unchanged and scanned for their summary lines,
//! so that the run ends with one line of totals for every runner together.

use std::{
    io::{BufRead as _, BufReader, IsTerminal as _, Read, Write},
    path::Path,
    process::{Command, ExitCode, ExitStatus, Stdio},
    thread,
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

use crate::{
    backends::{Backends, Server},
    project::{in_ci, Project},
};

/// Runs the whole suite; `args` (after an optional `--`) go to nextest.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let extra = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let project = Project::locate();
    let started = Instant::now();

    let mut backends = Backends::provide(&project, &Server::ALL);
    let not_run: Vec<(Server, String)> = backends
        .not_run()
        .map(|(server, why)| (server, why.to_owned()))
        .collect();
    if !not_run.is_empty() {
        if in_ci() {
            bail!(
                "CI=true and some backends cannot be provided, so no test was started:\n{}",
                backends.describe()
            );
        }
        println!("{}", not_run_banner(&not_run));
    }
    println!("xtask: backends\n{}", backends.describe());

    let mut steps = Vec::new();
    if nextest_available(&project) {
        let mut command = project.cargo();
        command.args(["nextest", "run", "--workspace"]).args(extra);
        steps.push(Step::run(
            "tests (nextest)",
            Runner::Nextest,
            &mut command,
            &backends,
        )?);
        let mut command = project.cargo();
        command.args(["test", "--workspace", "--doc"]);
        steps.push(Step::run(
            "doc tests",
            Runner::Libtest,
            &mut command,
            &backends,
        )?);
    } else {
        println!(
            "xtask: cargo-nextest is not installed; falling back to `cargo test --workspace` \
             (it runs the doc tests too)"
        );
        let mut command = project.cargo();
        command.args(["test", "--workspace"]).args(extra);
        steps.push(Step::run(
            "tests and doc tests (cargo test)",
            Runner::Libtest,
            &mut command,
            &backends,
        )?);
    }
    backends.stop();

    println!(
        "\n==== cargo xtask test: summary ({}s) ====",
        started.elapsed().as_secs()
    );
    println!("backends:\n  sqlite    provided  (a temporary file per test, always)");
    print!("{}", backends.describe());
    let mut total = Counts::default();
    for step in &steps {
        let verdict = if step.status.success() {
            "passed".to_owned()
        } else {
            format!("FAILED ({})", step.status)
        };
        match step.counts {
            Some(counts) => println!(
                "{}: {verdict}: {} passed, {} failed, {} skipped",
                step.name, counts.passed, counts.failed, counts.skipped
            ),
            None => println!("{}: {verdict} (no test summary seen)", step.name),
        }
        total.add(step.counts.unwrap_or_default());
    }
    if !not_run.is_empty() {
        println!("{}", not_run_banner(&not_run));
    }
    let success = steps.iter().all(|step| step.status.success());
    if steps.iter().all(|step| step.counts.is_some()) {
        println!(
            "tests: {} passed, {} failed, {} skipped",
            total.passed, total.failed, total.skipped
        );
    }
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn nextest_available(project: &Project) -> bool {
    project
        .cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Tests counted from a runner's summary lines.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// One runner invocation and what came of it.
#[derive(Debug)]
struct Step {
    name: &'static str,
    status: ExitStatus,
    /// `None` when the runner printed no summary (it did not get to run tests).
    counts: Option<Counts>,
}

impl Step {
    /// Runs a cargo step with the backends' URLs in its environment, passing its output
    /// through and counting its tests.
    fn run(
        name: &'static str,
        runner: Runner,
        command: &mut Command,
        backends: &Backends,
    ) -> Result<Self> {
        command.envs(backends.env());
        // The output goes through a pipe: keep the colours a terminal would have shown.
        if std::io::stdout().is_terminal() && std::env::var_os("CARGO_TERM_COLOR").is_none() {
            command.env("CARGO_TERM_COLOR", "always");
        }
        let shown = shown(command);
        println!("xtask: running {shown}");
        let started = Instant::now();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {shown}"))?;
        let stdout = child.stdout.take().context("the child's stdout is piped")?;
        let stderr = child.stderr.take().context("the child's stderr is piped")?;
        let (out, err) = thread::scope(|scope| {
            let out = scope.spawn(|| relay(runner, stdout, std::io::stdout()));
            let err = scope.spawn(|| relay(runner, stderr, std::io::stderr()));
            (out.join(), err.join())
        });
        let status = child
            .wait()
            .with_context(|| format!("cannot wait for {shown}"))?;
        let mut counts: Option<Counts> = None;
        for part in [out, err] {
            let part = part
                .map_err(|_| anyhow::anyhow!("relaying the output of {shown} panicked"))?
                .with_context(|| format!("cannot relay the output of {shown}"))?;
            if let Some(part) = part {
                counts.get_or_insert_with(Counts::default).add(part);
            }
        }
        println!(
            "xtask: {shown} finished in {}s: {status}",
            started.elapsed().as_secs()
        );
        Ok(Self {
            name,
            status,
            counts,
        })
    }
}

/// Copies `from` to `to` line by line, adding up the test summaries it sees.
fn relay(runner: Runner, from: impl Read, mut to: impl Write) -> std::io::Result<Option<Counts>> {
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    let mut counts = None;
    while from.read_until(b'\n', &mut line)? > 0 {
        to.write_all(&line)?;
        to.flush()?;
        if let Some(found) = summary_counts(runner, &String::from_utf8_lossy(&line)) {
            counts.get_or_insert_with(Counts::default).add(found);
        }
        line.clear();
    }
    Ok(counts)
}

/// Which test runner's summary lines to count.
#[derive(Debug, Clone, Copy)]
enum Runner {
    /// `Summary [ 1.2s] 10 tests run: 9 passed, 1 failed, 2 skipped`. Only these: the
    /// output of a failed test, which nextest shows, holds libtest lines of its own.
    Nextest,
    /// `test result: ok. 3 passed; 0 failed; 1 ignored; ...`, once per test binary.
    Libtest,
}

/// The counts in `line`, if it is a summary line of `runner`.
fn summary_counts(runner: Runner, line: &str) -> Option<Counts> {
    let line = strip_ansi(line);
    let line = line.trim();
    let parts: Vec<&str> = match runner {
        Runner::Nextest => line
            .strip_prefix("Summary [")?
            .split_once(" run: ")?
            .1
            .split(',')
            .collect(),
        Runner::Libtest => line.strip_prefix("test result: ")?.split(';').collect(),
    };
    let mut counts = Counts::default();
    for part in parts {
        let mut words = part
            .split_whitespace()
            .skip_while(|word| word.parse::<u64>().is_err());
        let (Some(number), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let number: u64 = number.parse().ok()?;
        match kind {
            "passed" => counts.passed += number,
            "failed" | "timed" => counts.failed += number,
            "skipped" | "ignored" => counts.skipped += number,
            _ => {}
        }
    }
    Some(counts)
}

/// `text` without terminal colour sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

fn shown(command: &Command) -> String {
    // `CARGO` is a long toolchain path; its file name says enough.
    let program = Path::new(command.get_program());
    let mut words = vec![program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned()];
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}

fn not_run_banner(not_run: &[(Server, String)]) -> String {
    let rule = "!".repeat(78);
    let mut banner = format!(
        "\n{rule}\n!! NOT RUN: the tests of these backends are skipped (CI=true would fail instead)\n"
    );
    for (server, why) in not_run {
        banner.push_str(&format!("!!   {server}: {why}\n"));
    }
    banner.push_str(&rule);
    banner
}

#[cfg(test)]
mod tests {
    use super::{summary_counts, Runner};

    #[test]
    fn a_nextest_summary_is_counted() {
        let counts = summary_counts(
            Runner::Nextest,
            "     Summary [  12.345s] 12 tests run: 9 passed, 2 failed, 1 timed out, 3 skipped\n",
        )
        .expect("a summary");
        assert_eq!((counts.passed, counts.failed, counts.skipped), (9, 3, 3));
    }

    #[test]
    fn a_coloured_nextest_summary_is_counted() {
        let counts = summary_counts(
            Runner::Nextest,
            "\u{1b}[32;1m     Summary\u{1b}[0m [   0.1s] 4 tests run: 4 \u{1b}[32;1mpassed\u{1b}[0m (1 flaky), 0 skipped",
        )
        .expect("a summary");
        assert_eq!((counts.passed, counts.failed, counts.skipped), (4, 0, 0));
    }

    #[test]
    fn a_libtest_summary_is_counted() {
        let counts = summary_counts(
            Runner::Libtest,
            "test result: FAILED. 3 passed; 1 failed; 2 ignored; 0 measured; 5 filtered out; finished in 0.01s",
        )
        .expect("a summary");
        assert_eq!((counts.passed, counts.failed, counts.skipped), (3, 1, 2));
    }

    #[test]
    fn other_lines_are_not_summaries() {
        assert!(summary_counts(Runner::Libtest, "test users::a_user_reads_back ... ok").is_none());
        assert!(summary_counts(
            Runner::Nextest,
            "        PASS [   0.010s] auth-domain email::tests::x"
        )
        .is_none());
    }

    #[test]
    fn libtest_lines_in_a_failed_tests_output_are_not_counted_by_nextest() {
        assert!(summary_counts(
            Runner::Nextest,
            "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
        )
        .is_none());
    }
}
