//! What a statement runs with besides its text: `?` and `$1` placeholders
//! bound to typed values, and tables for names the session has no table of
//! (a front end's replacement scans: Python's data frames by variable name).
//!
//! A statement with placeholders is planned as written, with each
//! placeholder left as a typed hole in the logical plan; the values are put
//! into the plan's expressions as literals ([`LogicalPlan::with_param_values`]),
//! never spliced into the SQL text, so a value can hold any characters. A
//! value is cast to the type the planner inferred for its placeholder
//! (`WHERE id = $1` on a `BIGINT` column, an `INSERT` into a `DATE` column),
//! and a value that does not convert is refused with the parameter named.
//!
//! `?` placeholders are numbered in the order they are written (`$1`, `$2`,
//! ...), as in the DB-API's `qmark` style; one statement cannot mix them
//! with `$n`.
//!
//! A bound table is read where the statement names a table that the
//! session does not have: a table of the session always wins, as in
//! DuckDB. Values and tables are handed to the planning of the one
//! statement through a task-local, so statements of other tasks never see
//! them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, ErrorKind, Result};
use crate::statement::{Statement, split_statements};

tokio::task_local! {
    static BOUND: Arc<Binding>;
}

/// What one statement is run with: values for its placeholders, and
/// tables for names that are no table of the session.
#[derive(Clone, Default)]
pub struct Bindings {
    /// The values of `$1`, `$2`, ... (or of the `?`s, in order).
    pub params: Vec<ScalarValue>,
    /// Tables by the name a statement reads them by.
    pub tables: Vec<(String, Arc<dyn TableProvider>)>,
}

impl std::fmt::Debug for Bindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bindings")
            .field("params", &self.params)
            .field("tables", &self.tables.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish()
    }
}

