//! Reading `SET name = value`, `RESET name` and `SHOW name` from tokens.
//!
//! Only the name and the value's text are taken here; whether the name is a
//! Pintail setting or DataFusion's is the session's decision.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, ErrorKind, Result};
use crate::statement::Statement;

/// The name and value of `SET [SESSION|LOCAL|GLOBAL] name (=|TO) value`, or
/// of `RESET name` (no value).
pub(crate) fn parse_set(s: &Statement) -> Result<(String, Option<String>)> {
    let mut tokens = s.tokens().iter().map(|t| &t.token).skip(1).peekable();
    if let Some(Token::Word(w)) = tokens.peek()
        && matches!(w.keyword, Keyword::SESSION | Keyword::LOCAL | Keyword::GLOBAL)
    {
        tokens.next();
    }
    let mut name = String::new();
    loop {
        match tokens.next() {
            Some(Token::Word(w)) if w.keyword == Keyword::TO && !name.is_empty() => break,
            Some(Token::Word(w)) => name.push_str(&w.value),
            Some(Token::Period) => name.push('.'),
            Some(Token::Eq) | None => break,
            Some(other) => {
                return Err(Error::new(ErrorKind::Syntax, format!("unexpected '{other}' in '{}'", s.text())));
            }
        }
    }
    if name.is_empty() {
        return Err(Error::new(ErrorKind::Syntax, format!("expected a setting name in '{}'", s.text())));
    }
    let rest: Vec<&Token> = tokens.collect();
    let value = match rest.as_slice() {
        [] => None,
        [Token::SingleQuotedString(v) | Token::DoubleQuotedString(v) | Token::Number(v, _)] => Some(v.clone()),
        [Token::Word(w)] => Some(w.value.clone()),
        [Token::Minus, Token::Number(v, _)] => Some(format!("-{v}")),
        // `SET memory_limit = 4 GB` style: keep the text as written
        many => Some(many.iter().map(ToString::to_string).collect::<String>()),
    };
    Ok((name, value))
}

/// The single name in `SHOW name`, if the statement is of that form.
pub(crate) fn show_name(s: &Statement) -> Option<String> {
    match s.tokens() {
        [_, t] => match &t.token {
            Token::Word(w) => Some(w.value.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::split_statements;

    fn set(sql: &str) -> (String, Option<String>) {
        parse_set(&split_statements(sql).unwrap()[0]).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(set("SET memory_limit = '4GB'"), ("memory_limit".into(), Some("4GB".into())));
        assert_eq!(set("SET threads TO 3"), ("threads".into(), Some("3".into())));
        assert_eq!(set("SET SESSION threads = 2"), ("threads".into(), Some("2".into())));
        assert_eq!(
            set("SET datafusion.execution.batch_size = 1024"),
            ("datafusion.execution.batch_size".into(), Some("1024".into()))
        );
        assert_eq!(set("RESET threads"), ("threads".into(), None));
        let show = split_statements("SHOW memory_limit").unwrap();
        assert_eq!(show_name(&show[0]).as_deref(), Some("memory_limit"));
    }
}
