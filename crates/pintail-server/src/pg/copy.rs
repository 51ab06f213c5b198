//! `COPY ... TO STDOUT`: a query's rows streamed to the client in
//! Postgres' COPY formats (text, CSV, binary), as psql's `\copy` and
//! psycopg's `cursor.copy()` read them.
//!
//! The statement is parsed here, at the edge, into the query to run and
//! the format; the query runs as any other, and its batches are encoded
//! row by row with pgwire's `CopyEncoder` and arrow-pg's value encoders.
//! `COPY ... TO 'file'` is Pintail's own statement and is left to the
//! session; `COPY ... FROM STDIN` is refused.

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::{BufMut, BytesMut};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
use pintail_core::datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use pintail_core::{Error, ErrorKind, Result, Statement, split_statements};

use super::errors::to_pg;
use super::{encode, pg_fields};
use crate::log::QueryLog;
use crate::stop::Stop;
use crate::work::Running;

/// A parsed `COPY source TO STDOUT [WITH] (options)`.
#[derive(Debug)]
pub(crate) struct CopyOut {
    /// The query whose rows are copied.
    pub(crate) query: Statement,
    format: CopyFormat,
    header: bool,
}

#[derive(Debug, Clone)]
enum CopyFormat {
    Text(CopyTextOptions),
    Csv(CopyCsvOptions),
    Binary,
}

/// `statement` as a `COPY ... TO STDOUT`; `None` for any other statement
/// (`COPY ... TO 'file'` included).
pub(crate) fn parse(statement: &Statement) -> Result<Option<CopyOut>> {
    let tokens = statement.tokens();
    if !matches!(tokens.first().map(|t| &t.token), Some(Token::Word(w)) if w.keyword == Keyword::COPY) {
        return Ok(None);
    }
    let Some((direction, to)) = top_level_direction(tokens) else { return Ok(None) };
    let target = tokens.get(to + 1).and_then(|t| word(&t.token));
    match (direction, target.as_deref()) {
        (Keyword::FROM, Some("STDIN")) => {
            return Err(Error::new(ErrorKind::NotSupported, "COPY FROM STDIN is not supported")
                .with_hint("send rows with INSERT (executemany), or read a file with COPY t FROM 'path'"));
        }
        (Keyword::TO, Some("STDOUT")) => {}
        _ => return Ok(None),
    }
    if to < 2 {
        return Err(syntax(statement));
    }
    let query = source_query(statement, to)?;
    let (format, header) = options(statement, to + 2)?;
    Ok(Some(CopyOut { query, format, header }))
}

/// The index of the `TO` or `FROM` outside parentheses, and which.
fn top_level_direction(tokens: &[TokenWithSpan]) -> Option<(Keyword, usize)> {
    let mut depth = 0_usize;
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Word(w) if depth == 0 && matches!(w.keyword, Keyword::TO | Keyword::FROM) => return Some((w.keyword, i)),
            _ => {}
        }
    }
    None
}

/// `(query)`, `table` or `table (columns)` before `TO`, as a query.
fn source_query(statement: &Statement, to: usize) -> Result<Statement> {
    let tokens = statement.tokens();
    let text = statement.text();
    let query = if tokens[1].token == Token::LParen && tokens[to - 1].token == Token::RParen {
        text[statement.token_range(2, to - 2)].to_string()
    } else if let Some(open) = tokens[1..to].iter().position(|t| t.token == Token::LParen).map(|i| i + 1) {
        if open < 2 || tokens[to - 1].token != Token::RParen || open + 1 > to - 2 {
            return Err(syntax(statement));
        }
        let table = &text[statement.token_range(1, open - 1)];
        let columns = &text[statement.token_range(open + 1, to - 2)];
        format!("SELECT {columns} FROM {table}")
    } else {
        format!("SELECT * FROM {}", &text[statement.token_range(1, to - 1)])
    };
    let mut statements = split_statements(&query)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(syntax(statement)),
    }
}

