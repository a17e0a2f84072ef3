//! The in-memory stores pass the conformance suites that every real store runs.
//!
//! `setup` is a path used inside the `<backend>` module the suite macros generate, one
//! level below `users_suite`: hence `crate::`, not `super::`.

async fn users(_: auth_testkit::Backend) -> (auth_testkit::memory::MemoryUserRepository, ()) {
    (Default::default(), ())
}

async fn sessions(_: auth_testkit::Backend) -> (auth_testkit::memory::MemorySessionStore, ()) {
    (Default::default(), ())
}

async fn both(
    _: auth_testkit::Backend,
) -> (
    (
        auth_testkit::memory::MemoryUserRepository,
        auth_testkit::memory::MemorySessionStore,
    ),
    (),
) {
    let users = auth_testkit::memory::MemoryUserRepository::default();
    let sessions = auth_testkit::memory::MemorySessionStore::with_users(users.clone());
    ((users, sessions), ())
}

mod users_suite {
    auth_testkit::user_repository_suite!(backends: [memory], setup: crate::users);
}

mod sessions_suite {
    auth_testkit::session_store_suite!(backends: [memory], setup: crate::sessions);
}

mod owners_suite {
    auth_testkit::session_owner_suite!(backends: [memory], setup: crate::both);
}

async fn failures(
    _: auth_testkit::Backend,
) -> (auth_testkit::memory_audit::MemoryFailureCounter, ()) {
    (Default::default(), ())
}

async fn audit(_: auth_testkit::Backend) -> (auth_testkit::memory_audit::MemoryAuditLog, ()) {
    (Default::default(), ())
}

mod failures_suite {
    auth_testkit::failure_counter_suite!(backends: [memory], setup: crate::failures);
}

mod audit_suite {
    auth_testkit::audit_log_suite!(backends: [memory], setup: crate::audit);
}

async fn admin(
    _: auth_testkit::Backend,
) -> (
    (
        auth_testkit::memory::MemoryUserRepository,
        auth_testkit::memory::MemorySessionStore,
        auth_testkit::memory_audit::MemoryAuditLog,
        auth_testkit::memory_admin::MemoryAdministration,
    ),
    (),
) {
    let users = auth_testkit::memory::MemoryUserRepository::default();
    let sessions = auth_testkit::memory::MemorySessionStore::with_users(users.clone());
    let events = auth_testkit::memory_audit::MemoryAuditLog::default();
    let admin = auth_testkit::memory_admin::MemoryAdministration::new(&users, &sessions, &events);
    ((users, sessions, events, admin), ())
}

mod admin_suite {
    auth_testkit::administration_suite!(backends: [memory], setup: crate::admin);
}

async fn stores(_: auth_testkit::Backend) -> (auth_testkit::memory_stores::MemoryStores, ()) {
    (Default::default(), ())
}

mod mail_suite {
    auth_testkit::mail_stores_suite!(backends: [memory], setup: crate::stores);

    mod transactional {
        auth_testkit::backend_tests! {
            backends: [memory],
            setup: crate::stores,
            tests: {
                auth_testkit::commit => [a_refused_work_leaves_nothing_of_its_earlier_changes],
            },
        }
    }
}

/// Two instances of the memory backend: two handles on the same stores, as two pools
/// are on one database.
async fn two_instances(
    _: auth_testkit::Backend,
) -> (
    (
        auth_testkit::memory_stores::MemoryStores,
        auth_testkit::memory_stores::MemoryStores,
    ),
    (),
) {
    let stores = auth_testkit::memory_stores::MemoryStores::default();
    ((stores.clone(), stores), ())
}

mod factors_suite {
    auth_testkit::factor_stores_suite!(
        backends: [memory],
        setup: crate::stores,
        two_instances: crate::two_instances,
        transactional: true,
    );
}
