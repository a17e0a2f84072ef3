//! What a session remembers of the device it was made on, for the owner's list of
//! sessions: the browser's User-Agent and the client's address, as seen at login.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The longest User-Agent kept, in characters: enough to tell browsers apart, too short
/// to let a client fill the store with a header of its choosing.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// The device a session was made on. Either part may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The User-Agent at login, without control characters, at most
    /// [`MAX_USER_AGENT_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The client's address at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

impl Device {
    /// The device of a login request: `user_agent` as sent (cleaned and cut here), the
    /// client's address when known.
    pub fn new(user_agent: Option<&str>, ip: Option<IpAddr>) -> Self {
        Self {
            user_agent: user_agent.map(clean_user_agent).filter(|ua| !ua.is_empty()),
            ip,
        }
    }
}

/// Control characters out (they could forge lines in a terminal or a log), and format
/// characters (bidi overrides, zero-width characters: they make the agent shown to its
/// owner read other than it is), then cut to [`MAX_USER_AGENT_CHARS`] characters, never
/// inside a character.
pub fn clean_user_agent(raw: &str) -> String {
    raw.chars()
        .filter(|&c| !crate::validation::is_unsafe_char(c))
        .take(MAX_USER_AGENT_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_removed_and_the_agent_is_cut_to_256_characters() {
        assert_eq!(clean_user_agent("curl/8.5\r\n\u{7}x"), "curl/8.5x");
        assert_eq!(
            clean_user_agent("Mozilla\u{202E}gpj.exe\u{200B}\u{2066}\u{FEFF}/5.0"),
            "Mozillagpj.exe/5.0"
        );
        let long = "é".repeat(300);
        let cut = clean_user_agent(&long);
        assert_eq!(cut.chars().count(), MAX_USER_AGENT_CHARS);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn an_agent_with_nothing_left_is_unknown() {
        assert_eq!(Device::new(Some("\u{1}\u{2}"), None).user_agent, None);
        assert_eq!(Device::new(None, None), Device::default());
    }
}
