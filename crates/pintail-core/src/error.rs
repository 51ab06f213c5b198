//! Pintail's one error type.
//!
//! Every failure a front end can see is an [`Error`] with an [`ErrorKind`]
//! that separates the user's mistakes (bad SQL, a missing file, a wrong
//! option) from internal bugs, a message that quotes the bad input, and an
//! optional hint. DataFusion's, arrow's and object_store's errors are
//! converted here, once; fronts map the kind to exit codes, exception classes
//! or SQLSTATEs and never look inside DataFusion errors themselves.

use std::fmt;

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
#[cfg(feature = "native")]
use datafusion::parquet::errors::ParquetError;

/// What went wrong, in the categories fronts act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// SQL that does not parse.
    Syntax,
    /// SQL that parses but names something unknown or mistyped: a table, a
    /// column, a function, a type mismatch.
    Plan,
    /// A setting or table-function option that is unknown or has a bad value.
    InvalidOption,
    /// A file, directory or URL that is missing or cannot be read or written.
    Io,
    /// Data that cannot be read as the format says: a malformed CSV row, a
    /// corrupt Parquet file, a value that does not fit its column.
    Data,
    /// A query failed while running for a reason of its own (division by
    /// zero, a failed cast, ...).
    Execution,
    /// The query needed more memory than `memory_limit` allows.
    OutOfMemory,
    /// A feature Pintail does not have (yet).
    NotSupported,
    /// A statement that would write, refused by a read-only session.
    ReadOnly,
    /// A file or URL outside the paths the session may read or write
    /// (`--allow-path`).
    NotAllowed,
    /// The query was cancelled (Ctrl-C, a timeout, a closed client).
    Cancelled,
    /// Another writer changed the same table first; running the statement
    /// again is safe and usually succeeds.
    Conflict,
    /// A bug in Pintail or a library under it, panics included.
    Internal,
}

impl ErrorKind {
    /// Whether the user can fix this by changing the query, the files or the
    /// options, as opposed to a bug to report.
    pub fn is_user_error(self) -> bool {
        !matches!(self, ErrorKind::Internal)
    }

    /// A short lower-case label, printed before the message.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::Plan | ErrorKind::Execution => "error",
            ErrorKind::InvalidOption => "invalid option",
            ErrorKind::Io => "io error",
            ErrorKind::Data => "data error",
            ErrorKind::OutOfMemory => "out of memory",
            ErrorKind::NotSupported => "not supported",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::NotAllowed => "not allowed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Internal => "internal error",
        }
    }
}

/// An error from Pintail: a kind, a message and maybe a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

/// Pintail's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint saying how to fix the problem.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A bad option: `name` is the option as the user wrote it.
    pub fn option(name: &str, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidOption, format!("'{name}': {message}"))
    }

    /// A plan error (unknown name, wrong type, misuse of a statement).
    pub fn plan(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Plan, message)
    }

    /// An I/O error about `path`.
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }

    /// A bug: `message` says what broke, `query` what was running.
    pub fn internal(message: impl Into<String>, query: Option<&str>) -> Self {
        let mut e = Self::new(ErrorKind::Internal, message);
        if let Some(q) = query {
            e.message = format!("{}\nquery: {}", e.message, q.trim());
        }
        e.with_hint("this is a bug in Pintail; please report it with the query above")
    }

    /// The same error with every `from` in its message written as `to`
    /// (an internal file name as the user wrote it, say).
    #[must_use]
    pub fn replace_in_message(mut self, from: &str, to: &str) -> Self {
        if !from.is_empty() {
            self.message = self.message.replace(from, to);
        }
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without label or hint.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint, if there is one.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.label(), self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        from_datafusion(e, None)
    }
}

impl From<ArrowError> for Error {
    fn from(e: ArrowError) -> Self {
        from_arrow(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e.to_string())
    }
}

