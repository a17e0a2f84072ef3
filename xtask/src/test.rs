//! `cargo xtask test`: provides the database backends and the SMTP server
//! (`crate::smtp`), then runs every test with cargo-nextest and the doc tests with
//! `cargo test --doc` (nextest does not run those).
//!
//! A backend's tests live under a module named after it (`api::postgres::...`, see
//! `auth_testkit::backend_tests!`). The tests of a backend that was not asked for, or that
//! cannot be provided, are left out with a nextest filter, so that nextest itself reports
//! them as skipped, and the summary says which backends were left out, why, and how many
//! tests that skipped. The tests that need the SMTP server (under a module `smtp`) are
//! left out the same way when it cannot be provided. With `CI=true` a backend or an SMTP
//! server that cannot be provided fails the run.
//!
//! The runners' output is passed through unchanged and scanned for their summary lines
//! and failed tests, so that the run ends with one line of totals for every runner
//! together, the failures with the command that reruns each, and how long the build and
//! each runner took. Outside CI every test runs whatever fails (`--no-fail-fast`): a
//! newcomer learns about every problem at once; `CI=true` keeps nextest's fail-fast, which
//! saves CI time. Last, schemathesis checks the live app against its OpenAPI document
//! (`crate::schemathesis`).

use std::{
    io::{BufRead as _, BufReader, IsTerminal as _, Read, Write},
    path::Path,
    process::{Command, ExitCode, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use auth_testkit::{db::in_ci, Backend};

use crate::{
    backends::Backends,
    project::Project,
    schemathesis,
    smtp::{self, SmtpSink},
};

/// What `cargo xtask test` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// The backends whose tests run; every one when `--backend` is not given.
    backends: Vec<Backend>,
    /// Arguments for nextest, after `--`.
    nextest: Vec<String>,
}

impl Options {
    /// Parses `[--backend NAME]... [-- <nextest args>]`.
    fn parse(args: &[String]) -> Result<Self> {
        let mut backends = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let name = match arg.as_str() {
                "--" => break,
                "--backend" => args.next().context("--backend needs a value")?.as_str(),
                other => match other.strip_prefix("--backend=") {
                    Some(name) => name,
                    None => bail!(
                        "unknown test option `{other}`: nextest's options go after `--` \
                         (try `cargo xtask help`)"
                    ),
                },
            };
            let backend = Backend::from_name(name).with_context(|| {
                format!(
                    "unknown backend `{name}`: use {}",
                    backend_names(&Backend::ALL)
                )
            })?;
            if !backends.contains(&backend) {
                backends.push(backend);
            }
        }
        if backends.is_empty() {
            backends = Backend::ALL.to_vec();
        }
        Ok(Self {
            backends,
            nextest: args.cloned().collect(),
        })
    }
}

