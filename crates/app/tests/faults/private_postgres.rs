//! A PostgreSQL cluster of the test's own: initdb into a temporary directory, on a free
//! port, stopped and started, frozen and thawed. Never the shared server.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::app::{self, is_root, report, App, Database, TempDir};

/// Where Debian puts the server's programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private cluster, stopped at once (`-m immediate`) and removed when dropped.
pub(crate) struct PrivatePostgres {
    dir: TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// initdb and start, as the `postgres` OS user when this runs as root (initdb refuses
    /// to run as root).
    pub(crate) fn start() -> Self {
        let dir = TempDir::new("pg");
        if is_root() {
            app::run(
                "chown",
                &["postgres:postgres", &dir.path().display().to_string()],
            );
        }
        let cluster = Self {
            port: app::free_port(),
            dir,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster.start_server();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The database URL the service uses.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub(crate) fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: connections are closed, the server is gone.
    pub(crate) fn stop_server(&self) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// `kill -9` of the postmaster and of every server process; returns once all are gone
    /// (a survivor would keep the shared memory, and the next start would refuse).
    pub(crate) fn kill_server(&self) {
        let pids = self.processes();
        for pid in &pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
        let started = std::time::Instant::now();
        while pids.iter().any(|pid| is_alive(*pid)) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL survived kill -9"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // A killed postmaster may stay a zombie (no init reaps it in a container), and its
        // pid would pass the next start's "is it still running" check: the lock files go,
        // as an operator would remove it once sure the server is dead.
        let _ = std::fs::remove_file(PathBuf::from(self.data()).join("postmaster.pid"));
        let socket_lock = format!(".s.PGSQL.{}.lock", self.port);
        let _ = std::fs::remove_file(self.dir.path().join(socket_lock));
    }

    /// The postmaster's pid and its children's.
    pub(crate) fn processes(&self) -> Vec<u32> {
        let pid_file = PathBuf::from(self.data()).join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(pid_file) else {
            return Vec::new();
        };
        let Some(postmaster) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return Vec::new();
        };
        let mut pids = vec![postmaster];
        pids.extend(children_of(postmaster));
        pids
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let path = format!("{BIN}/{program}");
        if is_root() {
            let mut full = vec!["-u", "postgres", "--", path.as_str()];
            full.extend_from_slice(args);
            app::run("runuser", &full);
        } else {
            app::run(&path, args);
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Thawed first: a stopped process cannot act on the shutdown signal.
        for pid in self.processes() {
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
        let path = format!("{BIN}/pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &path])
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        };
    }
}

/// Whether `pid` runs (a zombie does not: it only waits to be reaped).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The processes whose parent is `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // `pid (comm) state ppid ...`: the name may hold spaces, so read after `)`.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

pub(crate) async fn stopped_then_started() {
    let postgres = PrivatePostgres::start();
    let app = App::start(&Database::Sql(postgres.url())).await;
    let cookie = app.user_with_session("ada@example.com").await;

    postgres.stop_server();
    app.assert_public_route_answers().await;
    let to_503 = app.assert_unavailable(&cookie, "ada@example.com").await;
    report("PostgreSQL stopped, time to 503 (slowest request)", to_503);
    app.assert_public_route_answers().await;

    postgres.start_server();
    let recovered = app.wait_for_recovery(&cookie).await;
    report("PostgreSQL started again, time to recover", recovered);
    let login = app.login("ada@example.com").await.expect("login answered");
    assert_eq!(login.status(), reqwest::StatusCode::OK);
}

pub(crate) async fn frozen_then_thawed() {
    let postgres = PrivatePostgres::start();
    let app = App::start(&Database::Sql(postgres.url())).await;
    let cookie = app.user_with_session("ada@example.com").await;

    let processes = postgres.processes();
    assert!(
        processes.len() > 1,
        "the server and its workers: {processes:?}"
    );
    for pid in &processes {
        app::signal(*pid, "STOP");
    }
    app.assert_public_route_answers().await;
    let to_503 = app.assert_unavailable(&cookie, "ada@example.com").await;
    report("PostgreSQL frozen, time to 503 (slowest request)", to_503);
    // Again: the connections the first requests left behind are still stuck.
    let again = app.assert_unavailable(&cookie, "ada@example.com").await;
    report("PostgreSQL frozen, time to 503 later on", again);
    app.assert_public_route_answers().await;

    for pid in postgres.processes() {
        app::signal(pid, "CONT");
    }
    let recovered = app.wait_for_recovery(&cookie).await;
    report("PostgreSQL thawed, time to recover", recovered);
    let login = app.login("ada@example.com").await.expect("login answered");
    assert_eq!(login.status(), reqwest::StatusCode::OK);
}

pub(crate) async fn start_up_waits_for_the_database() {
    let postgres = PrivatePostgres::start();
    postgres.stop_server();
    let database = Database::Sql(postgres.url());
    // The database comes up while the service is already retrying.
    let later = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_secs(2));
        postgres.start_server();
        postgres
    });
    let app = App::start(&database).await;
    let _postgres = later.await.expect("the server started");
    app.user_with_session("ada@example.com").await;
}

