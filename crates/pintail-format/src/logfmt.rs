//! One structured log line: `key=value` pairs, values quoted when they
//! hold spaces, quotes or `=`, so that a line reads well and splits with
//! any logfmt parser. The servers (`pintail serve`, `pintail mcp`) log
//! with it to stderr.

use std::fmt::Write as _;

/// `pairs` as one logfmt line, without its line break.
pub fn logfmt(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{key}={}", quote(value));
    }
    out
}

fn quote(value: &str) -> String {
    let plain = !value.is_empty() && value.chars().all(|c| !c.is_whitespace() && c != '"' && c != '=' && !c.is_control());
    if plain {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(quote("127.0.0.1:5433"), "127.0.0.1:5433");
        assert_eq!(quote("SELECT 1"), "\"SELECT 1\"");
        assert_eq!(quote("a=\"b\"\nc"), "\"a=\\\"b\\\"\\nc\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(logfmt(&[("event", "query"), ("sql", "SELECT 1")]), "event=query sql=\"SELECT 1\"");
    }
}
