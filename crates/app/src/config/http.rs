//! auth-http's section: the router's [`HttpConfig`], with the domain's throttling limits.

use std::{net::IpAddr, time::Duration};

use auth_http::{HttpConfig, RequestTimeouts, SessionKey, MIN_SECRET_BYTES};
use ipnet::IpNet;
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};

use super::{read::Settings, ConfigError, MAX_TRANSPORT_TIMEOUT_SECS};

/// The router's settings, and whether the signing key was made up for this process (a
/// missing `SECRET_KEY` in debug).
pub(super) fn http_config(
    s: &Settings<'_>,
    debug: bool,
) -> Result<(HttpConfig, bool), ConfigError> {
    let (secret, generated) = secret_key(s, debug)?;
    let session_key = signing_key(s, "SECRET_KEY", &secret)?;
    let fallback_keys = secret_key_fallbacks(s)?
        .iter()
        .map(|key| signing_key(s, "SECRET_KEY_FALLBACKS", key))
        .collect::<Result<_, _>>()?;
    let idle = s.number_in(
        "PERMANENT_SESSION_LIFETIME",
        1..=HttpConfig::MAX_SESSION_LIFETIME_SECS,
    )?;
    let absolute = session_absolute_lifetime(s, idle)?;
    let config = HttpConfig {
        session_key,
        fallback_keys,
        session_lifetime: seconds(s, "PERMANENT_SESSION_LIFETIME", idle)?,
        absolute_lifetime: seconds(s, "SESSION_ABSOLUTE_LIFETIME", absolute)?,
        secure_cookie: s.optional_bool("SESSION_COOKIE_SECURE")?.unwrap_or(!debug),
        trusted_proxies: trusted_proxies(s)?,
        allowed_origins: allowed_origins(s)?,
        timeouts: RequestTimeouts {
            body: Duration::from_secs(
                s.number_in("BODY_READ_TIMEOUT", 1..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
            request: Duration::from_secs(
                s.number_in("REQUEST_TIMEOUT", 1..=MAX_TRANSPORT_TIMEOUT_SECS)?,
            ),
        },
    };
    Ok((config, generated))
}

fn seconds(s: &Settings<'_>, key: &str, secs: u64) -> Result<time::Duration, ConfigError> {
    time::Duration::try_from(Duration::from_secs(secs)).map_err(|e| s.error(key, e))
}

/// The key's length is checked before: this cannot fail, but says which key if it did.
fn signing_key(
    s: &Settings<'_>,
    key: &str,
    secret: &SecretString,
) -> Result<SessionKey, ConfigError> {
    SessionKey::from_bytes(secret.expose_secret().as_bytes()).map_err(|e| s.error(key, e))
}

/// `SECRET_KEY`, or in debug a random key when it is missing (then `true`).
pub(super) fn secret_key(
    s: &Settings<'_>,
    debug: bool,
) -> Result<(SecretString, bool), ConfigError> {
    match s.secret("SECRET_KEY")? {
        Some(key) if key.expose_secret().len() >= MIN_SECRET_BYTES => Ok((key, false)),
        Some(key) => Err(s.error(
            "SECRET_KEY",
            format!(
                "too short ({} bytes): at least {MIN_SECRET_BYTES} are needed, e.g. `openssl rand -hex 64`",
                key.expose_secret().len()
            ),
        )),
        None if debug => {
            let key = Alphanumeric.sample_string(&mut rand::rng(), 96);
            Ok((SecretString::from(key), true))
        }
        None => Err(s.error(
            "SECRET_KEY",
            format!(
                "missing: set it to at least {MIN_SECRET_BYTES} random bytes, e.g. `openssl rand -hex 64` (only DEBUG may go without)"
            ),
        )),
    }
}

/// Each fallback must be as strong as `SECRET_KEY`: a weak one would let anyone who guessed
/// it forge cookies just the same. Entries are named by position, never shown.
pub(super) fn secret_key_fallbacks(s: &Settings<'_>) -> Result<Vec<SecretString>, ConfigError> {
    const KEY: &str = "SECRET_KEY_FALLBACKS";
    let keys = s.secret_list(KEY)?;
    if let Some((index, key)) = keys
        .iter()
        .enumerate()
        .find(|(_, key)| key.expose_secret().len() < MIN_SECRET_BYTES)
    {
        return Err(s.error(
            KEY,
            format!(
                "key {} of {} is too short ({} bytes): each needs at least {MIN_SECRET_BYTES}",
                index + 1,
                keys.len(),
                key.expose_secret().len()
            ),
        ));
    }
    Ok(keys)
}

/// The cap on a session's whole life. Its default depends on the idle lifetime (it is never
/// below it), hence computed here rather than a built-in default: a deployment that already
/// raised `PERMANENT_SESSION_LIFETIME` past 90 days keeps starting.
fn session_absolute_lifetime(s: &Settings<'_>, idle_secs: u64) -> Result<u64, ConfigError> {
    const KEY: &str = "SESSION_ABSOLUTE_LIFETIME";
    const MAX: u64 = HttpConfig::MAX_SESSION_LIFETIME_SECS;
    if !s.is_set(KEY) {
        return Ok(HttpConfig::DEFAULT_ABSOLUTE_LIFETIME_SECS.max(idle_secs));
    }
    let secs: u64 = s.number(KEY)?;
    if (idle_secs..=MAX).contains(&secs) {
        Ok(secs)
    } else {
        Err(s.error(
            KEY,
            format!(
                "must be between PERMANENT_SESSION_LIFETIME ({idle_secs}) and {MAX}, not {secs}"
            ),
        ))
    }
}

/// Each entry an address (that one host) or a network in CIDR notation. A network written
/// with host bits set (`10.1.2.3/8`) means its whole network, as `ip route` reads it.
fn trusted_proxies(s: &Settings<'_>) -> Result<Vec<IpNet>, ConfigError> {
    const KEY: &str = "TRUSTED_PROXIES";
    s.list(KEY)?
        .iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .map(|net| net.trunc())
                // The client address is compared in canonical form (an IPv4-mapped IPv6
                // peer is its IPv4 address), so a host is stored that way too.
                .or_else(|_| {
                    entry
                        .parse::<IpAddr>()
                        .map(|ip| IpNet::from(ip.to_canonical()))
                })
                .map_err(|_| {
                    let example = "e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8";
                    s.error(
                        KEY,
                        format!("`{entry}` is not an IP address or a CIDR network ({example})"),
                    )
                })
                .and_then(|net| {
                    // Every address a trusted proxy: any client could then name any
                    // address it likes in X-Forwarded-For, and every limit per address
                    // would be a limit on nothing.
                    if net.prefix_len() == 0 {
                        Err(s.error(
                            KEY,
                            format!(
                                "`{entry}` trusts every address, which lets any client choose \
                                 the address it is throttled and recorded under; list the \
                                 addresses of your proxies"
                            ),
                        ))
                    } else {
                        Ok(net)
                    }
                })
        })
        .collect()
}

fn allowed_origins(s: &Settings<'_>) -> Result<Vec<String>, ConfigError> {
    const KEY: &str = "ALLOWED_ORIGINS";
    s.list(KEY)?
        .iter()
        .map(|entry| origin(entry).map_err(|why| s.error(KEY, format!("`{entry}` {why}"))))
        .collect()
}

/// The origin `entry` names, serialised as a browser sends it in `Origin` (lower-case
/// scheme and host, punycode, no default port, no trailing slash): the router compares that
/// header byte for byte, so any other spelling would never match.
fn origin(entry: &str) -> Result<String, &'static str> {
    const SHAPE: &str = "is not an origin: expected scheme://host[:port] with http or https";
    if entry.contains('*') {
        return Err("is refused: CORS with credentials cannot use a wildcard; list each origin");
    }
    // `url` would also read `https:host` or `https:/host` as `https://host/`.
    if !entry.contains("://") {
        return Err(SHAPE);
    }
    let url = url::Url::parse(entry).map_err(|_| SHAPE)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(SHAPE);
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(
            "is not an origin: expected scheme://host[:port] alone, without a path, query or user",
        );
    }
    Ok(url.origin().ascii_serialization())
}
