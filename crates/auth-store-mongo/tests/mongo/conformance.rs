//! The suites every store passes, written once in auth-testkit.

mod users {
    auth_testkit::user_repository_suite!(crate::common::user_repository);
}

mod sessions {
    auth_testkit::session_store_suite!(crate::common::session_store);
}
