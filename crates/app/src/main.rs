//! The `app` binary: serves the API (`app`, `app serve`) until SIGINT or SIGTERM, or runs
//! an admin command (`app users list`, ...; see `app --help` and [`app::cli`]). Exit
//! codes: 0 on success, 2 for bad usage or a configuration error, 1 for any other failure;
//! a failure is one line on stderr.

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc rather than glibc's malloc: every request allocates and frees its boxed
/// futures and buffers across threads, where glibc's arenas spend measurably more time
/// (consolidation, lock contention) and hold on to more memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    app::cli::main(app::cli::Cli::parse())
}