/// Runs the suite on the chosen backends.
pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let options = Options::parse(args)?;
    let project = Project::locate();
    let started = Instant::now();

    let mut backends = Backends::provide(&project, &options.backends);
    let mut smtp = SmtpSink::provide(&project);
    let not_run: Vec<(Backend, String)> = backends
        .not_run()
        .map(|(backend, why)| (backend, why.to_owned()))
        .collect();
    if (!not_run.is_empty() || smtp.not_run_why().is_some()) && in_ci() {
        println!(
            "xtask: backends\n{}{}",
            backends.describe(),
            smtp.describe()
        );
        let mut names: Vec<&str> = not_run.iter().map(|(backend, _)| backend.name()).collect();
        if smtp.not_run_why().is_some() {
            names.push("the SMTP server");
        }
        bail!(
            "CI=true and {} cannot be provided (see above), so no test was started",
            names.join(", ")
        );
    }
    let mut left_out: Vec<(Backend, String)> = Backend::ALL
        .into_iter()
        .filter(|backend| !options.backends.contains(backend))
        .map(|backend| (backend, "not asked for (--backend)".to_owned()))
        .collect();
    left_out.extend(not_run);
    left_out.sort_by_key(|(backend, _)| Backend::ALL.iter().position(|b| b == backend));
    println!(
        "xtask: backends\n{}{}",
        backends.describe(),
        smtp.describe()
    );
    if !left_out.is_empty() {
        println!("{}", left_out_banner(&left_out, None));
    }
    if let Some(why) = smtp.not_run_why() {
        println!("{}", smtp_banner(why));
    }

    let no_tmpfs = tmpfs_unavailable();
    let mut steps = Vec::new();
    let mut skipped_by_backend = None;
    // The build on its own, so that the summary can tell its time from the tests'; the
    // runners below then find every test binary built (nextest builds as `cargo test`).
    let build = build_tests(&project)?;
    if nextest_available(&project) {
        let excluded: Vec<Backend> = left_out.iter().map(|(backend, _)| *backend).collect();
        let mut nextest =
            with_backends_left_out(&with_fail_fast_policy(&options.nextest, in_ci()), &excluded);
        if let Some(why) = &no_tmpfs {
            nextest = with_tests_left_out(&nextest, TMPFS_TESTS);
            println!("{}", tmpfs_banner(why));
        }
        if smtp.not_run_why().is_some() {
            nextest = with_tests_left_out(&nextest, smtp::TESTS);
        }
        if !excluded.is_empty() {
            skipped_by_backend = count_tests_of(&project, &excluded, &backends);
        }
        let mut command = project.cargo();
        command
            .args(["nextest", "run", "--workspace"])
            .args(&nextest)
            .envs(smtp.env());
        steps.push(Step::run(
            "tests (nextest)",
            Runner::Nextest,
            &mut command,
            &backends,
        )?);
        let mut command = project.cargo();
        command
            .args(["test", "--workspace", "--doc"])
            .envs(smtp.env());
        if !in_ci() {
            command.arg("--no-fail-fast");
        }
        steps.push(Step::run(
            "doc tests",
            Runner::Libtest,
            &mut command,
            &backends,
        )?);
    } else {
        if !left_out.is_empty() || smtp.not_run_why().is_some() {
            bail!(
                "cargo-nextest is needed to leave backends out (`cargo install cargo-nextest`); \
                 plain `cargo test` would fail their tests instead of skipping them"
            );
        }
        println!(
            "xtask: cargo-nextest is not installed; falling back to `cargo test --workspace` \
             (it runs the doc tests too)"
        );
        let mut command = project.cargo();
        command
            .args(["test", "--workspace"])
            .args(&options.nextest)
            .envs(smtp.env());
        steps.push(Step::run(
            "tests and doc tests (cargo test)",
            Runner::Libtest,
            &mut command,
            &backends,
        )?);
    }
    backends.stop();
    smtp.stop();
    // The API against its OpenAPI document on a live server (SQLite): left out of a run
    // narrowed by `--backend` or nextest arguments.
    let schemathesis = if !options.backends.contains(&Backend::Sqlite) {
        schemathesis::Outcome::Skipped("--backend leaves out sqlite, which it runs on".into())
    } else if !options.nextest.is_empty() {
        schemathesis::Outcome::Skipped("nextest arguments narrow this run".into())
    } else {
        schemathesis::run(&project).unwrap_or_else(|error| schemathesis::Outcome::error(&error))
    };

    println!(
        "\n==== cargo xtask test: summary ({}s) ====",
        started.elapsed().as_secs()
    );
    print!("backends:\n{}{}", backends.describe(), smtp.describe());
    println!(
        "build (cargo test --workspace --no-run): {} in {}s",
        if build.status.success() {
            "done"
        } else {
            "FAILED"
        },
        build.took.as_secs()
    );
    let mut total = Counts::default();
    for step in &steps {
        let verdict = if step.status.success() {
            "passed".to_owned()
        } else {
            format!("FAILED ({})", step.status)
        };
        let took = step.took.as_secs();
        match step.counts {
            Some(counts) => println!(
                "{}: {verdict}: {} passed, {} failed, {} skipped, in {took}s",
                step.name, counts.passed, counts.failed, counts.skipped
            ),
            None => println!(
                "{}: {verdict} (no test summary seen), in {took}s",
                step.name
            ),
        }
        total.add(step.counts.unwrap_or_default());
    }
    let failures: Vec<&Failure> = steps.iter().flat_map(|step| &step.failures).collect();
    if !failures.is_empty() {
        println!(
            "\nfailed tests ({}), each with the command that reruns it:",
            failures.len()
        );
        for failure in &failures {
            println!("  {}\n      {}", failure.shown(), failure.rerun());
        }
    }
    if steps
        .iter()
        .any(|step| step.name == "doc tests" && !step.status.success())
    {
        println!("doc tests failed: rerun them with `cargo test --workspace --doc`");
    }
    if !left_out.is_empty() {
        println!(
            "{}",
            left_out_banner(&left_out, skipped_by_backend.as_deref())
        );
    }
    if let Some(why) = &no_tmpfs {
        println!("{}", tmpfs_banner(why));
    }
    if let Some(why) = smtp.not_run_why() {
        println!("{}", smtp_banner(why));
    }
    println!("{}", schemathesis.summary());
    let success = build.status.success()
        && steps.iter().all(|step| step.status.success())
        && schemathesis.passed();
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

