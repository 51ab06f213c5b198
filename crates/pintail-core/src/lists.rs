//! Text read as a list, as Postgres and DuckDB read it.
//!
//! DataFusion casts a string to a list by wrapping it: `'{a,b}'::VARCHAR[]`
//! was the one-element list `['{a,b}']`, a silent wrong answer. Pintail
//! parses the text instead, in both spellings a client sends: Postgres'
//! array literal `{a,"b c",NULL}` (what psycopg and every Postgres driver
//! send for a list parameter) and DuckDB's `[1, 2, NULL]` (where `'` quotes
//! too). Elements are cast to the list's element type, each level of a
//! nested list parsed in turn (`'[[1,2],[3]]'::INT[][]`). `CAST` refuses
//! text that is no list literal, or an element that does not convert;
//! `TRY_CAST` gives NULL for it.
//!
//! The cast is rewritten before type coercion ([`TextToList`]): a constant
//! (a literal, or a bound parameter) becomes a list literal; a column is
//! parsed row by row by [`ListFromText`].
//!
//! A placeholder compared with `= ANY($1)` (or `<`, `<>`, ... `ANY`/`ALL`)
//! is typed as a list of what it is compared with
//! ([`infer_list_placeholders`]), so a client that sends a list parameter
//! without a type (psycopg's `list[str]`) binds a list, not a string.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray as _, GenericListArray, OffsetSizeTrait, StringArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode as _};
use datafusion::common::{DFSchema, ScalarValue, exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{BinaryExpr, Cast, Placeholder, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable as _, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The elements of a one-level list literal, `{a,"b c",NULL}` or
/// `[1, 'x', NULL]`, as text (`None`: NULL). An element that is itself a
/// list (`{1,2}` inside `{...}`, `[1,2]` inside `[...]`) is returned as its
/// text, brackets and all, for the next level to parse.
pub fn parse(literal: &str) -> std::result::Result<Vec<Option<String>>, String> {
    let text = literal.trim();
    let (open, close, quotes): (char, char, &[char]) = match text.chars().next() {
        Some('{') => ('{', '}', &['"']),
        Some('[') => ('[', ']', &['"', '\'']),
        _ => return Err("a list is written {a,b,...} or [a, b, ...]".into()),
    };
    let inner = text[1..].strip_suffix(close).ok_or_else(|| format!("it does not end with '{close}'"))?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    if inner.trim().is_empty() {
        return Ok(items);
    }
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let item = if let Some(quote) = chars.next_if(|c| quotes.contains(c)) {
            let mut item = String::new();
            loop {
                match chars.next() {
                    Some('\\') => item.push(chars.next().ok_or("it ends in an escape")?),
                    Some(c) if c == quote => break,
                    Some(c) => item.push(c),
                    None => return Err("a quote is not closed".into()),
                }
            }
            Some(item)
        } else {
            let mut item = String::new();
            let mut depth = 0usize;
            while let Some(c) = chars.next_if(|c| depth > 0 || *c != ',') {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth = depth.checked_sub(1).ok_or_else(|| format!("an unmatched '{close}'"))?;
                }
                item.push(c);
            }
            if depth > 0 {
                return Err(format!("an unmatched '{open}'"));
            }
            let item = item.trim_end().to_owned();
            if item.is_empty() {
                return Err("an element is empty".into());
            }
            (!item.eq_ignore_ascii_case("NULL")).then_some(item)
        };
        items.push(item);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => return Ok(items),
            Some(',') => {}
            Some(c) => return Err(format!("'{c}' where a comma should separate elements")),
        }
    }
}

/// `texts` (one list literal each, NULL for a NULL list) as lists of
/// `to`'s elements (`to` is a `List` or `LargeList`). With `safe`, a text
/// that does not parse is a NULL list and an element that does not convert
/// a NULL element; otherwise either is an error naming it.
pub fn from_texts(texts: &[Option<&str>], to: &DataType, safe: bool) -> Result<ArrayRef> {
    match to {
        DataType::List(element) => build::<i32>(texts, element, safe),
        DataType::LargeList(element) => build::<i64>(texts, element, safe),
        _ => exec_err!("text is read as a list only for List or LargeList, not {to}"),
    }
}

