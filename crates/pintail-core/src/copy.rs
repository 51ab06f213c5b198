//! DuckDB-style `COPY`: `COPY (query) TO 'dir' (FORMAT parquet,
//! PARTITION_BY (a, b), COMPRESSION zstd)`.
//!
//! The statement is parsed from its tokens and converted into DataFusion's
//! `COPY` (which does the writing) with DataFusion's option names. When the
//! target is followed by DataFusion's own clauses (`STORED AS`, `OPTIONS`),
//! [`parse`] returns `None` and DataFusion parses the statement itself.

use datafusion::sql::parser::{CopyToSource, CopyToStatement};
use datafusion::sql::sqlparser::ast::Value;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, ErrorKind, Result};
use crate::scan::{Compression, FileFormat};
use crate::statement::Statement;

/// One `NAME value` item of the option list.
#[derive(Debug)]
enum CopyValue {
    Flag,
    Text(String),
    List(Vec<String>),
}

fn syntax(e: &ParserError) -> Error {
    Error::new(ErrorKind::Syntax, e.to_string().trim_start_matches("sql parser error: ").to_string())
}

/// Parses a DuckDB-style `COPY ... TO ...`; `None` means "DataFusion syntax".
pub(crate) fn parse(s: &Statement) -> Result<Option<CopyToStatement>> {
    let dialect = GenericDialect {};
    let mut p = Parser::new(&dialect).with_tokens_with_locations(s.tokens().to_vec());
    p.expect_keyword(Keyword::COPY).map_err(|e| syntax(&e))?;
    let source = if p.consume_token(&Token::LParen) {
        let q = p.parse_query().map_err(|e| syntax(&e))?;
        p.expect_token(&Token::RParen).map_err(|e| syntax(&e))?;
        CopyToSource::Query(q)
    } else {
        CopyToSource::Relation(p.parse_object_name(false).map_err(|e| syntax(&e))?)
    };
    if p.parse_keyword(Keyword::FROM) {
        return Err(Error::new(ErrorKind::NotSupported, "COPY ... FROM is not supported yet")
            .with_hint("use INSERT INTO t SELECT * FROM 'file.csv'"));
    }
    p.expect_keyword(Keyword::TO).map_err(|e| syntax(&e))?;
    let target = p.parse_literal_string().map_err(|e| syntax(&e))?;
    let with = p.parse_keyword(Keyword::WITH);
    if !p.consume_token(&Token::LParen) {
        if with {
            return Err(Error::new(ErrorKind::Syntax, "expected '(' after WITH in COPY"));
        }
        if p.peek_token().token == Token::EOF {
            // no options: the format comes from the target's extension
            return convert(source, target, &[]).map(Some);
        }
        return Ok(None);
    }
    let mut items = Vec::new();
    loop {
        let name = p.parse_identifier().map_err(|e| syntax(&e))?.value.to_ascii_lowercase();
        let value = match p.peek_token().token {
            Token::Comma | Token::RParen => CopyValue::Flag,
            Token::LParen => {
                p.next_token();
                let cols = p.parse_comma_separated(Parser::parse_identifier).map_err(|e| syntax(&e))?;
                p.expect_token(&Token::RParen).map_err(|e| syntax(&e))?;
                CopyValue::List(cols.into_iter().map(|c| c.value).collect())
            }
            _ => {
                let t = p.next_token().token;
                CopyValue::Text(match t {
                    Token::Word(w) => w.value,
                    Token::SingleQuotedString(v) | Token::DoubleQuotedString(v) | Token::Number(v, _) => v,
                    other => {
                        return Err(Error::new(ErrorKind::Syntax, format!("unexpected '{other}' in COPY option '{name}'")));
                    }
                })
            }
        };
        items.push((name, value));
        if p.consume_token(&Token::RParen) {
            break;
        }
        p.expect_token(&Token::Comma).map_err(|e| syntax(&e))?;
    }
    if p.peek_token().token != Token::EOF {
        return Err(Error::new(ErrorKind::Syntax, format!("unexpected '{}' after COPY options", p.peek_token().token)));
    }
    convert(source, target, &items).map(Some)
}

fn text(name: &str, v: &CopyValue) -> Result<String> {
    match v {
        // DuckDB writes a tab delimiter as '\t'
        CopyValue::Text(t) if t == "\\t" => Ok("\t".into()),
        CopyValue::Text(t) => Ok(t.clone()),
        CopyValue::Flag => Err(Error::option(name, "needs a value")),
        CopyValue::List(_) => Err(Error::option(name, "expected a single value, not a list")),
    }
}