/// The options after `STDOUT`: `[WITH] (FORMAT csv, HEADER, DELIMITER ';',
/// NULL 'x', QUOTE '"', ESCAPE '\')` or the older `[WITH] [BINARY | CSV]
/// [HEADER] [DELIMITER [AS] ';'] [NULL [AS] 'x']`.
fn options(statement: &Statement, from: usize) -> Result<(CopyFormat, bool)> {
    let tokens = &statement.tokens()[from.min(statement.tokens().len())..];
    let tokens = match tokens.first().and_then(|t| word(&t.token)) {
        Some(w) if w == "WITH" => &tokens[1..],
        _ => tokens,
    };
    let mut settings: Vec<(String, Option<String>)> = Vec::new();
    if tokens.first().map(|t| &t.token) == Some(&Token::LParen) {
        if tokens.last().map(|t| &t.token) != Some(&Token::RParen) {
            return Err(syntax(statement));
        }
        for option in tokens[1..tokens.len() - 1].split(|t| t.token == Token::Comma) {
            match option {
                [name] => settings.push((word(&name.token).ok_or_else(|| syntax(statement))?, None)),
                [name, value] => settings.push((word(&name.token).ok_or_else(|| syntax(statement))?, Some(value_of(&value.token, statement)?))),
                _ => return Err(syntax(statement)),
            }
        }
    } else {
        let mut rest = tokens.iter().peekable();
        while let Some(t) = rest.next() {
            let name = word(&t.token).ok_or_else(|| syntax(statement))?;
            match name.as_str() {
                "BINARY" | "CSV" => settings.push(("FORMAT".into(), Some(name.to_lowercase()))),
                "HEADER" => settings.push((name, None)),
                _ => {
                    if rest.peek().and_then(|t| word(&t.token)).as_deref() == Some("AS") {
                        rest.next();
                    }
                    let value = rest.next().ok_or_else(|| syntax(statement))?;
                    settings.push((name, Some(value_of(&value.token, statement)?)));
                }
            }
        }
    }
    let mut format = "text".to_string();
    let (mut header, mut delimiter, mut null, mut quote, mut escape) = (false, None, None, None, None);
    for (name, value) in settings {
        match (name.as_str(), value) {
            ("FORMAT", Some(v)) => format = v.to_lowercase(),
            ("HEADER", None) => header = true,
            ("HEADER", Some(v)) => {
                header = match v.to_lowercase().as_str() {
                    "true" | "on" | "1" => true,
                    "false" | "off" | "0" => false,
                    other => return Err(bad_option(format!("HEADER takes true or false, not '{other}'"))),
                }
            }
            ("DELIMITER", Some(v)) => delimiter = Some(single_char("DELIMITER", v)?),
            ("QUOTE", Some(v)) => quote = Some(single_char("QUOTE", v)?),
            ("ESCAPE", Some(v)) => escape = Some(single_char("ESCAPE", v)?),
            ("NULL", Some(v)) => null = Some(v),
            ("ENCODING", Some(v)) if v.eq_ignore_ascii_case("utf8") || v.eq_ignore_ascii_case("utf-8") => {}
            (name, _) => {
                return Err(bad_option(format!("unsupported COPY TO STDOUT option {name}"))
                    .with_hint("options: FORMAT text|csv|binary, HEADER, DELIMITER, NULL, QUOTE, ESCAPE, ENCODING 'UTF8'"));
            }
        }
    }
    let format = match format.as_str() {
        "text" => {
            let defaults = CopyTextOptions::default();
            CopyFormat::Text(CopyTextOptions {
                delimiter: delimiter.map_or(defaults.delimiter, Into::into),
                null_string: null.map_or(defaults.null_string, Into::into),
            })
        }
        "csv" => {
            let defaults = CopyCsvOptions::default();
            let quote = quote.map_or(defaults.quote, Into::into);
            CopyFormat::Csv(CopyCsvOptions {
                delimiter: delimiter.map_or(defaults.delimiter, Into::into),
                // the escape defaults to the quote, as in Postgres
                escape: escape.map_or_else(|| quote.clone(), Into::into),
                quote,
                null_string: null.map_or(defaults.null_string, Into::into),
                force_quote: Vec::new(),
            })
        }
        "binary" if header || delimiter.is_some() || null.is_some() => {
            return Err(bad_option("FORMAT binary takes no HEADER, DELIMITER or NULL"));
        }
        "binary" => CopyFormat::Binary,
        other => return Err(bad_option(format!("unknown COPY format '{other}'")).with_hint("use text, csv or binary")),
    };
    if header && !matches!(format, CopyFormat::Csv(_)) {
        return Err(bad_option("HEADER is available only in CSV format"));
    }
    Ok((format, header))
}