fn build<O: OffsetSizeTrait>(texts: &[Option<&str>], element: &FieldRef, safe: bool) -> Result<ArrayRef> {
    let mut items: Vec<Option<String>> = Vec::new();
    let mut lengths = Vec::with_capacity(texts.len());
    let mut valid = Vec::with_capacity(texts.len());
    for text in texts {
        let parsed = text.map(parse).transpose();
        let parsed = match parsed {
            Ok(p) => p,
            Err(_) if safe => None,
            Err(why) => {
                let text = text.unwrap_or_default();
                return Err(bad(format!("cannot read '{text}' as a list of {}: {why}", element.data_type())));
            }
        };
        valid.push(parsed.is_some());
        let parsed = parsed.unwrap_or_default();
        lengths.push(parsed.len());
        items.extend(parsed);
    }
    let strings: Vec<Option<&str>> = items.iter().map(Option::as_deref).collect();
    let values = elements(&strings, element.data_type(), safe)?;
    let nulls = valid.contains(&false).then(|| NullBuffer::from(valid));
    Ok(Arc::new(GenericListArray::<O>::try_new(
        Arc::clone(element),
        OffsetBuffer::<O>::from_lengths(lengths),
        values,
        nulls,
    )?))
}

/// Each element's text as `to`: nested lists parsed, anything else cast.
fn elements(texts: &[Option<&str>], to: &DataType, safe: bool) -> Result<ArrayRef> {
    if matches!(to, DataType::List(_) | DataType::LargeList(_)) {
        return from_texts(texts, to, safe);
    }
    let strings: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
    let options = CastOptions { safe, ..Default::default() };
    cast_with_options(&strings, to, &options).map_err(|e| bad(format!("cannot read a list element as {to}: {e}")))
}

/// Text that is no list of the type asked for: bad data, as a failed
/// cast is.
fn bad(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(crate::Error::new(crate::ErrorKind::Data, message)))
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_list(t: &DataType) -> bool {
    matches!(t, DataType::List(_) | DataType::LargeList(_))
}

/// `CAST(text AS list)` and `TRY_CAST` as parsing; see the module docs.
#[derive(Debug)]
pub(crate) struct TextToList;

impl FunctionRewrite for TextToList {
    fn name(&self) -> &'static str {
        "pintail_text_to_list"
    }

    fn rewrite(&self, expr: Expr, schema: &DFSchema, _config: &ConfigOptions) -> Result<Transformed<Expr>> {
        let (inner, to, safe) = match &expr {
            Expr::Cast(Cast { expr, field }) => (expr, field.data_type(), false),
            Expr::TryCast(TryCast { expr, field }) => (expr, field.data_type(), true),
            _ => return Ok(Transformed::no(expr)),
        };
        if !is_list(to) || !inner.get_type(schema).is_ok_and(|t| is_text(&t)) {
            return Ok(Transformed::no(expr));
        }
        if let Expr::Literal(value, _) = inner.as_ref() {
            let text = match value {
                ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.as_deref(),
                _ => return Ok(Transformed::no(expr)),
            };
            let list = from_texts(&[text], to, safe)?;
            let value = match to {
                DataType::LargeList(_) => ScalarValue::LargeList(Arc::new(list.as_list::<i64>().clone())),
                _ => ScalarValue::List(Arc::new(list.as_list::<i32>().clone())),
            };
            return Ok(Transformed::yes(Expr::Literal(value, None)));
        }
        let udf = ScalarUDF::new_from_impl(ListFromText::new(to.clone(), safe));
        let (Expr::Cast(Cast { expr: inner, .. }) | Expr::TryCast(TryCast { expr: inner, .. })) = expr else {
            unreachable!("matched above")
        };
        Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), vec![*inner]))))
    }
}

/// Parses a column of list literals; made by [`TextToList`] only.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ListFromText {
    to: DataType,
    safe: bool,
    signature: Signature,
}

impl ListFromText {
    fn new(to: DataType, safe: bool) -> Self {
        let signature = Signature::uniform(1, vec![DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View], Volatility::Immutable);
        Self { to, safe, signature }
    }
}

impl ScalarUDFImpl for ListFromText {
    fn name(&self) -> &str {
        if self.safe { "try_cast_text_to_list" } else { "cast_text_to_list" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.to.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else { return plan_err!("{} takes one argument", self.name()) };
        let array = arg.to_array(args.number_rows)?;
        let texts: Vec<Option<&str>> = match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().iter().collect(),
            DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
            DataType::Utf8View => array.as_string_view().iter().collect(),
            other => return exec_err!("{} reads text, not {other}", self.name()),
        };
        let lists = from_texts(&texts, &self.to, self.safe)?;
        Ok(match arg {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&lists, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(lists),
        })
    }
}

