//! Who is on the other end of a request: the client's address, seen through the proxies
//! we trust, and its User-Agent. One value for throttling, the audit trail and the device
//! data of a session.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use auth_domain::{accounts::Context, session::Device};
use axum::extract::{ConnectInfo, FromRequestParts};
use http::{header::USER_AGENT, request::Parts, HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::trace::REQUEST_ID;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`); set as a request
/// extension by the router.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub(crate) fn new(proxies: Vec<IpNet>) -> Self {
        Self(proxies.into())
    }

    /// Whether `ip` is one of the trusted proxies.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the socket peer, unless the peer is a trusted proxy; then
    /// the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (entries
    /// further left were written by whoever sent the request, and may be anything). When
    /// every entry is trusted, the leftmost. `None` when an entry that a trusted proxy
    /// wrote is not an address: the client is unknown, and never taken to be the proxy
    /// (which would put every client behind it under one budget).
    ///
    /// The header is read as bytes, entry by entry: a byte outside visible ASCII in what
    /// the client wrote on the left spoils no entry on the right.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.trusts(peer) {
            if self.0.is_empty() && peer.is_loopback() && headers.contains_key(X_FORWARDED_FOR) {
                forwarded_for_ignored();
            }
            return Some(peer);
        }
        let forwarded: Vec<&[u8]> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|entry| !entry.is_empty())
            .collect();
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            let ip = std::str::from_utf8(entry).ok().and_then(parse_entry)?;
            client = ip;
            if !self.trusts(ip) {
                return Some(ip);
            }
        }
        Some(client)
    }
}

/// Says once per process, and counts every time, that a request from a loopback peer
/// named a client in `X-Forwarded-For` while no proxy is trusted: a proxy on this host is
/// then every client, and one abuser's failures throttle everyone.
fn forwarded_for_ignored() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    metrics::counter!(crate::metrics::FORWARDED_FOR_IGNORED).increment(1);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a request from a loopback address carries X-Forwarded-For, but TRUSTED_PROXIES \
             is empty: every client behind that proxy counts as the proxy's address, for \
             throttling and the audit trail; set TRUSTED_PROXIES to the proxy's address \
             (e.g. 127.0.0.1)"
        );
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[::1]:5678`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client's address, when the server was started with connect info (tests that call
/// the router directly have none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Self(None));
        };
        let peer = peer.ip().to_canonical();
        Ok(Self(match parts.extensions.get::<TrustedProxies>() {
            Some(proxies) => proxies.client(peer, &parts.headers),
            None => Some(peer),
        }))
    }
}

/// Who calls, as the account use cases record it: a user of the API, from the device the
/// request comes from (its client address and its User-Agent, cleaned and cut by
/// [`Device::new`]), in the request of this id.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Context);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        // A User-Agent that is not visible ASCII is read lossily rather than dropped.
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        // Set (or checked) by the tracing stage before any handler runs.
        let request_id = parts
            .headers
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(Self(Context::user(
            Device::new(user_agent.as_deref(), ip),
            request_id,
        )))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|net| net.parse().unwrap()).collect())
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let client = trusted.client(ip("203.0.113.9").unwrap(), &forwarded(&["198.51.100.1"]));
        assert_eq!(client, ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1").unwrap(), &forwarded(&["1.1.1.1"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_entry_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        let headers = forwarded(&["6.6.6.6, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(
            trusted.client(ip("127.0.0.1").unwrap(), &headers),
            ip("198.51.100.7")
        );
        let with_ports = forwarded(&["[2001:db8::1]:443, 198.51.100.8:1234"]);
        assert_eq!(
            trusted.client(ip("10.9.9.9").unwrap(), &with_ports),
            ip("198.51.100.8")
        );
    }

    #[test]
    fn all_trusted_gives_the_leftmost_and_garbage_from_a_proxy_makes_the_client_unknown() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let all = forwarded(&["10.0.0.5, 10.0.0.6"]);
        assert_eq!(
            trusted.client(ip("10.0.0.7").unwrap(), &all),
            ip("10.0.0.5")
        );
        // Written by the trusted 10.0.0.6: the client is not known, and never the proxy.
        let garbage = forwarded(&["198.51.100.1, not-an-ip, 10.0.0.6"]);
        assert_eq!(trusted.client(ip("10.0.0.7").unwrap(), &garbage), None);
        assert_eq!(
            trusted.client(ip("10.0.0.7").unwrap(), &HeaderMap::new()),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn a_byte_outside_ascii_on_the_left_spoils_no_entry_on_the_right() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let mut headers = HeaderMap::new();
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes("r\u{e9}seau, 198.51.100.7".as_bytes()).unwrap(),
        );
        assert_eq!(
            trusted.client(ip("127.0.0.1").unwrap(), &headers),
            ip("198.51.100.7")
        );
        // The client's garbage is further left than what the proxy appended: harmless.
        let mut headers = HeaderMap::new();
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff\xfe, not-an-ip, 198.51.100.8").unwrap(),
        );
        assert_eq!(
            trusted.client(ip("127.0.0.1").unwrap(), &headers),
            ip("198.51.100.8")
        );
    }
}