/// A COPY option that cannot be used.
fn bad_option(message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidOption, format!("COPY: {message}"))
}

fn single_char(option: &str, value: String) -> Result<String> {
    if value.chars().count() == 1 {
        Ok(value)
    } else {
        Err(bad_option(format!("{option} must be a single one-byte character, not '{value}'")))
    }
}

/// An unquoted word, upper-cased.
fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// An option's value: a quoted string, a word or a number.
fn value_of(t: &Token, statement: &Statement) -> Result<String> {
    match t {
        Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Ok(s.clone()),
        Token::Word(w) => Ok(w.value.clone()),
        Token::Number(n, _) => Ok(n.clone()),
        _ => Err(syntax(statement)),
    }
}

fn syntax(statement: &Statement) -> Error {
    Error::new(ErrorKind::Syntax, format!("cannot read COPY statement: {}", statement.text()))
        .with_hint("write COPY table TO STDOUT, COPY table (a, b) TO STDOUT or COPY (query) TO STDOUT, then options")
}

/// The response streaming `result` in `copy`'s format, one message per
/// row (pgwire counts them for the `COPY n` tag).
pub(crate) fn response(copy: &CopyOut, result: Running, stop: Stop, log: Arc<QueryLog>) -> Result<CopyResponse> {
    let schema = result.schema();
    let binary = matches!(copy.format, CopyFormat::Binary);
    let wire = if binary { Format::UnifiedBinary } else { Format::UnifiedText };
    let fields: Arc<Vec<FieldInfo>> = Arc::new(pg_fields(&schema, &wire)?);
    let columns = fields.len();
    let mut encoder = match &copy.format {
        CopyFormat::Text(options) => CopyEncoder::new_text(Arc::clone(&fields), options.clone()),
        CopyFormat::Csv(options) => CopyEncoder::new_csv(Arc::clone(&fields), options.clone()),
        CopyFormat::Binary => CopyEncoder::new_binary(Arc::clone(&fields)),
    };
    let mut header = match (&copy.format, copy.header) {
        (CopyFormat::Csv(options), true) => Some(csv_header(&schema, options)),
        _ => None,
    };
    let rows = encode(result, Arc::clone(&log), move |batch| {
        let mut rows = encode_rows(&mut encoder, batch, &fields);
        // the header goes with the first row: pgwire counts messages as rows
        if let (Some(head), Some(Ok(first))) = (header.as_ref(), rows.first_mut()) {
            let mut joined = BytesMut::from(head.as_slice());
            joined.put_slice(&first.data);
            first.data = joined.freeze();
            header = None;
        }
        rows
    });
    let format = i8::from(binary);
    Ok(CopyResponse::new(format, columns, stop.stream(rows, log, to_pg)))
}

/// The rows of `batch`, one COPY message each.
fn encode_rows(encoder: &mut CopyEncoder, batch: &RecordBatch, fields: &[FieldInfo]) -> Vec<PgWireResult<CopyData>> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            for (i, column) in batch.columns().iter().enumerate() {
                arrow_pg::encoder::encode_value(encoder, column, row, schema.field(i), &fields[i])?;
            }
            Ok(encoder.take_copy())
        })
        .collect()
}

/// The CSV header line: the column names, quoted where they need it.
fn csv_header(schema: &arrow::datatypes::Schema, options: &CopyCsvOptions) -> Vec<u8> {
    let quote = options.quote.as_str();
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name();
            let special = name.contains(options.delimiter.as_str()) || name.contains(quote) || name.contains(['\n', '\r']);
            if special { format!("{quote}{}{quote}", name.replace(quote, &format!("{quote}{quote}"))) } else { name.clone() }
        })
        .collect();
    let mut line = names.join(options.delimiter.as_str()).into_bytes();
    line.push(b'\n');
    line
}