/// `plan` with each untyped placeholder that stands for the list of an
/// `ANY`/`ALL` comparison typed as a list of what it is compared with.
pub(crate) fn infer_list_placeholders(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut found: HashMap<String, DataType> = HashMap::new();
    plan.apply_with_subqueries(|node| {
        let schema = merged_input_schema(node);
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Some((id, element)) = list_placeholder(e, &schema) {
                    let element = match element {
                        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                        other => other,
                    };
                    found.entry(id).or_insert(DataType::new_list(element, true));
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })
        })
    })?;
    if found.is_empty() {
        return Ok(plan);
    }
    let typed = plan
        .transform_up_with_subqueries(|node| {
            let node = node.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::Placeholder(Placeholder { id, field: None }) if found.contains_key(&id) => {
                        let field = Arc::new(Field::new("", found[&id].clone(), true));
                        Ok(Transformed::yes(Expr::Placeholder(Placeholder { id, field: Some(field) })))
                    }
                    other => Ok(Transformed::no(other)),
                })
            })?;
            // what the placeholder's type changes is typed again
            if node.transformed { node.map_data(LogicalPlan::recompute_schema) } else { Ok(node) }
        })?
        .data;
    Ok(typed)
}

fn merged_input_schema(node: &LogicalPlan) -> DFSchema {
    let mut schema = DFSchema::empty();
    for input in node.inputs() {
        schema.merge(input.schema());
    }
    schema
}

/// The placeholder and the element type, if `e` is `array_has($n, x)` or
/// `x op array_min($n)` (or `array_max`) with `$n` untyped.
fn list_placeholder(e: &Expr, schema: &DFSchema) -> Option<(String, DataType)> {
    let untyped = |f: &ScalarFunction| match f.args.first() {
        Some(Expr::Placeholder(Placeholder { id, field: None })) => Some(id.clone()),
        _ => None,
    };
    match e {
        Expr::ScalarFunction(f) if f.name() == "array_has" => {
            let id = untyped(f)?;
            Some((id, f.args.get(1)?.get_type(schema).ok()?))
        }
        Expr::BinaryExpr(BinaryExpr { left, right, .. }) => {
            let ((Expr::ScalarFunction(f), other) | (other, Expr::ScalarFunction(f))) = (left.as_ref(), right.as_ref()) else {
                return None;
            };
            if !matches!(f.name(), "array_min" | "array_max") {
                return None;
            }
            let id = untyped(f)?;
            if matches!(other, Expr::Placeholder(_)) {
                return None;
            }
            Some((id, other.get_type(schema).ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Int64Type;

    fn strings(literal: &str) -> Vec<Option<String>> {
        parse(literal).unwrap_or_else(|e| panic!("{literal}: {e}"))
    }

    #[test]
    fn postgres_and_duckdb_literals_are_read() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(strings("{1,2,NULL}"), vec![s("1"), s("2"), None]);
        assert_eq!(strings(r#"{"a b","c\"d",NULL,"NULL"," x "}"#), vec![s("a b"), s("c\"d"), None, s("NULL"), s(" x ")]);
        assert_eq!(strings("[1, 2, null]"), vec![s("1"), s("2"), None]);
        assert_eq!(strings("['x', \"b\",  c d ]"), vec![s("x"), s("b"), s("c d")]);
        assert_eq!(strings("[[1, 2], [3]]"), vec![s("[1, 2]"), s("[3]")]);
        assert_eq!(strings("{{1,2},{3}}"), vec![s("{1,2}"), s("{3}")]);
        assert!(strings("{}").is_empty());
        assert!(strings(" [ ] ").is_empty());
    }

    #[test]
    fn malformed_literals_are_refused() {
        for bad in ["1,2", "{1,2", "[1,2}", "{1,,2}", "{\"a}", "{a\\", "[[1,2]", "{1}}", "[1,]"] {
            assert!(parse(bad).is_err(), "{bad} was read as {:?}", parse(bad));
        }
    }

    #[test]
    fn elements_are_cast_strictly_unless_safe() {
        let to = DataType::new_list(DataType::Int64, true);
        let lists = from_texts(&[Some("{1, 2}"), None, Some("[3]")], &to, false).unwrap();
        let lists = lists.as_list::<i32>();
        assert_eq!(lists.len(), 3);
        assert!(lists.is_null(1));
        assert_eq!(lists.value(0).as_primitive::<Int64Type>().values(), &[1, 2]);
        assert!(from_texts(&[Some("{1,x}")], &to, false).is_err());
        assert!(from_texts(&[Some("nope")], &to, false).is_err());
        let safe = from_texts(&[Some("{1,x}"), Some("nope")], &to, true).unwrap();
        let safe = safe.as_list::<i32>();
        assert!(safe.value(0).is_null(1) && safe.is_null(1));
    }
}
