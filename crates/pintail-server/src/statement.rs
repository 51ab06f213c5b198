//! What every front end needs to know of a statement before it runs:
//! what it answers ([`Verb`]: rows, a count of changed rows, or only that
//! it ran) and, for a prepared statement, the types of its parameters and
//! its columns ([`describe`]).

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use pintail_core::datafusion::logical_expr::LogicalPlan;
use pintail_core::datafusion::sql::parser::Statement as DFStatement;
use pintail_core::datafusion::sql::sqlparser::keywords::Keyword;
use pintail_core::datafusion::sql::sqlparser::tokenizer::Token;
use pintail_core::{Error, Result, Session, Statement, StatementKind};

/// What a statement answers, by its first words.
pub(crate) enum Verb {
    /// Rows (a query, `SHOW`, `DESCRIBE`, `EXPLAIN`, ...).
    Rows,
    /// A count of changed rows under this command tag.
    Changed(&'static str),
    Begin,
    Commit,
    Rollback,
    /// Nothing but a command tag (`CREATE TABLE`, `SET`).
    Other(String),
}

impl Verb {
    pub(crate) fn of(statement: &Statement) -> Self {
        let words: Vec<&str> = statement
            .tokens()
            .iter()
            .filter_map(|t| match &t.token {
                Token::Word(w) if w.quote_style.is_none() => Some(w.value.as_str()),
                _ => None,
            })
            .take(2)
            .collect();
        let first = statement.tokens().first().map(|t| &t.token);
        let keyword = match first {
            Some(Token::Word(w)) => w.keyword,
            Some(Token::LParen) => return Self::Rows,
            _ => Keyword::NoKeyword,
        };
        match keyword {
            Keyword::INSERT => Self::Changed("INSERT"),
            Keyword::UPDATE => Self::Changed("UPDATE"),
            Keyword::DELETE => Self::Changed("DELETE"),
            Keyword::MERGE => Self::Changed("MERGE"),
            Keyword::BEGIN | Keyword::START => Self::Begin,
            Keyword::COMMIT | Keyword::END => Self::Commit,
            // ROLLBACK TO SAVEPOINT leaves the transaction open
            Keyword::ROLLBACK if statement.tokens().iter().any(|t| matches!(&t.token, Token::Word(w) if w.keyword == Keyword::TO)) => {
                Self::Other("ROLLBACK".to_owned())
            }
            Keyword::ROLLBACK | Keyword::ABORT => Self::Rollback,
            Keyword::CREATE | Keyword::DROP | Keyword::ALTER => {
                Self::Other(words.iter().map(|w| w.to_ascii_uppercase()).collect::<Vec<_>>().join(" "))
            }
            Keyword::SET
            | Keyword::RESET
            | Keyword::ATTACH
            | Keyword::DETACH
            | Keyword::USE
            | Keyword::COPY
            | Keyword::VACUUM
            | Keyword::OPTIMIZE
            | Keyword::SAVEPOINT
            | Keyword::RELEASE => Self::Other(words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default()),
            _ if statement.kind() == StatementKind::Set || statement.kind() == StatementKind::Reset => {
                Self::Other("SET".to_owned())
            }
            _ => Self::Rows,
        }
    }
}

/// What [`describe`] learns of a prepared statement.
pub(crate) struct Described {
    /// The type of each parameter (`$1` first), where the plan tells.
    pub(crate) params: Vec<Option<DataType>>,
    /// The columns of its rows (`None`: it returns no rows).
    pub(crate) schema: Option<SchemaRef>,
}

/// The parameter types and the columns of `statement`, which takes `count`
/// parameters numbered `$1`...: from its plan, for a statement DataFusion
/// plans (parsed by `parse`); `SHOW`, `DESCRIBE` and `SUMMARIZE`, which
/// take no parameters, are run once to learn their columns. Nothing is
/// run that changes anything.
pub(crate) async fn describe(
    session: &Session,
    statement: &Statement,
    count: usize,
    parse: impl FnOnce(&Session, &Statement) -> Result<DFStatement>,
) -> Result<Described> {
    let returns_rows = matches!(Verb::of(statement), Verb::Rows);
    if statement.kind() != StatementKind::Other {
        if !returns_rows || count > 0 {
            return Ok(Described { params: vec![None; count], schema: None });
        }
        let result = session.execute(statement).await?;
        let schema = result.schema();
        return Ok(Described { params: Vec::new(), schema: Some(schema).filter(|s| !s.fields().is_empty()) });
    }
    let plan = session.plan_statement(parse(session, statement)?).await?;
    let types = plan.get_parameter_types().map_err(Error::from)?;
    let params = (1..=count).map(|n| types.get(&format!("${n}")).cloned().flatten()).collect();
    let schema = returns_rows.then(|| output_schema(session, plan)).filter(|s| !s.fields().is_empty());
    Ok(Described { params, schema })
}

/// The columns `plan` gives when it runs: its schema once analyzed, as a
/// run analyzes it first (Pintail's function rewrites change types there:
/// a DECIMAL divided by a DECIMAL is a DOUBLE). A plan whose analysis
/// fails here (a placeholder whose type only its value will tell) is
/// described as it was planned.
pub(crate) fn output_schema(session: &Session, plan: LogicalPlan) -> SchemaRef {
    let state = session.context().state();
    let planned = Arc::clone(plan.schema().inner());
    match state.analyzer().execute_and_check(plan, state.config_options(), |_, _| {}) {
        Ok(analyzed) => Arc::clone(analyzed.schema().inner()),
        Err(_) => planned,
    }
}