/// The nextest filterset of the tests that mount a tmpfs of their own (a full or
/// read-only filesystem under SQLite): named `..._on_tmpfs`.
const TMPFS_TESTS: &str = "test(/_on_tmpfs$/)";

/// Why tests cannot mount a tmpfs here (not root, no `CAP_SYS_ADMIN`, a container that
/// forbids it), found by mounting and unmounting one; `None` when they can.
fn tmpfs_unavailable() -> Option<String> {
    let dir = std::env::temp_dir().join(format!("xtask-tmpfs-probe-{}", std::process::id()));
    if let Err(error) = std::fs::create_dir_all(&dir) {
        return Some(format!("cannot create {}: {error}", dir.display()));
    }
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&dir)
        .output();
    let why = match mounted {
        Ok(output) if output.status.success() => {
            let _ = Command::new("umount").arg(&dir).status();
            None
        }
        Ok(output) => Some(format!(
            "`mount -t tmpfs` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("cannot run `mount`: {error}")),
    };
    let _ = std::fs::remove_dir(&dir);
    why
}

/// The nextest filterset of the tests of `backend`: those under a module of its name.
fn tests_of(backend: Backend) -> String {
    format!("test(/(^|::){}::/)", backend.name())
}

/// `nextest` arguments that also leave out the tests of `excluded`. Filtersets given with
/// `-E` are a union; the exclusion must apply to all of them, so they become one.
fn with_backends_left_out(nextest: &[String], excluded: &[Backend]) -> Vec<String> {
    if excluded.is_empty() {
        return nextest.to_vec();
    }
    let exclusion = excluded
        .iter()
        .map(|backend| tests_of(*backend))
        .collect::<Vec<_>>()
        .join(" | ");
    with_tests_left_out(nextest, &exclusion)
}

/// `nextest` arguments that also leave out the tests of the filterset `exclusion`.
fn with_tests_left_out(nextest: &[String], exclusion: &str) -> Vec<String> {
    let mut chosen = Vec::new();
    let mut rest = Vec::new();
    let mut args = nextest.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-E" | "--filterset" | "--filter-expr" => chosen.extend(args.next().cloned()),
            other => match ["--filterset=", "--filter-expr=", "-E"]
                .iter()
                .find_map(|prefix| other.strip_prefix(prefix))
            {
                Some(filterset) if other.len() > 2 => chosen.push(filterset.to_owned()),
                _ => rest.push(arg.clone()),
            },
        }
    }
    let filterset = if chosen.is_empty() {
        format!("not ({exclusion})")
    } else {
        let chosen: Vec<String> = chosen.iter().map(|f| format!("({f})")).collect();
        format!("({}) and not ({exclusion})", chosen.join(" | "))
    };
    rest.push("-E".to_owned());
    rest.push(filterset);
    rest
}

