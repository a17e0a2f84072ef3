//! Child processes that must not outlive the task (database servers), the temporary
//! directories they write to, free ports, and waiting for a port to accept connections.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// How long a stopped child gets to shut down cleanly before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// A running child process, stopped (SIGTERM, then SIGKILL) when the guard is dropped,
/// on success, failure or panic alike.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    name: String,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed and stdout and stderr written to `log` (emptied first).
    pub(crate) fn spawn(name: &str, command: &mut Command, log: &Path) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let out = File::create(log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let err = out
            .try_clone()
            .context("cannot share the log file between stdout and stderr")?;
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            // The program only: `Command`'s Debug would show the environment set for it,
            // SECRET_KEY included.
            .with_context(|| {
                format!(
                    "cannot start {name} ({})",
                    Path::new(command.get_program()).display()
                )
            })?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            stopped: false,
        })
    }

    /// Where the child's output goes.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Fails when the child has already exited, with the end of its log.
    pub(crate) fn ensure_running(&mut self) -> Result<()> {
        match self
            .child
            .try_wait()
            .with_context(|| format!("cannot query {}", self.name))?
        {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited early ({status}); the end of its log {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            ),
        }
    }

    /// Waits until `addr` accepts TCP connections, failing if the child exits or `timeout`
    /// passes first.
    pub(crate) fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept connections on {addr} within {}s; the end of its log {}:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks the child to stop (SIGTERM, so it can clean up), kills it after a grace period.
    pub(crate) fn stop(&mut self) -> Option<ExitStatus> {
        if self.stopped {
            return None;
        }
        self.stopped = true;
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // std can only SIGKILL; `kill` sends the SIGTERM that lets a server remove its files.
        let asked = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if asked {
            let deadline = Instant::now() + GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Some(status);
                }
                thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "warning: {} ignored SIGTERM for {}s; killing it",
                self.name,
                GRACE.as_secs()
            );
        }
        // Errors here mean the child is already gone, which is what we want.
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory made for one run under the system's temporary directory, removed with
/// everything in it when the guard is dropped.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<n>`, readable by this user only; never one that exists.
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir();
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        // The pid keeps live processes apart; a directory left by a dead one is skipped.
        for _ in 0..1000 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{prefix}-{}-{n}", std::process::id()));
            match builder.create(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        bail!(
            "cannot create a fresh {prefix}-* directory in {}: all names taken",
            base.display()
        )
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            eprintln!(
                "warning: cannot remove the temporary directory {}: {error}",
                self.path.display()
            );
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot bind a free port on 127.0.0.1")?;
    Ok(listener
        .local_addr()
        .context("cannot read the bound port")?
        .port())
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const TAIL_BYTES: u64 = 4096;
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) if text.trim().is_empty() => "    (empty)".to_owned(),
        Ok(text) => text
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|line| format!("    {line}\n"))
            .collect(),
        Err(error) => format!("    (cannot read it: {error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::TempDir;

    #[test]
    fn a_temp_dir_is_fresh_and_removed_with_its_contents_when_dropped() {
        let first = TempDir::new("xtask-test").expect("created");
        let second = TempDir::new("xtask-test").expect("created");
        assert_ne!(first.path(), second.path());
        let path = first.path().to_owned();
        std::fs::create_dir(path.join("data")).expect("writable");
        std::fs::write(path.join("data").join("file"), "x").expect("writable");
        drop(first);
        assert!(!path.exists());
        assert!(second.path().is_dir());
    }
}