pub(crate) async fn start_up_gives_up_after_the_startup_timeout() {
    let postgres = PrivatePostgres::start();
    postgres.stop_server();
    let output = app::command(&Database::Sql(postgres.url()))
        .env("STARTUP_TIMEOUT", "5")
        .expect_start_failure();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let attempts = lines
        .iter()
        .filter(|line| line.contains("is unreachable, retrying"))
        .count();
    assert!(attempts >= 1, "one line per attempt: {stderr}");
    let last = lines.last().expect("a last line");
    assert!(
        last.starts_with("error: ") && last.contains("giving up on the SQL database"),
        "{last}"
    );
    assert!(last.contains("STARTUP_TIMEOUT=5s"), "{last}");
}

/// An admin command whose database stops answering in the middle of it gives up within
/// `DATABASE_TIMEOUT` with one line on stderr, instead of hanging (#18). The command is
/// `users set-password`, which reads the new password from stdin after looking the user
/// up: the database is frozen while it waits there, so its next statements meet a server
/// that answers nothing.
pub(crate) async fn an_admin_command_gives_up_on_a_frozen_database() {
    let postgres = PrivatePostgres::start();
    let database = Database::Sql(postgres.url());
    let app = App::start(&database).await;
    app.user_with_session("ada@example.com").await;
    app.kill();

    let mut cli = app::command(&database)
        .args(["users", "set-password", "ada@example.com"])
        // Should the freeze come before the command has connected, it must not wait out
        // a long start-up budget either.
        .env("STARTUP_TIMEOUT", "1")
        .spawn_piped();
    wait_until_reading_stdin(cli.pid());
    for pid in postgres.processes() {
        app::signal(pid, "STOP");
    }
    let started = Instant::now();
    cli.write_stdin(b"a-brand-new-passphrase-for-ada-42\n");
    let bound = Duration::from_secs(crate::DATABASE_TIMEOUT_SECS + crate::MARGIN_SECS);
    let status = loop {
        if let Some(status) = cli.try_wait() {
            break status;
        }
        if started.elapsed() > bound {
            drop(cli);
            for pid in postgres.processes() {
                app::signal(pid, "CONT");
            }
            panic!("the admin command still runs {bound:?} after the database froze");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    report(
        "PostgreSQL frozen, an admin command gave up after",
        started.elapsed(),
    );
    for pid in postgres.processes() {
        app::signal(pid, "CONT");
    }
    let output = cli.wait_with_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line, no panic: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
}

/// Waits until a thread of process `pid` is blocked reading its stdin (Linux: the `read`
/// system call, number 0, on file descriptor 0, as `/proc/<pid>/task/*/syscall` shows).
fn wait_until_reading_stdin(pid: u32) {
    let started = Instant::now();
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process runs");
        let reading = tasks.filter_map(Result::ok).any(|task| {
            std::fs::read_to_string(task.path().join("syscall"))
                .is_ok_and(|syscall| syscall.starts_with("0 0x0 "))
        });
        if reading {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the admin command never got to read its password"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