/// How many tests each of `backends` has, from `cargo nextest list`; `None` (and a
/// warning) when the listing fails, which the run itself will then show.
fn count_tests_of(
    project: &Project,
    excluded: &[Backend],
    backends: &Backends,
) -> Option<Vec<(Backend, usize)>> {
    let filterset = excluded
        .iter()
        .map(|backend| tests_of(*backend))
        .collect::<Vec<_>>()
        .join(" | ");
    let output = project
        .cargo()
        .args(["nextest", "list", "--workspace", "--message-format", "json"])
        .args(["-E", &filterset])
        .envs(backends.env())
        .stderr(Stdio::inherit())
        .output()
        .ok()
        .filter(|output| output.status.success());
    let Some(output) = output else {
        println!("xtask: warning: cannot list the tests left out; see the run below");
        return None;
    };
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let names: Vec<&str> = listing["rust-suites"]
        .as_object()?
        .values()
        .filter_map(|suite| suite["testcases"].as_object())
        .flat_map(|cases| {
            cases
                .iter()
                .filter(|(_, case)| case["filter-match"]["status"].as_str() == Some("matches"))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    Some(
        excluded
            .iter()
            .map(|backend| {
                let segment = format!("{}::", backend.name());
                let count = names
                    .iter()
                    .filter(|name| {
                        name.starts_with(&segment) || name.contains(&format!("::{segment}"))
                    })
                    .count();
                (*backend, count)
            })
            .collect(),
    )
}

fn backend_names(backends: &[Backend]) -> String {
    backends
        .iter()
        .map(|backend| backend.name())
        .collect::<Vec<_>>()
        .join(", ")
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
    /// The tests that failed, as nextest named them.
    failures: Vec<Failure>,
    took: Duration,
}

/// The build of every test binary, before any runs.
#[derive(Debug)]
struct Build {
    status: ExitStatus,
    took: Duration,
}

/// `cargo test --workspace --no-run`: the test binaries nextest and the doc tests use.
/// Its output is passed through; a failed build is reported, and the runners then show
/// the same errors.
fn build_tests(project: &Project) -> Result<Build> {
    let started = Instant::now();
    println!("xtask: building the tests (cargo test --workspace --no-run)");
    let status = project
        .cargo()
        .args(["test", "--workspace", "--no-run"])
        .status()
        .context("cannot run cargo test --no-run")?;
    let took = started.elapsed();
    println!("xtask: the build finished in {}s: {status}", took.as_secs());
    Ok(Build { status, took })
}

/// `nextest` arguments with the fail-fast policy of this run: outside CI every test runs
/// (`--no-fail-fast`) unless the arguments say otherwise; in CI nextest's default stays.
fn with_fail_fast_policy(nextest: &[String], in_ci: bool) -> Vec<String> {
    let decided = nextest.iter().any(|arg| {
        matches!(arg.as_str(), "--fail-fast" | "--no-fail-fast") || arg.starts_with("--max-fail")
    });
    let mut args = nextest.to_vec();
    if !in_ci && !decided {
        args.push("--no-fail-fast".to_owned());
    }
    args
}

/// A test nextest reported as failed (or timed out, or killed by a signal).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// How nextest ended it: `FAIL`, `TIMEOUT`, `SIGSEGV`...
    how: String,
    /// The test binary, as nextest's `binary_id` (`app::api`, `auth-domain`).
    binary: String,
    /// The test's path within the binary (`sqlite::a_test`).
    name: String,
}

impl Failure {
    /// The failure in a nextest status line (`FAIL [ 0.2s] (3/9) app::api sqlite::x`),
    /// if `line` is one.
    fn parse(line: &str) -> Option<Self> {
        let line = strip_ansi(line);
        let mut words = line.split_whitespace();
        let how = words.next()?;
        if !matches!(
            how,
            "FAIL"
                | "TIMEOUT"
                | "SIGSEGV"
                | "SIGABRT"
                | "SIGKILL"
                | "SIGBUS"
                | "ABORT"
                | "LEAK-FAIL"
        ) {
            return None;
        }
        // `[   0.276s]`, possibly split by its padding, then `(344/369)`, then the names.
        let rest: Vec<&str> = words.collect();
        let at = rest.iter().position(|word| word.ends_with(']'))?;
        let mut rest = rest[at + 1..].iter();
        let mut binary = rest.next()?;
        // `(344/369)`, or `( 4/11)` with the padding of a run of fewer tests.
        if binary.starts_with('(') {
            while !binary.ends_with(')') {
                binary = rest.next()?;
            }
            binary = rest.next()?;
        }
        let name = rest.next()?;
        Some(Self {
            how: how.to_owned(),
            binary: (*binary).to_owned(),
            name: (*name).to_owned(),
        })
    }

    fn shown(&self) -> String {
        format!("{} {} {}", self.how, self.binary, self.name)
    }

    /// The command that runs this test alone, with the backend it needs provided.
    fn rerun(&self) -> String {
        let backend = Backend::ALL.into_iter().find(|backend| {
            let segment = format!("{}::", backend.name());
            self.name.starts_with(&segment) || self.name.contains(&format!("::{segment}"))
        });
        let flag = backend.map_or_else(String::new, |backend| {
            format!("--backend {} ", backend.name())
        });
        format!(
            "cargo xtask test {flag}-- -E 'binary_id({}) & test(={})'",
            self.binary, self.name
        )
    }
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
        let mut failures: Vec<Failure> = Vec::new();
        for part in [out, err] {
            let part = part
                .map_err(|_| anyhow::anyhow!("relaying the output of {shown} panicked"))?
                .with_context(|| format!("cannot relay the output of {shown}"))?;
            if let Some(part) = part.counts {
                counts.get_or_insert_with(Counts::default).add(part);
            }
            // nextest names a failure as it happens and again in its final list.
            for failure in part.failures {
                if !failures.contains(&failure) {
                    failures.push(failure);
                }
            }
        }
        let took = started.elapsed();
        println!("xtask: {shown} finished in {}s: {status}", took.as_secs());
        Ok(Self {
            name,
            status,
            counts,
            failures,
            took,
        })
    }
}

