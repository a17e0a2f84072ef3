//! How a failure is told to the person who started a command: one line on stderr.

/// The error and its causes on one line, `outer: inner: innermost`. Driver errors often
/// repeat their source in their own message; a cause already said is not said again.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(cause.trim());
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::one_line;

    fn failure(innermost: &str) -> anyhow::Error {
        Err::<(), _>(std::io::Error::other(innermost.to_owned()))
            .context("cannot connect to the SQL database (DATABASE_URL)")
            .context("starting the service")
            .expect_err("a failure")
    }

    #[test]
    fn every_cause_is_on_the_line_outermost_first() {
        assert_eq!(
            one_line(&failure("connection refused")),
            "starting the service: cannot connect to the SQL database (DATABASE_URL): \
             connection refused"
        );
    }

    #[test]
    fn a_cause_its_parent_already_quotes_is_said_once() {
        let error = Err::<(), _>(std::io::Error::other("connection refused"))
            .context("pool timed out: connection refused")
            .expect_err("a failure");
        assert_eq!(one_line(&error), "pool timed out: connection refused");
    }

    #[test]
    fn a_message_over_several_lines_becomes_one() {
        let line = one_line(&failure("server said:\n  too many clients\n"));
        assert!(!line.contains('\n'), "{line}");
        assert!(line.ends_with("server said:   too many clients"), "{line}");
    }
}