impl Bindings {
    /// Values for the placeholders, and no tables.
    pub fn params(params: Vec<ScalarValue>) -> Self {
        Self {
            params,
            tables: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.params.is_empty() && self.tables.is_empty()
    }
}

/// A statement's bindings while it is planned.
pub(crate) struct Binding {
    bindings: Bindings,
    /// Whether a plan took the values (a statement that Pintail runs
    /// without DataFusion's planner, like `ATTACH`, cannot).
    used: AtomicBool,
}

/// `statement` with its `?` placeholders numbered (`$1`, `$2`, ...) and
/// the number of parameters it takes (the highest `$n`).
pub(crate) fn numbered(statement: &Statement) -> Result<(Statement, usize)> {
    let mut qmarks = Vec::new();
    let mut numbers = BTreeSet::new();
    for (i, t) in statement.tokens().iter().enumerate() {
        let Token::Placeholder(p) = &t.token else { continue };
        let (sigil, digits) = p.split_at(1);
        if sigil == "?" && digits.is_empty() {
            qmarks.push(i);
            continue;
        }
        match digits.parse::<usize>() {
            Ok(n) if n > 0 => {
                numbers.insert(n);
            }
            _ => {
                return Err(Error::new(ErrorKind::Plan, format!("'{p}' is not a parameter Pintail can bind"))
                    .with_hint("number parameters $1, $2, ... or write each as ?"));
            }
        }
    }
    if !qmarks.is_empty() && !numbers.is_empty() {
        return Err(Error::new(ErrorKind::Plan, "a statement cannot mix ? and $n parameters")
            .with_hint("write them all as ? (numbered in order) or all as $1, $2, ..."));
    }
    if qmarks.is_empty() {
        let count = numbers.last().copied().unwrap_or(0);
        if let Some(missing) = (1..=count).find(|n| !numbers.contains(n)) {
            return Err(Error::new(ErrorKind::Plan, format!("parameter ${missing} is not used, but ${count} is"))
                .with_hint("number the parameters $1, $2, ... without gaps"));
        }
        return Ok((statement.clone(), count));
    }
    let mut text = statement.text().to_string();
    // from the end, so the byte ranges of earlier ones stay valid
    for (n, &i) in qmarks.iter().enumerate().rev() {
        text.replace_range(statement.token_range(i, i), &format!("${}", n + 1));
    }
    let mut parts = split_statements(&text)?;
    match (parts.pop(), parts.is_empty()) {
        (Some(one), true) => Ok((one, qmarks.len())),
        _ => Err(Error::internal("numbering the ? parameters changed the statement", Some(statement.text()))),
    }
}

/// An error unless a statement of `count` parameters was given `given`
/// values.
pub(crate) fn check_count(count: usize, given: usize) -> Result<()> {
    if count == given {
        return Ok(());
    }
    let takes = if count == 1 { "parameter" } else { "parameters" };
    let were = if given == 1 { "value was" } else { "values were" };
    Err(Error::new(ErrorKind::Plan, format!("the statement takes {count} {takes}, but {given} {were} given")))
}

/// Runs `work` with `bindings` for the plans made in it; an error if there
/// are values and no plan took them.
pub(crate) async fn with_bindings<T>(bindings: Bindings, work: impl Future<Output = Result<T>>) -> Result<T> {
    if bindings.is_empty() {
        return work.await;
    }
    let binding = Arc::new(Binding {
        bindings,
        used: AtomicBool::new(false),
    });
    let out = BOUND.scope(Arc::clone(&binding), work).await?;
    if !binding.bindings.params.is_empty() && !binding.used.load(Ordering::Relaxed) {
        return Err(not_taken());
    }
    Ok(out)
}

/// The error for parameters given to a statement that cannot take them.
pub(crate) fn not_taken() -> Error {
    Error::new(ErrorKind::NotSupported, "this statement does not take parameters")
        .with_hint("parameters go in queries, INSERT, UPDATE, DELETE, MERGE, CREATE TABLE AS and COPY (SELECT ...)")
}

/// `plan` with the values of the running statement's parameters, if it
/// has any, in place of its placeholders.
pub(crate) fn bind(plan: LogicalPlan) -> Result<LogicalPlan> {
    let Ok(binding) = BOUND.try_with(Arc::clone) else { return Ok(plan) };
    if binding.bindings.params.is_empty() {
        return Ok(plan);
    }
    let fields = plan.get_parameter_fields()?;
    let mut values = binding.bindings.params.clone();
    for (n, value) in values.iter_mut().enumerate() {
        let id = format!("${}", n + 1);
        let Some(Some(field)) = fields.get(&id) else { continue };
        let to = field.data_type();
        if value.is_null() {
            *value = ScalarValue::try_from(to)?;
        } else if &value.data_type() != to {
            *value = cast(value, to).map_err(|e| {
                Error::new(
                    ErrorKind::Data,
                    format!("parameter {id}: cannot use {value} ({}) as {to}: {e}", value.data_type()),
                )
            })?;
        }
    }
    binding.used.store(true, Ordering::Relaxed);
    Ok(plan.with_param_values(ParamValues::List(values.into_iter().map(Into::into).collect()))?)
}

/// `value` as `to`; text is parsed for a list, as `CAST` does
/// ([`crate::lists`]).
fn cast(value: &ScalarValue, to: &DataType) -> datafusion::error::Result<ScalarValue> {
    match (value, to) {
        (ScalarValue::Utf8(Some(text)) | ScalarValue::LargeUtf8(Some(text)) | ScalarValue::Utf8View(Some(text)), DataType::List(_) | DataType::LargeList(_)) => {
            ScalarValue::try_from_array(&crate::lists::from_texts(&[Some(text)], to, false)?, 0)
        }
        _ => value.cast_to(to),
    }
}

/// The table bound to `name` for the running statement, if any.
pub(crate) fn table(name: &str) -> Option<Arc<dyn TableProvider>> {
    BOUND
        .try_with(|b| {
            let tables = &b.bindings.tables;
            // as written first; then, as SQL names go, in any case
            let found = tables.iter().find(|(n, _)| n == name).or_else(|| tables.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)));
            found.map(|(_, t)| Arc::clone(t))
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        split_statements(sql).unwrap().pop().unwrap()
    }

    #[test]
    fn question_marks_are_numbered_in_order() {
        let (s, n) = numbered(&one("SELECT ? AS a, '?' AS b, ?  -- ?\n")).unwrap();
        assert_eq!(s.text(), "SELECT $1 AS a, '?' AS b, $2");
        assert_eq!(n, 2);
    }

    #[test]
    fn dollar_numbers_count_to_the_highest() {
        let (s, n) = numbered(&one("SELECT $2, $1, $2")).unwrap();
        assert_eq!(s.text(), "SELECT $2, $1, $2");
        assert_eq!(n, 2);
        assert_eq!(numbered(&one("SELECT 1")).unwrap().1, 0);
    }

    #[test]
    fn mixed_gapped_or_named_parameters_are_refused() {
        assert!(numbered(&one("SELECT ?, $1")).unwrap_err().message().contains("mix"));
        assert!(numbered(&one("SELECT $2")).unwrap_err().message().contains("$1 is not used"));
        assert!(numbered(&one("SELECT $name")).unwrap_err().message().contains("'$name'"));
    }
}