/// What a runner's output said, as [`relay`] saw it.
#[derive(Debug, Default)]
struct Relayed {
    counts: Option<Counts>,
    failures: Vec<Failure>,
}

/// Copies `from` to `to` line by line, adding up the test summaries it sees and noting the
/// tests nextest says failed.
fn relay(runner: Runner, from: impl Read, mut to: impl Write) -> std::io::Result<Relayed> {
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    let mut relayed = Relayed::default();
    while from.read_until(b'\n', &mut line)? > 0 {
        to.write_all(&line)?;
        to.flush()?;
        let text = String::from_utf8_lossy(&line);
        if let Some(found) = summary_counts(runner, &text) {
            relayed
                .counts
                .get_or_insert_with(Counts::default)
                .add(found);
        }
        if matches!(runner, Runner::Nextest) {
            relayed.failures.extend(Failure::parse(&text));
        }
        line.clear();
    }
    Ok(relayed)
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

fn tmpfs_banner(why: &str) -> String {
    let rule = "!".repeat(78);
    format!(
        "\n{rule}\n!! SKIPPED: the tests that mount a tmpfs ({TMPFS_TESTS}: SQLite on a full \
         or read-only filesystem) did not run\n!! (nextest counts them as skipped): {why}\n{rule}"
    )
}

fn smtp_banner(why: &str) -> String {
    let rule = "!".repeat(78);
    format!(
        "\n{rule}\n!! SKIPPED: the tests that need the SMTP server ({}: mail sent and read \
         back) did not run\n!! (nextest counts them as skipped): {why}\n{rule}",
        smtp::TESTS
    )
}

fn left_out_banner(left_out: &[(Backend, String)], counts: Option<&[(Backend, usize)]>) -> String {
    let rule = "!".repeat(78);
    let mut banner = format!(
        "\n{rule}\n!! SKIPPED: the tests of these backends did not run (nextest counts them as skipped)\n"
    );
    for (backend, why) in left_out {
        let count = counts
            .and_then(|counts| counts.iter().find(|(b, _)| b == backend))
            .map(|(_, count)| format!(" ({count} tests)"))
            .unwrap_or_default();
        banner.push_str(&format!("!!   {}{count}: {why}\n", backend.name()));
    }
    banner.push_str(&rule);
    banner
}

#[cfg(test)]
mod tests {
    use auth_testkit::Backend;

    use super::{
        summary_counts, with_backends_left_out, with_fail_fast_policy, Failure, Options, Runner,
    };

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn without_backend_flags_every_backend_runs() {
        let options = Options::parse(&strings(&["--", "-E", "binary(api)"])).expect("valid");
        assert_eq!(options.backends, Backend::ALL.to_vec());
        assert_eq!(options.nextest, strings(&["-E", "binary(api)"]));
    }

    #[test]
    fn backend_flags_repeat_and_pick_only_those_backends() {
        let options =
            Options::parse(&strings(&["--backend", "sqlite", "--backend=memory"])).expect("valid");
        assert_eq!(options.backends, vec![Backend::Sqlite, Backend::Memory]);
        assert!(options.nextest.is_empty());
    }

    #[test]
    fn an_unknown_backend_or_option_is_refused() {
        assert!(Options::parse(&strings(&["--backend", "oracle"])).is_err());
        assert!(Options::parse(&strings(&["--backend"])).is_err());
        assert!(Options::parse(&strings(&["-E", "all()"])).is_err());
    }

    #[test]
    fn left_out_backends_become_one_exclusion_filter() {
        let args = with_backends_left_out(&[], &[Backend::Postgres, Backend::Mongodb]);
        assert_eq!(
            args,
            strings(&[
                "-E",
                "not (test(/(^|::)postgres::/) | test(/(^|::)mongodb::/))"
            ])
        );
    }

    #[test]
    fn the_exclusion_applies_to_every_filterset_given() {
        let given = strings(&[
            "-E",
            "binary(api)",
            "--filterset=binary(sql)",
            "--no-fail-fast",
        ]);
        let args = with_backends_left_out(&given, &[Backend::Mysql]);
        assert_eq!(
            args,
            strings(&[
                "--no-fail-fast",
                "-E",
                "((binary(api)) | (binary(sql))) and not (test(/(^|::)mysql::/))"
            ])
        );
    }

    #[test]
    fn nothing_left_out_leaves_the_arguments_alone() {
        let given = strings(&["-E", "binary(api)"]);
        assert_eq!(with_backends_left_out(&given, &[]), given);
    }

    #[test]
    fn outside_ci_every_test_runs_unless_the_arguments_decide() {
        assert_eq!(
            with_fail_fast_policy(&strings(&["-E", "all()"]), false),
            strings(&["-E", "all()", "--no-fail-fast"])
        );
        assert_eq!(with_fail_fast_policy(&[], true), Vec::<String>::new());
        for decided in ["--fail-fast", "--no-fail-fast", "--max-fail=3"] {
            assert_eq!(
                with_fail_fast_policy(&strings(&[decided]), false),
                strings(&[decided])
            );
        }
    }

    #[test]
    fn a_failed_test_is_read_from_nextest_with_a_rerun_command() {
        let failure = Failure::parse(
            "        FAIL [   0.276s] (344/369) app::instances mongodb::two_instances_share_sessions\n",
        )
        .expect("a failure");
        assert_eq!(failure.binary, "app::instances");
        assert_eq!(failure.name, "mongodb::two_instances_share_sessions");
        assert_eq!(
            failure.rerun(),
            "cargo xtask test --backend mongodb -- -E 'binary_id(app::instances) & test(=mongodb::two_instances_share_sessions)'"
        );
        let coloured = Failure::parse(
            "\u{1b}[31;1m     TIMEOUT\u{1b}[0m [  60.001s] auth-domain service::tests::slow",
        )
        .expect("a timeout");
        assert_eq!(coloured.how, "TIMEOUT");
        assert_eq!(
            coloured.rerun(),
            "cargo xtask test -- -E 'binary_id(auth-domain) & test(=service::tests::slow)'"
        );
        let padded = Failure::parse(
            "        FAIL [   0.509s] ( 4/11) app::api smtp::sqlite::a_reset_token_works_once",
        )
        .expect("a failure");
        assert_eq!(
            (padded.binary.as_str(), padded.name.as_str()),
            ("app::api", "smtp::sqlite::a_reset_token_works_once")
        );
        assert!(Failure::parse("        PASS [   0.010s] auth-domain email::tests::x").is_none());
        assert!(Failure::parse("test result: FAILED. 0 passed; 1 failed").is_none());
    }

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