fn boolean(name: &str, v: &CopyValue) -> Result<bool> {
    match v {
        CopyValue::Flag => Ok(true),
        other => match text(name, other)?.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(true),
            "false" | "0" | "off" | "no" => Ok(false),
            t => Err(Error::option(name, format!("expected true or false, got '{t}'"))),
        },
    }
}

#[expect(clippy::too_many_lines, reason = "one arm per COPY option reads best as one match")]
fn convert(source: CopyToSource, target: String, items: &[(String, CopyValue)]) -> Result<CopyToStatement> {
    let mut format: Option<FileFormat> = None;
    let mut partitioned_by = Vec::new();
    let mut options: Vec<(String, Value)> = Vec::new();
    let mut compression: Option<Compression> = None;
    let mut level: Option<String> = None;
    for (name, value) in items {
        match name.as_str() {
            "format" => {
                let t = text(name, value)?;
                format = Some(FileFormat::parse(&t).filter(|f| !matches!(f, FileFormat::Avro)).ok_or_else(|| {
                    Error::option(name, format!("cannot write format '{t}'")).with_hint("COPY writes parquet, csv, json or arrow")
                })?);
                if t.eq_ignore_ascii_case("tsv") {
                    options.push(("format.delimiter".into(), Value::SingleQuotedString("\t".into())));
                }
            }
            "partition_by" => {
                partitioned_by = match value {
                    CopyValue::List(cols) => cols.clone(),
                    CopyValue::Text(c) => vec![c.clone()],
                    CopyValue::Flag => return Err(Error::option(name, "needs columns: PARTITION_BY (col, ...)")),
                };
            }
            "compression" | "codec" => {
                let t = text(name, value)?;
                compression = Some(Compression::parse(&t).or_else(|| parquet_only_codec(&t)).ok_or_else(|| {
                    Error::option(name, format!("unknown compression '{t}'"))
                        .with_hint("use zstd, snappy, gzip, lz4, brotli or uncompressed for parquet; gzip, zstd, bzip2, xz for csv and json")
                })?);
                if parquet_only_codec(&t).is_some() {
                    options.push(("format.compression".into(), Value::SingleQuotedString(t.to_ascii_lowercase())));
                    compression = None;
                }
            }
            "compression_level" => level = Some(text(name, value)?),
            "header" => options.push(("format.has_header".into(), Value::SingleQuotedString(boolean(name, value)?.to_string()))),
            "delimiter" | "delim" | "sep" => options.push(("format.delimiter".into(), Value::SingleQuotedString(text(name, value)?))),
            "quote" => options.push(("format.quote".into(), Value::SingleQuotedString(text(name, value)?))),
            "escape" => options.push(("format.escape".into(), Value::SingleQuotedString(text(name, value)?))),
            "nullstr" | "null" => options.push(("format.null_value".into(), Value::SingleQuotedString(text(name, value)?))),
            "dateformat" | "date_format" => options.push(("format.date_format".into(), Value::SingleQuotedString(text(name, value)?))),
            "timestampformat" | "timestamp_format" => {
                options.push(("format.timestamp_format".into(), Value::SingleQuotedString(text(name, value)?)));
            }
            "row_group_size" => options.push(("format.max_row_group_size".into(), Value::SingleQuotedString(text(name, value)?))),
            other => {
                return Err(Error::option(other, "unknown COPY option").with_hint(
                    "COPY takes FORMAT, PARTITION_BY, COMPRESSION, COMPRESSION_LEVEL, HEADER, DELIMITER, QUOTE, ESCAPE, NULLSTR, DATEFORMAT, TIMESTAMPFORMAT, ROW_GROUP_SIZE",
                ));
            }
        }
    }
    let lower = target.to_ascii_lowercase();
    let format = if let Some(f) = format {
        f
    } else if [".tsv", ".tsv.gz", ".tsv.zst"].iter().any(|ext| lower.ends_with(ext)) {
        if !options.iter().any(|(k, _)| k == "format.delimiter") {
            options.push(("format.delimiter".into(), Value::SingleQuotedString("\t".into())));
        }
        FileFormat::Csv
    } else {
        format_from_target(&target)?
    };
    if let Some(c) = compression {
        let name = match (format, c) {
            (_, Compression::None) => "uncompressed",
            (FileFormat::Parquet, Compression::Bzip2 | Compression::Xz) => {
                return Err(Error::option("compression", "parquet files cannot be compressed with bzip2 or xz")
                    .with_hint("use zstd, snappy, gzip, lz4 or brotli"));
            }
            (_, Compression::Gzip) => "gzip",
            (_, Compression::Zstd) => "zstd",
            (_, Compression::Bzip2) => "bzip2",
            (_, Compression::Xz) => "xz",
        };
        let value = match (format, name, &level) {
            // parquet codecs with levels are written `zstd(3)`
            (FileFormat::Parquet, "zstd" | "gzip", Some(l)) => format!("{name}({l})"),
            (FileFormat::Parquet, "zstd", None) => "zstd(3)".into(),
            (FileFormat::Parquet, "gzip", None) => "gzip(6)".into(),
            _ => name.to_string(),
        };
        options.push(("format.compression".into(), Value::SingleQuotedString(value)));
        if format != FileFormat::Parquet
            && let Some(l) = &level
        {
            options.push(("format.compression_level".into(), Value::SingleQuotedString(l.clone())));
        }
    }
    let stored_as = match format {
        FileFormat::Parquet => "PARQUET",
        FileFormat::Csv => "CSV",
        FileFormat::Json => "JSON",
        FileFormat::Arrow => "ARROW",
        FileFormat::Avro => "AVRO",
    };
    Ok(CopyToStatement {
        source,
        target,
        partitioned_by,
        stored_as: Some(stored_as.into()),
        options,
    })
}

