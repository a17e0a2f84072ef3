//! Reading request cookies on bytes.
//!
//! A `Cookie` header is split on `;` and each pair at its first `=`, without decoding
//! anything: no UTF-8 check (a sibling site's cookie may hold any byte, and must not make
//! ours unreadable), no percent-decoding and no unquoting (what we sign is plain ASCII, so
//! any encoded form is simply a value that does not verify).

use http::{header::COOKIE, HeaderMap};

/// The values of every cookie called `name`, in the order the client sent them, across
/// every `Cookie` header.
pub(crate) fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| header.as_bytes().split(|&byte| byte == b';'))
        .filter_map(move |pair| {
            let pair = pair.trim_ascii();
            let equals = pair.iter().position(|&byte| byte == b'=')?;
            let (pair_name, value) = (&pair[..equals], &pair[equals + 1..]);
            (pair_name.trim_ascii() == name.as_bytes()).then(|| value.trim_ascii())
        })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                COOKIE,
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        headers
    }

    fn found<'a>(headers: &'a HeaderMap, name: &'a str) -> Vec<&'a [u8]> {
        values(headers, name).collect()
    }

    #[test]
    fn every_cookie_of_the_name_is_found_in_order_across_headers() {
        let headers = headers(&[b"a=1; session=x", b" session = y ;b=2", b"session=z"]);
        let expected: Vec<&[u8]> = vec![b"x", b"y", b"z"];
        assert_eq!(found(&headers, "session"), expected);
        assert_eq!(found(&headers, "b"), vec![b"2" as &[u8]]);
    }

    #[test]
    fn bytes_that_are_not_utf8_do_not_hide_the_other_cookies() {
        let headers = headers(&[b"x=\xe9t\xe9; session=abc; y=\xff"]);
        assert_eq!(found(&headers, "session"), vec![b"abc" as &[u8]]);
    }

    #[test]
    fn nothing_is_decoded_or_unquoted() {
        let headers = headers(&[b"session=\"abc\"; session=a%2Eb; session="]);
        let expected: Vec<&[u8]> = vec![b"\"abc\"", b"a%2Eb", b""];
        assert_eq!(found(&headers, "session"), expected);
    }

    #[test]
    fn a_pair_without_an_equals_sign_or_of_another_name_is_skipped() {
        let headers = headers(&[b"session; sessions=1; xsession=2; =3"]);
        assert!(found(&headers, "session").is_empty());
    }
}
