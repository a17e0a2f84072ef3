//! TOTP (RFC 6238) as authenticator apps speak it: HMAC-SHA-1, 6 digits, 30-second steps,
//! a 160-bit secret, and a code accepted one step either side of now (`TOTP_SKEW`) for
//! the clocks of phones. The arithmetic is `totp-rs`'s; which step a code matched, and
//! that no step is accepted twice (§5.2), is ours: the store keeps the last one.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::RngCore;
use time::OffsetDateTime;
use totp_rs::{Algorithm, Secret, Totp};

/// The secret's length: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// The length of a step.
pub const STEP_SECONDS: u64 = 30;
/// The digits of a code.
pub const DIGITS: u8 = 6;
/// Steps accepted either side of the current one, by default (`TOTP_SKEW`).
pub const DEFAULT_SKEW: u8 = 1;

/// A TOTP secret. Never printed; shown to the user once, at enrolment.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A fresh secret from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = vec![0_u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The secret as base32 (RFC 4648, no padding): what an app takes when typed in, and
    /// what is sealed for storage.
    pub fn to_base32(&self) -> String {
        Secret::from(self.0.clone()).to_base32()
    }

    /// A secret read back from its base32 form; `None` for anything else.
    pub fn from_base32(text: &str) -> Option<Self> {
        let secret = Secret::try_from_base32(text).ok()?;
        let bytes = secret.as_ref().to_vec();
        (bytes.len() == SECRET_BYTES).then_some(Self(bytes))
    }

    fn totp(&self, skew: u8) -> Totp {
        // Our own secret, digits and step are within every bound `build` checks.
        totp_rs::Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(u16::from(skew))
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.0.clone())
            .build_noncompliant()
    }

    /// The `otpauth://` URI an app scans (as a QR code) to enrol: `issuer` names the
    /// service, `account` the user. Algorithm, digits and period are spelt out even where
    /// they are the defaults (totp-rs' own `to_url` leaves them out), for apps that do not
    /// assume them.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = utf8_percent_encode(issuer, UNRESERVED);
        let account = utf8_percent_encode(account, UNRESERVED);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            self.to_base32(),
        )
    }

    /// The step `code` is the code of, within `skew` steps of `at`: the oldest that
    /// matches. `None` for a wrong code, or anything that is not six digits.
    pub fn matching_step(&self, code: &str, at: OffsetDateTime, skew: u8) -> Option<i64> {
        let seconds = u64::try_from(at.unix_timestamp()).ok()?;
        let code = code.trim();
        let step = self.totp(skew).check(code, seconds)?;
        i64::try_from(step).ok()
    }

    /// The code of the step `at` falls in: what an authenticator app shows then.
    pub fn code_at(&self, at: OffsetDateTime) -> String {
        let seconds = u64::try_from(at.unix_timestamp()).unwrap_or(0);
        self.totp(0).generate(seconds).to_string()
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// The step `at` falls in.
pub fn step_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(STEP_SECONDS as i64)
}

/// What stays as it is in an `otpauth://` label or parameter: RFC 3986's unreserved
/// characters; everything else is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret and vectors, cut to six digits.
    #[test]
    fn codes_match_the_rfc_vectors() {
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        let at = |seconds| OffsetDateTime::from_unix_timestamp(seconds).unwrap();
        assert_eq!(secret.code_at(at(59)), "287082");
        assert_eq!(secret.code_at(at(1_111_111_109)), "081804");
        assert_eq!(secret.code_at(at(1_234_567_890)), "005924");
        assert_eq!(secret.code_at(at(2_000_000_000)), "279037");
    }

    #[test]
    fn a_code_matches_its_step_within_the_skew_and_no_other() {
        let secret = TotpSecret::generate();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_015).unwrap();
        let step = step_of(now);
        let previous = secret.code_at(now - time::Duration::seconds(30));
        assert_eq!(
            secret.matching_step(&secret.code_at(now), now, 1),
            Some(step)
        );
        assert_eq!(secret.matching_step(&previous, now, 1), Some(step - 1));
        assert_eq!(secret.matching_step(&previous, now, 0), None);
        let two_old = secret.code_at(now - time::Duration::seconds(60));
        assert_eq!(secret.matching_step(&two_old, now, 1), None);
        for garbage in ["", "12345", "1234567", "+12345", "abcdef", "١٢٣٤٥٦"] {
            assert_eq!(secret.matching_step(garbage, now, 1), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_secret_is_160_bits_round_trips_as_base32_and_is_never_printed() {
        let secret = TotpSecret::generate();
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        assert_eq!(TotpSecret::from_base32(&text), Some(secret.clone()));
        assert_eq!(TotpSecret::from_base32("AAAA"), None);
        assert!(!format!("{secret:?}").contains(&text));
        let uri = secret.otpauth_uri("auth service", "ada@example.com");
        assert!(uri.starts_with("otpauth://totp/auth%20service:ada%40example.com?secret="));
        assert!(uri.contains(&format!("secret={text}&")));
        assert!(uri.ends_with("algorithm=SHA1&digits=6&period=30"));
    }
}
