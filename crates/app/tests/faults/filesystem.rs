//! SQLite on a filesystem that fills up or is read-only: a tmpfs of the test's own, which
//! needs the right to mount (`cargo xtask test` leaves these tests out, and says so, where
//! it cannot mount).

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database as Orm, Statement};

use crate::app::{self, report, App, Database, TempDir};

/// A tmpfs of `size`, unmounted (and its directory removed) when dropped.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = TempDir::new("tmpfs");
        let path = dir.path().display().to_string();
        app::run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &path],
        );
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    fn remount(&self, mode: &str) {
        let path = self.dir.path().display().to_string();
        app::run("mount", &["-o", &format!("remount,{mode}"), &path]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `PRAGMA integrity_check` of the database file at `path` answers `ok`.
async fn assert_intact(path: &std::path::Path) {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let db = Orm::connect(url.as_str())
        .await
        .expect("the database opens");
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await
        .expect("the check runs");
    let verdicts: Vec<String> = rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).expect("a verdict"))
        .collect();
    assert_eq!(verdicts, ["ok"], "integrity_check");
    db.close().await.expect("closed");
}

/// A registration and a login answer 503 `unavailable`: the writes they need fail.
/// `GET /profile` only reads, and may still succeed; it must not fail otherwise.
async fn assert_writes_unavailable(app: &App, cookie: &str) {
    let started = std::time::Instant::now();
    let registered = app.register("grace@example.com").await.expect("answered");
    report("SQLite, time to 503 of a registration", started.elapsed());
    assert_eq!(registered.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(registered
        .headers()
        .contains_key(reqwest::header::RETRY_AFTER));
    let body: serde_json::Value = registered.json().await.expect("JSON");
    assert_eq!(body["code"], "unavailable");
    let login = app.login("ada@example.com").await.expect("answered");
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        app::session_cookie(&login).is_none(),
        "no cookie for a session that was not stored"
    );
    let profile = app.profile(cookie).await.expect("answered");
    assert!(
        matches!(
            profile.status(),
            StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE
        ),
        "{}",
        profile.status()
    );
    app.assert_public_route_answers().await;
}

pub(crate) async fn full_disk() {
    let tmpfs = Tmpfs::mount("4m");
    let file = tmpfs.path().join("auth.db");
    let database = Database::Sql(format!("sqlite://{}?mode=rwc", file.display()));
    let app = App::start(&database).await;
    let cookie = app.user_with_session("ada@example.com").await;

    // Fill the filesystem to the last byte.
    let filler = tmpfs.path().join("filler");
    {
        let mut out = std::fs::File::create(&filler).expect("a filler file");
        let block = vec![0u8; 64 * 1024];
        while out.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while out.write_all(&small).is_ok() {}
        let _ = out.sync_all();
    }
    assert_writes_unavailable(&app, &cookie).await;

    assert_eq!(
        app.readiness().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "/readyz while writes fail"
    );

    std::fs::remove_file(&filler).expect("space freed");
    let recovered = app.wait_for_writes(8, RECOVERY).await;
    report("SQLite disk freed, time to 8 writes in a row", recovered);
    let login = app.login("ada@example.com").await.expect("answered");
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(
        app.profile(&cookie).await.expect("answered").status(),
        StatusCode::OK
    );
    app.kill();
    assert_intact(&file).await;
}

/// How soon after the filesystem is writable again writes must succeed, with no restart.
const RECOVERY: Duration = Duration::from_secs(10);

/// The database's directory and files turn read-only under a running service (an
/// operator's chmod), then writable again. Connections the pool opens meanwhile can only
/// read; once the files are writable again, no such connection may linger in the pool:
/// eight registrations and logins in a row succeed within ten seconds, with no restart,
/// and `/readyz` follows. (A read-only remount is refused while the service has files
/// open for writing, so permissions make the spell here, which binds only a user without
/// privileges: the service runs as `nobody` when the tests run as root.)
pub(crate) async fn read_only_spell() {
    let dir = TempDir::new("read-only-spell");
    let file = dir.path().join("auth.db");
    let database = Database::Sql(format!("sqlite://{}?mode=rwc", file.display()));
    chown_to_nobody(dir.path());
    let app = App::start_unprivileged(&database, dir.path()).await;
    let cookie = app.user_with_session("ada@example.com").await;
    assert_eq!(app.readiness().await, StatusCode::OK);

    set_writable(dir.path(), false);
    // Under load, so that the pool opens new connections during the spell.
    let answers = futures::future::join_all((0..32).map(|at| {
        let app = &app;
        async move {
            let email = format!("during{at}@example.com");
            let registered = app.register(&email).await.expect("answered").status();
            let logged_in = app
                .login("ada@example.com")
                .await
                .expect("answered")
                .status();
            [registered, logged_in]
        }
    }))
    .await;
    let statuses: Vec<StatusCode> = answers.into_iter().flatten().collect();
    assert!(
        statuses.iter().all(|status| matches!(
            *status,
            StatusCode::CREATED | StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE
        )),
        "{statuses:?}"
    );
    // Whether a write failed depends on whether the pool opened a connection meanwhile
    // (the ones open before keep writing); if one did, readiness says so.
    if statuses.contains(&StatusCode::SERVICE_UNAVAILABLE) {
        assert_eq!(
            app.readiness().await,
            StatusCode::SERVICE_UNAVAILABLE,
            "/readyz while writes fail"
        );
    }

    set_writable(dir.path(), true);
    let recovered = app.wait_for_writes(8, RECOVERY).await;
    report(
        "SQLite writable again, time to 8 writes in a row",
        recovered,
    );
    assert_eq!(
        app.profile(&cookie).await.expect("answered").status(),
        StatusCode::OK
    );
    app.kill();
    assert_intact(&file).await;
}

/// Gives `dir` to `nobody` when this runs as root (see [`App::start_unprivileged`]).
fn chown_to_nobody(dir: &Path) {
    if app::is_root() {
        app::run(
            "chown",
            &["-R", "nobody:nogroup", &dir.display().to_string()],
        );
    }
}

/// Makes `dir` and the files in it read-only, or writable again.
fn set_writable(dir: &Path, writable: bool) {
    let (files, directory) = if writable {
        (0o644, 0o755)
    } else {
        (0o444, 0o555)
    };
    for entry in std::fs::read_dir(dir).expect("the directory lists") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|ext| ext == "db")
            || path.to_string_lossy().ends_with("-wal")
            || path.to_string_lossy().ends_with("-shm")
        {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(files))
                .expect("chmod a database file");
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(directory))
        .expect("chmod the directory");
}

pub(crate) async fn read_only() {
    let tmpfs = Tmpfs::mount("16m");
    let file = tmpfs.path().join("auth.db");
    let database = Database::Sql(format!("sqlite://{}?mode=rwc", file.display()));
    let app = App::start(&database).await;
    let cookie = app.user_with_session("ada@example.com").await;
    app.kill();

    // Read-only under a service that runs on it, as a filesystem remounted read-only
    // after errors is.
    tmpfs.remount("ro");
    let app = App::start(&database).await;
    assert_writes_unavailable(&app, &cookie).await;
    app.kill();

    tmpfs.remount("rw");
    let app = App::start(&database).await;
    let recovered = app.wait_for_recovery(&cookie).await;
    report("SQLite writable again, time to recover", recovered);
    let registered = app.register("grace@example.com").await.expect("answered");
    assert_eq!(registered.status(), StatusCode::CREATED);
    app.kill();
    assert_intact(&file).await;
}
