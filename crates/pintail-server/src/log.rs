//! One structured line per event on stderr: `key=value` pairs, values
//! quoted when they hold spaces, quotes or `=`, so that a line reads well
//! and splits with any logfmt parser.

use std::fmt::Write as _;
use std::io::Write as _;

/// Writes `pairs` as one logfmt line to stderr.
pub(crate) fn line(pairs: &[(&str, &str)]) {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{key}={}", quote(value));
    }
    out.push('\n');
    // a log line that cannot be written is not the query's failure
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
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
    use super::quote;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(quote("127.0.0.1:5433"), "127.0.0.1:5433");
        assert_eq!(quote("SELECT 1"), "\"SELECT 1\"");
        assert_eq!(quote("a=\"b\"\nc"), "\"a=\\\"b\\\"\\nc\"");
        assert_eq!(quote(""), "\"\"");
    }
}