/// Converts a DataFusion error; `context` is prepended to the message.
pub(crate) fn from_datafusion(e: DataFusionError, context: Option<String>) -> Error {
    let mut err = match e {
        DataFusionError::SQL(parser, _) => Error::new(ErrorKind::Syntax, clean_parser_message(&parser.to_string())),
        DataFusionError::Plan(m) => plan_message(m),
        DataFusionError::SchemaError(s, _) => from_schema(*s),
        DataFusionError::NotImplemented(m) => Error::new(ErrorKind::NotSupported, m),
        DataFusionError::Configuration(m) => Error::new(ErrorKind::InvalidOption, m),
        DataFusionError::ResourcesExhausted(m) => Error::new(ErrorKind::OutOfMemory, m),
        DataFusionError::Execution(m) => Error::new(ErrorKind::Execution, m),
        DataFusionError::ExecutionJoin(join) => {
            if join.is_cancelled() {
                Error::new(ErrorKind::Cancelled, "query cancelled")
            } else {
                Error::internal(format!("a query task failed: {join}"), None)
            }
        }
        DataFusionError::ArrowError(a, _) => from_arrow(*a),
        #[cfg(feature = "native")]
        DataFusionError::ParquetError(p) => from_parquet(*p),
        DataFusionError::ObjectStore(o) => from_object_store(*o),
        DataFusionError::IoError(io) => Error::io(io.to_string()),
        DataFusionError::Internal(m) => Error::internal(m, None),
        // which optimizer rule met a bad constant says nothing to the user
        // nor does the analyzer step that applies Pintail's rewrites
        DataFusionError::Context(ctx, inner) if ctx.starts_with("Optimizer rule ") || ctx == "apply_function_rewrites" => {
            from_datafusion(*inner, None)
        }
        DataFusionError::Context(ctx, inner) => {
            let inner = from_datafusion(*inner, None);
            let message = format!("{ctx}: {}", inner.message);
            Error { message, ..inner }
        }
        DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
            Ok(owned) => from_datafusion(owned, None),
            Err(shared) => shared_message(&shared),
        },
        DataFusionError::Diagnostic(_, inner) => from_datafusion(*inner, None),
        DataFusionError::Collection(mut errs) => {
            if errs.is_empty() {
                Error::internal("empty error collection", None)
            } else {
                from_datafusion(errs.remove(0), None)
            }
        }
        DataFusionError::External(ext) => from_external(ext),
        other => Error::new(ErrorKind::Execution, other.strip_backtrace()),
    };
    if let Some(ctx) = context {
        err.message = format!("{ctx}: {}", err.message);
    }
    err
}

fn shared_message(e: &DataFusionError) -> Error {
    // a shared error (one error reported to several consumers) can't be
    // taken apart; keep its text and best-guess the kind from the root
    let kind = match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => ErrorKind::OutOfMemory,
        DataFusionError::ArrowError(..) => ErrorKind::Data,
        #[cfg(feature = "native")]
        DataFusionError::ParquetError(_) => ErrorKind::Data,
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => ErrorKind::Io,
        DataFusionError::Internal(_) => ErrorKind::Internal,
        _ => ErrorKind::Execution,
    };
    Error::new(kind, e.find_root().strip_backtrace())
}

fn from_external(ext: Box<dyn std::error::Error + Send + Sync>) -> Error {
    let ext = match ext.downcast::<Error>() {
        Ok(ours) => return *ours,
        Err(ext) => ext,
    };
    let ext = match ext.downcast::<DataFusionError>() {
        Ok(df) => return from_datafusion(*df, None),
        Err(ext) => ext,
    };
    let ext = match ext.downcast::<ArrowError>() {
        Ok(a) => return from_arrow(*a),
        Err(ext) => ext,
    };
    let ext = match ext.downcast::<object_store::Error>() {
        Ok(o) => return from_object_store(*o),
        Err(ext) => ext,
    };
    #[cfg(feature = "native")]
    let ext = match ext.downcast::<ParquetError>() {
        Ok(p) => return from_parquet(*p),
        Err(ext) => ext,
    };
    match ext.downcast::<std::io::Error>() {
        Ok(io) => Error::io(io.to_string()),
        Err(ext) => Error::new(ErrorKind::Execution, ext.to_string()),
    }
}

