//! Connection URLs made fit for logs: the password in the user-info part and any
//! credential-looking query parameter are replaced by `[redacted]`. Stated here, beside
//! [`crate::Password`] and [`crate::PasswordHash`], because every crate that shows a URL
//! (the app, the stores, the tools) depends on this one.

const REDACTED: &str = "[redacted]";

/// Query parameters that carry credentials (sqlx's `password`, MongoDB's
/// `authMechanismProperties` with AWS session tokens, TLS key passwords...).
const SECRET_PARAMS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "authmechanismproperties",
];

/// `url` with its credentials replaced by `[redacted]`; URLs without any come back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_query(url);
    };
    // The last '@' ends the user info: a password may hold an unescaped '@', '/' or '?'.
    // When a query holds an '@' this takes too much, which errs on the safe side.
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => {
                format!("{scheme}://{user}:{REDACTED}@{}", redact_query(host))
            }
            None => format!(
                "{scheme}://{}@{}",
                redact_query(userinfo),
                redact_query(host)
            ),
        },
        None => format!("{scheme}://{}", redact_query(rest)),
    }
}

fn redact_query(part: &str) -> String {
    let Some((head, query)) = part.split_once('?') else {
        return part.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}={REDACTED}"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|secret| name.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_password_in_the_user_info_is_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/auth"),
            "postgres://app:[redacted]@db:5432/auth"
        );
    }

    #[test]
    fn a_password_holding_an_at_sign_is_redacted_whole() {
        let redacted = redact_url("mysql://root:p@ss@127.0.0.1/test");
        assert_eq!(redacted, "mysql://root:[redacted]@127.0.0.1/test");
    }

    #[test]
    fn a_password_in_the_query_is_redacted() {
        assert_eq!(
            redact_url("postgres://db/auth?user=app&password=s3cret&sslmode=require"),
            "postgres://db/auth?user=app&password=[redacted]&sslmode=require"
        );
    }

    #[test]
    fn a_query_password_holding_an_at_sign_is_redacted() {
        let redacted = redact_url("postgres://db/auth?password=x@y");
        assert!(
            !redacted.contains("x@y") && !redacted.contains("=x"),
            "{redacted}"
        );
    }

    #[test]
    fn a_mongodb_seed_list_keeps_its_hosts_and_options() {
        assert_eq!(
            redact_url("mongodb+srv://ada:s3cr%40t@db1:27017,db2/?tls=true"),
            "mongodb+srv://ada:[redacted]@db1:27017,db2/?tls=true"
        );
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        for url in [
            "sqlite://database.db?mode=rwc",
            "sqlite::memory:",
            "mongodb://127.0.0.1:27017",
            "mongodb://admin@db:27017/?authSource=admin",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
