//! Pintail's errors as Postgres errors: a SQLSTATE code chosen from the
//! error's kind (and, for planning errors, what was not found), with
//! Pintail's message and hint.

use pgwire::error::{ErrorInfo, PgWireError};
use pintail_core::{Error, ErrorKind};

/// The SQLSTATE code for `e`.
pub(crate) fn sqlstate(e: &Error) -> &'static str {
    let message = e.message().to_ascii_lowercase();
    let missing = message.contains("not found") || message.contains("does not exist") || message.contains("no table");
    match e.kind() {
        ErrorKind::Syntax => "42601",
        // invalid_cursor_name, duplicate_cursor, no_active_sql_transaction
        ErrorKind::Plan if missing && message.starts_with("cursor") => "34000",
        ErrorKind::Plan if message.starts_with("cursor") && message.contains("already exists") => "42P03",
        ErrorKind::Plan if message.contains("can only be used in transaction blocks") => "25P01",
        ErrorKind::Plan if missing && message.contains("column") => "42703",
        ErrorKind::Plan if missing && (message.contains("table") || message.contains("view")) => "42P01",
        ErrorKind::Plan if missing && message.contains("schema") => "3F000",
        ErrorKind::Plan if message.contains("function") => "42883",
        ErrorKind::Plan => "42000",
        ErrorKind::InvalidOption => "22023",
        ErrorKind::Io => "58030",
        ErrorKind::Execution if message.contains("divide by zero") || message.contains("division by zero") => "22012",
        ErrorKind::Execution if message.contains("cannot cast") => "22P02",
        ErrorKind::Data | ErrorKind::Execution => "22000",
        ErrorKind::OutOfMemory => "53200",
        ErrorKind::NotSupported => "0A000",
        // read_only_sql_transaction
        ErrorKind::ReadOnly => "25006",
        // insufficient_privilege
        ErrorKind::NotAllowed => "42501",
        // admin_shutdown: the server stopped it on its way down
        ErrorKind::Cancelled if e.message() == crate::shutdown::TERMINATED => "57P01",
        ErrorKind::Cancelled => "57014",
        ErrorKind::Conflict => "40001",
        ErrorKind::Internal => "XX000",
    }
}

/// `e` as the error a Postgres client reads; FATAL (the connection ends)
/// for a shutdown, as in Postgres.
pub(crate) fn info(e: &Error) -> ErrorInfo {
    let code = sqlstate(e);
    let severity = if code == "57P01" { "FATAL" } else { "ERROR" };
    let mut info = ErrorInfo::new(severity.to_owned(), code.to_owned(), e.message().to_owned());
    info.hint = e.hint().map(str::to_owned);
    info
}

/// `e` as a pgwire error.
pub(crate) fn to_pg(e: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(info(e)))
}

/// An error of the protocol's own (a message Pintail cannot take), with its
/// SQLSTATE code.
pub(crate) fn user(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".to_owned(), code.to_owned(), message.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_kind_and_what_was_missing() {
        let code = |kind, msg: &str| sqlstate(&Error::new(kind, msg));
        assert_eq!(code(ErrorKind::Syntax, "expected an expression"), "42601");
        assert_eq!(code(ErrorKind::Plan, "table 'nope' not found"), "42P01");
        assert_eq!(code(ErrorKind::Plan, "column 'x' not found in t"), "42703");
        assert_eq!(code(ErrorKind::Plan, "unknown function 'f'"), "42883");
        assert_eq!(code(ErrorKind::Execution, "Arrow error: Divide by zero error"), "22012");
        assert_eq!(code(ErrorKind::Execution, "Cannot cast string 'abc' to value of Int32 type"), "22P02");
        assert_eq!(code(ErrorKind::Conflict, "another writer"), "40001");
        assert_eq!(code(ErrorKind::Plan, "cursor \"c\" does not exist"), "34000");
        assert_eq!(code(ErrorKind::Plan, "cursor \"c\" already exists"), "42P03");
        assert_eq!(code(ErrorKind::Internal, "bug"), "XX000");
        assert_eq!(code(ErrorKind::NotAllowed, "'/etc/passwd' is outside the allowed paths"), "42501");
        assert_eq!(code(ErrorKind::Cancelled, "canceling statement due to user request"), "57014");
        let shutdown = Error::new(ErrorKind::Cancelled, crate::shutdown::TERMINATED);
        assert_eq!((info(&shutdown).severity.as_str(), info(&shutdown).code.as_str()), ("FATAL", "57P01"));
    }
}
