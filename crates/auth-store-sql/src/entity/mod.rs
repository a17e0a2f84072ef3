//! sea-orm entities of the two tables built by the `migration` crate.

pub mod sessions;
pub mod users;
