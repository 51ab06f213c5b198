//! Splitting SQL text into statements and telling their kinds apart.
//!
//! Text is tokenized once with sqlparser's tokenizer, so semicolons inside
//! strings, quoted names and comments never split a statement. Each
//! [`Statement`] keeps its original text (for error reports and views) and
//! its tokens (so Pintail's own statements, like `SUMMARIZE` or DuckDB-style
//! `COPY`, are parsed from tokens rather than re-scanned strings). Parsing
//! the statements themselves is [`crate::session`]'s job.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, ErrorKind, Result};

/// What a statement is, as far as Pintail routes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `SUMMARIZE <table | query | 'file'>`.
    Summarize,
    /// `DESCRIBE` / `DESC <table | query | 'file'>`.
    Describe,
    /// `COPY ... TO ...`.
    Copy,
    /// `SET name = value`.
    Set,
    /// `RESET name`.
    Reset,
    /// `SHOW ...`.
    Show,
    /// Anything else: handed to DataFusion after file references are resolved.
    Other,
}

/// One statement of a SQL text.
#[derive(Debug, Clone)]
pub struct Statement {
    text: String,
    tokens: Vec<TokenWithSpan>,
    kind: StatementKind,
}

impl Statement {
    /// The statement's text as written, without the trailing `;`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The statement's kind.
    pub fn kind(&self) -> StatementKind {
        self.kind
    }

    /// The tokens, whitespace and comments removed.
    pub fn tokens(&self) -> &[TokenWithSpan] {
        &self.tokens
    }

    /// This statement with its `?` placeholders numbered `$1`, `$2`, ...
    /// in the order written, and the number of parameters it takes (see
    /// [`crate::Session::execute_with_params`]).
    pub fn with_numbered_parameters(&self) -> Result<(Statement, usize)> {
        crate::params::numbered(self)
    }

    /// The byte range in [`Self::text`] of tokens `first..=last`.
    pub fn token_range(&self, first: usize, last: usize) -> std::ops::Range<usize> {
        let base = self.tokens[0].span.start;
        let start = offset_in(&self.text, base, self.tokens[first].span.start);
        let end = offset_in(&self.text, base, self.tokens[last].span.end);
        start..end.max(start)
    }

    /// The original text from token `i` to the end.
    pub(crate) fn text_from_token(&self, i: usize) -> &str {
        match self.tokens.get(i) {
            None => "",
            Some(t) => {
                let start = offset_in(&self.text, self.tokens[0].span.start, t.span.start);
                self.text[start..].trim()
            }
        }
    }
}

/// Splits `sql` into its statements. Empty statements (`;;`) are dropped.
pub fn split_statements(sql: &str) -> Result<Vec<Statement>> {
    let tokens = tokenize(sql)?;
    let lines = LineIndex::new(sql);
    let mut out = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut flush = |current: &mut Vec<TokenWithSpan>| {
        if let (Some(first), Some(last)) = (current.first(), current.last()) {
            let start = lines.offset(first.span.start);
            let end = lines.offset(last.span.end);
            let text = sql[start..end.max(start)].to_string();
            let kind = classify(current);
            out.push(Statement {
                text,
                tokens: std::mem::take(current),
                kind,
            });
        }
        current.clear();
    };
    for t in tokens {
        match &t.token {
            Token::SemiColon => flush(&mut current),
            Token::Whitespace(_) | Token::EOF => {}
            _ => current.push(t),
        }
    }
    flush(&mut current);
    Ok(out)
}

/// Whether `sql` ends a statement: its last token (outside strings and
/// comments) is `;`. The REPL keeps reading lines until this holds.
pub fn is_complete(sql: &str) -> bool {
    match Tokenizer::new(&GenericDialect {}, sql).tokenize() {
        // an unterminated string or comment needs more lines
        Err(_) => false,
        Ok(tokens) => tokens
            .iter()
            .rev()
            .find(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
            .is_some_and(|t| matches!(t, Token::SemiColon)),
    }
}

fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| Error::new(ErrorKind::Syntax, e.to_string()))
}

fn classify(tokens: &[TokenWithSpan]) -> StatementKind {
    let Some(Token::Word(w)) = tokens.first().map(|t| &t.token) else {
        return StatementKind::Other;
    };
    match w.keyword {
        Keyword::DESCRIBE | Keyword::DESC => StatementKind::Describe,
        Keyword::COPY => StatementKind::Copy,
        Keyword::SET => StatementKind::Set,
        Keyword::RESET => StatementKind::Reset,
        Keyword::SHOW => StatementKind::Show,
        _ if w.value.eq_ignore_ascii_case("summarize") => StatementKind::Summarize,
        _ => StatementKind::Other,
    }
}

/// Maps the tokenizer's (line, column) locations to byte offsets.
struct LineIndex<'a> {
    starts: Vec<usize>,
    text: &'a str,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts, text }
    }

    fn offset(&self, loc: Location) -> usize {
        let line = (loc.line as usize).saturating_sub(1);
        let Some(&start) = self.starts.get(line) else {
            return self.text.len();
        };
        let col = (loc.column as usize).saturating_sub(1);
        self.text[start..]
            .char_indices()
            .nth(col)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

/// The byte offset in `text` (which begins at location `base`) of `loc`.
fn offset_in(text: &str, base: Location, loc: Location) -> usize {
    let mut line = base.line;
    let mut col = base.column;
    for (i, ch) in text.char_indices() {
        if line == loc.line && col == loc.column {
            return i;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let s = split_statements("SELECT 'a;b'; -- c;\n SELECT /* ; */ 2;;  ").unwrap();
        let texts: Vec<_> = s.iter().map(Statement::text).collect();
        assert_eq!(texts, vec!["SELECT 'a;b'", "SELECT /* ; */ 2"]);
    }

    #[test]
    fn kinds() {
        let s = split_statements("summarize t; DESCRIBE t; copy t to 'x'; set threads=2; select 1").unwrap();
        let kinds: Vec<_> = s.iter().map(Statement::kind).collect();
        assert_eq!(
            kinds,
            vec![
                StatementKind::Summarize,
                StatementKind::Describe,
                StatementKind::Copy,
                StatementKind::Set,
                StatementKind::Other
            ]
        );
        assert_eq!(s[0].text_from_token(1), "t");
    }

    #[test]
    fn completeness() {
        assert!(is_complete("select 1;"));
        assert!(is_complete("select 1; -- done\n"));
        assert!(!is_complete("select 1"));
        assert!(!is_complete("select ';"));
        assert!(!is_complete("select 1 /* ; "));
    }

    #[test]
    fn multiline_offsets() {
        let s = split_statements("SELECT\n  'é', 2;\nSELECT 3").unwrap();
        assert_eq!(s[0].text(), "SELECT\n  'é', 2");
        assert_eq!(s[1].text(), "SELECT 3");
    }
}