fn from_arrow(e: ArrowError) -> Error {
    match e {
        ArrowError::ExternalError(ext) => from_external(ext),
        ArrowError::IoError(m, _) => Error::io(m),
        ArrowError::ParseError(m) | ArrowError::CsvError(m) | ArrowError::JsonError(m) => {
            Error::new(ErrorKind::Data, m)
        }
        ArrowError::CastError(m) | ArrowError::ComputeError(m) | ArrowError::InvalidArgumentError(m) => {
            Error::new(ErrorKind::Execution, m)
        }
        ArrowError::DivideByZero => Error::new(ErrorKind::Execution, "division by zero"),
        ArrowError::MemoryError(m) => Error::new(ErrorKind::OutOfMemory, m),
        other => Error::new(ErrorKind::Data, other.to_string()),
    }
}

#[cfg(feature = "native")]
fn from_parquet(e: ParquetError) -> Error {
    match e {
        ParquetError::External(ext) => from_external(ext),
        other => {
            let text = other.to_string();
            // a file listed when the query was planned and gone when it was read
            if let Some(rest) = text.split("Object at location ").nth(1)
                && let Some((path, _)) = rest.split_once(" not found")
            {
                return Error::io(format!("file '{path}' is missing")).with_hint(
                    "it was deleted while the query ran, or a table's log names a file that is gone",
                );
            }
            Error::new(ErrorKind::Data, format!("parquet: {other}"))
                .with_hint("the file may be corrupt or not Parquet; check it with another reader")
        }
    }
}

fn from_object_store(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { path, .. } => {
            Error::io(format!("no such file or object '{path}'"))
        }
        // an allowed-paths refusal carries its own error
        object_store::Error::PermissionDenied { source, path } if source.is::<Error>() => match source.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(_) => Error::io(format!("access denied to '{path}'")),
        },
        object_store::Error::PermissionDenied { path, .. } | object_store::Error::Unauthenticated { path, .. } => {
            Error::io(format!("access denied to '{path}'"))
                .with_hint("check the credentials in the environment or the query's options")
        }
        other => Error::io(other.to_string()),
    }
}

fn from_schema(e: SchemaError) -> Error {
    match e {
        SchemaError::FieldNotFound { field, valid_fields } => {
            let mut names: Vec<String> = valid_fields.iter().map(|c| c.name.clone()).collect();
            names.dedup();
            let wanted = field.name.clone();
            let mut err = Error::plan(format!("column '{}' not found", field.flat_name()));
            if let Some(close) = closest(&wanted, &names) {
                err = err.with_hint(format!("did you mean '{close}'?"));
            } else if !names.is_empty() {
                let mut shown: Vec<_> = names.iter().take(12).cloned().collect();
                if names.len() > 12 {
                    shown.push("...".into());
                }
                err = err.with_hint(format!("available columns: {}", shown.join(", ")));
            }
            err
        }
        other => Error::plan(other.to_string()),
    }
}

/// DataFusion's plan messages, with the table-not-found case made friendlier.
fn plan_message(m: String) -> Error {
    if let Some(rest) = m.strip_prefix("table '")
        && let Some(name) = rest.strip_suffix("' not found")
    {
        let short = name.rsplit('.').next().unwrap_or(name);
        return Error::plan(format!("table '{short}' not found")).with_hint(
            "list tables with SHOW TABLES; to read a file, quote its path: FROM 'data.csv'",
        );
    }
    Error::plan(m)
}

fn clean_parser_message(m: &str) -> String {
    m.strip_prefix("sql parser error: ").unwrap_or(m).to_string()
}

/// The candidate within a small edit distance of `wanted`, if any.
pub(crate) fn closest<'a>(wanted: &str, candidates: &'a [String]) -> Option<&'a str> {
    let wanted_l = wanted.to_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&wanted_l, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_label_and_hint() {
        let e = Error::plan("column 'x' not found").with_hint("did you mean 'y'?");
        assert_eq!(e.to_string(), "error: column 'x' not found\nhint: did you mean 'y'?");
        assert!(e.kind().is_user_error());
        assert!(!Error::internal("boom", Some("SELECT 1")).kind().is_user_error());
    }

    #[test]
    fn closest_name() {
        let names = vec!["horsepower".to_string(), "name".to_string()];
        assert_eq!(closest("horsepowr", &names), Some("horsepower"));
        assert_eq!(closest("zzz", &names), None);
    }

    #[test]
    fn resources_exhausted_is_out_of_memory() {
        let e: Error = DataFusionError::ResourcesExhausted("x".into()).into();
        assert_eq!(e.kind(), ErrorKind::OutOfMemory);
    }
}
