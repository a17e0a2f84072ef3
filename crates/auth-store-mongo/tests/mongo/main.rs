//! MongoDB adapters against a real server (`MONGODB_URL`; `cargo xtask test` starts
//! SecantusDB when none is given). Every test gets a database of its own, dropped after.

mod common;
mod conformance;
mod connection;
mod indexes;
mod sessions;
mod users;
