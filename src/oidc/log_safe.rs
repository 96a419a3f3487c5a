//! Request-supplied text in log lines. A client_id, login name or error message from a
//! request is logged through [`Untrusted`], so CR, LF, ESC and invisible characters cannot
//! forge a line, smuggle a field or rewrite a terminal; a login name that names no account
//! is logged only as a [`login_marker`], since it may be a password typed in the wrong field.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The most characters of one value written to a log line.
const MAX_CHARS: usize = 200;

/// Writes a request-supplied value as itself when it is plain (no whitespace, quotes, `=`,
/// backslashes, control or invisible characters), else quoted with those escaped, logfmt
/// style; longer than [`MAX_CHARS`] it is cut and followed by `…`.
pub(crate) struct Untrusted<T>(pub T);

impl<T: fmt::Display> fmt::Display for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let mut chars = text.chars();
        let shown: String = chars.by_ref().take(MAX_CHARS).collect();
        let cut = chars.next().is_some();
        if !cut && !shown.is_empty() && shown.chars().all(is_plain) {
            return f.write_str(&shown);
        }
        f.write_char('"')?;
        for c in shown.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if needs_escape(c) => write!(f, "{}", c.escape_unicode())?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')?;
        if cut {
            f.write_char('…')?;
        }
        Ok(())
    }
}

fn is_plain(c: char) -> bool {
    !needs_escape(c) && !c.is_whitespace() && !matches!(c, '"' | '\\' | '=')
}

/// Control characters (C0, DEL, C1) and the invisible ones that reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A short stand-in for a login name that names no account: `unknown:` and 8 hex digits of
/// a SHA-256 keyed with a random key of this process. Equal names give equal markers, so an
/// operator can see one name being tried again and again; the key keeps the marker from
/// being reversed by hashing a dictionary of likely passwords.
pub(crate) fn login_marker(name: &str) -> String {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source failed");
        key
    });
    let digest = Sha256::new()
        .chain_update(key)
        .chain_update(name.as_bytes())
        .finalize();
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("unknown:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        Untrusted(text).to_string()
    }

    #[test]
    fn plain_values_are_written_as_they_are() {
        assert_eq!(shown("harbor"), "harbor");
        assert_eq!(shown("admin@kubesphere.io"), "admin@kubesphere.io");
        assert_eq!(shown("Jürgen"), "Jürgen");
    }

    #[test]
    fn crlf_in_a_value_cannot_forge_a_log_line() {
        let forged = "x\r\n2025-01-01T00:00:00Z  INFO login succeeded user=admin";
        let line = shown(forged);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert_eq!(
            line,
            r#""x\r\n2025-01-01T00:00:00Z  INFO login succeeded user=admin""#
        );
    }

    #[test]
    fn terminal_escapes_and_invisible_characters_are_escaped() {
        assert_eq!(shown("a\u{1b}[2Jb"), r#""a\u{1b}[2Jb""#);
        assert_eq!(shown("evil\u{202e}txt"), r#""evil\u{202e}txt""#);
        assert_eq!(shown("a\u{85}b"), r#""a\u{85}b""#);
        assert_eq!(shown("a\u{2028}b"), r#""a\u{2028}b""#);
    }

    #[test]
    fn a_value_cannot_smuggle_another_field() {
        assert_eq!(shown("x user=admin"), r#""x user=admin""#);
        assert_eq!(shown(r#"x" user="admin"#), r#""x\" user=\"admin""#);
        assert_eq!(shown(r"a\nb"), r#""a\\nb""#);
        assert_eq!(shown(""), r#""""#);
    }

    #[test]
    fn a_long_value_is_cut() {
        let line = shown(&"a".repeat(10_000));
        assert_eq!(line, format!("\"{}\"…", "a".repeat(MAX_CHARS)));
    }

    #[test]
    fn errors_are_escaped_like_strings() {
        let error = std::io::Error::other("bad\ninput");
        assert_eq!(Untrusted(&error).to_string(), r#""bad\ninput""#);
    }

    #[test]
    fn login_marker_is_stable_short_and_hides_the_name() {
        let marker = login_marker("Secr3t-P@ss");
        assert_eq!(marker, login_marker("Secr3t-P@ss"));
        assert_ne!(marker, login_marker("Secr3t-P@sS"));
        assert_eq!(marker.len(), "unknown:".len() + 8);
        assert!(!marker.contains("Secr3t"));
        let unkeyed = Sha256::digest("Secr3t-P@ss");
        let unkeyed: String = unkeyed[..4].iter().map(|b| format!("{b:02x}")).collect();
        assert_ne!(
            marker,
            format!("unknown:{unkeyed}"),
            "keyed, not a plain SHA-256"
        );
    }
}