/// Parquet codecs that have no file-level equivalent.
fn parquet_only_codec(t: &str) -> Option<Compression> {
    let lower = t.to_ascii_lowercase();
    (lower == "snappy" || lower == "lz4" || lower == "lz4_raw" || lower.starts_with("brotli")).then_some(Compression::None)
}

fn format_from_target(target: &str) -> Result<FileFormat> {
    let last = target.trim_end_matches('/').rsplit('/').next().unwrap_or(target).to_ascii_lowercase();
    let stem = ["gz", "zst", "bz2", "xz"]
        .iter()
        .find_map(|c| last.strip_suffix(&format!(".{c}")))
        .unwrap_or(&last);
    stem.rsplit_once('.')
        .and_then(|(_, ext)| match ext {
            "ndjson" | "jsonl" => Some(FileFormat::Json),
            "tsv" => None,
            other => FileFormat::parse(other),
        })
        .ok_or_else(|| {
            Error::plan(format!("cannot tell which format to write to '{target}'"))
                .with_hint("add FORMAT: COPY ... TO 'out' (FORMAT parquet)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::split_statements;

    fn copy(sql: &str) -> Result<Option<CopyToStatement>> {
        parse(&split_statements(sql).unwrap()[0])
    }

    #[test]
    fn duckdb_options_become_datafusion_options() {
        let c = copy("COPY (SELECT 1 AS a) TO 'out' (FORMAT parquet, PARTITION_BY (a, b), COMPRESSION zstd)")
            .unwrap()
            .unwrap();
        assert_eq!(c.stored_as.as_deref(), Some("PARQUET"));
        assert_eq!(c.partitioned_by, vec!["a", "b"]);
        assert_eq!(c.options, vec![("format.compression".into(), Value::SingleQuotedString("zstd(3)".into()))]);
        let c = copy("COPY t TO 'x.csv.gz' (HEADER false, DELIMITER ';', COMPRESSION gzip)").unwrap().unwrap();
        assert_eq!(c.stored_as.as_deref(), Some("CSV"));
        assert!(c.options.contains(&("format.has_header".into(), Value::SingleQuotedString("false".into()))));
        let c = copy("COPY t TO 'x.parquet'").unwrap().unwrap();
        assert_eq!(c.stored_as.as_deref(), Some("PARQUET"));
    }

    #[test]
    fn datafusion_syntax_is_left_alone() {
        assert!(copy("COPY t TO 'x' STORED AS PARQUET").unwrap().is_none());
    }

    #[test]
    fn bad_options() {
        let e = copy("COPY t TO 'x' (FORMAT xml)").unwrap_err();
        assert!(e.to_string().contains("cannot write format 'xml'"), "{e}");
        let e = copy("COPY t TO 'x.parquet' (OVERWRITE_OR_IGNORE)").unwrap_err();
        assert!(e.to_string().contains("'overwrite_or_ignore': unknown COPY option"), "{e}");
        let e = copy("COPY t TO 'out'").unwrap_err();
        assert!(e.to_string().contains("cannot tell which format"), "{e}");
    }
}
