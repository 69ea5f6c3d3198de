//! Keeping credentials out of logs, errors and printed commands.
//!
//! - [`Secret`] holds a credential; its `Debug` and `Display` print `***`, so it can sit in any
//!   struct or format string without leaking. [`Secret::expose`] is the one way to read it.
//! - [`is_secret_key`] says whether a configuration key's value is a credential (`secret`, `key`,
//!   `token`, `password`, `sas`, `credential` in its name).
//! - [`redact_url`] replaces the `user:password@` part of every URL in a text with `***@`;
//!   [`redact_value`] applies both rules to one configuration entry.

use std::borrow::Cow;
use std::fmt;

/// What a redacted value prints as.
pub const REDACTED: &str = "***";

/// A credential: `Debug` and `Display` print `***`; [`Secret::expose`] gives the value.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Whether a configuration key's value must never be shown.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "key", "token", "password", "sas", "credential"]
        .iter()
        .any(|s| k.contains(s))
}

/// `text` with the user-info part (`user:password@`) of every `scheme://` URL in it replaced by
/// `***@`; borrowed unchanged when there is none.
pub fn redact_url(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the path, query, fragment, or anything that ends a URL in prose.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '`' | '\'' | '"' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// How a configuration entry may be shown: `***` for a secret key, else the value with URL
/// credentials redacted.
pub fn redact_value<'a>(key: &str, value: &'a str) -> Cow<'a, str> {
    if is_secret_key(key) {
        Cow::Borrowed(REDACTED)
    } else {
        redact_url(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("wJalrXUtnFEMI");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "wJalrXUtnFEMI");
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("http://AKID:s3cr3t@127.0.0.1:9000/x"),
            "http://***@127.0.0.1:9000/x"
        );
        assert_eq!(
            redact_url("s3://AKID:p@ss@bucket"),
            "s3://***@bucket",
            "the last @ ends the user info"
        );
        assert_eq!(
            redact_url("failed on `http://u:pw@h:1` then https://v:pw2@k/p?q=@"),
            "failed on `http://***@h:1` then https://***@k/p?q=@"
        );
        assert!(matches!(
            redact_url("http://127.0.0.1:9000/a@b"),
            Cow::Borrowed(_)
        ));
        assert_eq!(redact_url("user@example.com"), "user@example.com");
    }

    #[test]
    fn values_of_secret_keys_are_hidden() {
        assert_eq!(redact_value("ember.s3.secretKey", "abc"), "***");
        assert_eq!(redact_value("ember.s3.accessKey", "AKID"), "***");
        assert_eq!(redact_value("ember.s3.sessionToken", "tok"), "***");
        assert_eq!(
            redact_value("ember.s3.endpoint", "http://a:b@h:9000"),
            "http://***@h:9000"
        );
        assert_eq!(redact_value("ember.master", "local[2]"), "local[2]");
    }
}
