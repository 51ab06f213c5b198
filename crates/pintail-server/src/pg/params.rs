//! Parameters of the extended query protocol as typed values.
//!
//! Each parameter is read as the type the client declared for it or, when
//! it declared none, the type Pintail's plan gives its placeholder; in text
//! format a value of any other type stays text, which Pintail casts to the
//! placeholder's type when it binds it. Nothing is spliced into SQL.


use arrow::datatypes::{DataType, IntervalMonthDayNano};
use pgwire::api::Type;
use postgres_types::Kind;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;
use pintail_core::datafusion::common::ScalarValue;

use super::Prepared;
use super::errors::user;

/// The values of `portal`'s parameters.
pub(crate) fn values(portal: &Portal<Prepared>) -> PgWireResult<Vec<ScalarValue>> {
    let prepared = &portal.statement.statement;
    (0..portal.parameter_len())
        .map(|i| {
            let declared = portal.statement.parameter_types.get(i).cloned().flatten().filter(|t| *t != Type::UNKNOWN);
            let ty = declared.or_else(|| prepared.param_types.get(i).cloned()).unwrap_or(Type::UNKNOWN);
            value(portal, i, &ty)
        })
        .collect()
}

fn value(portal: &Portal<Prepared>, i: usize, ty: &Type) -> PgWireResult<ScalarValue> {
    macro_rules! read {
        ($t:ty) => {
            portal.parameter::<$t>(i, ty)?
        };
    }
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(read!(bool)),
        Type::INT2 => ScalarValue::Int16(read!(i16)),
        Type::INT4 => ScalarValue::Int32(read!(i32)),
        Type::INT8 => ScalarValue::Int64(read!(i64)),
        Type::FLOAT4 => ScalarValue::Float32(read!(f32)),
        Type::FLOAT8 => ScalarValue::Float64(read!(f64)),
        Type::BYTEA => ScalarValue::Binary(read!(Vec<u8>)),
        Type::DATE => ScalarValue::Date32(read!(chrono::NaiveDate).map(|d| {
            let days = d.signed_duration_since(chrono::NaiveDate::default()).num_days();
            i32::try_from(days).unwrap_or(i32::MAX)
        })),
        Type::TIMESTAMP => {
            ScalarValue::TimestampMicrosecond(read!(chrono::NaiveDateTime).map(|t| t.and_utc().timestamp_micros()), None)
        }
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            read!(chrono::DateTime<chrono::FixedOffset>).map(|t| t.timestamp_micros()),
            Some("+00:00".into()),
        ),
        Type::NUMERIC => match read!(rust_decimal::Decimal) {
            None => ScalarValue::Decimal128(None, 38, 10),
            Some(d) => {
                let scale = i8::try_from(d.scale()).unwrap_or(0);
                ScalarValue::Decimal128(Some(d.mantissa()), 38, scale)
            }
        },
        Type::JSON | Type::JSONB => ScalarValue::Utf8(read!(serde_json::Value).map(|v| v.to_string())),
        Type::INTERVAL if portal.parameter_format.is_binary(i) => interval(raw(portal, i)?, i)?,
        _ if !portal.parameter_format.is_binary(i) && matches!(ty.kind(), Kind::Array(_)) => {
            let Kind::Array(element) = ty.kind() else { unreachable!("matched above") };
            match text(raw(portal, i)?, i)? {
                None => ScalarValue::Null,
                Some(literal) => array(&literal, element, i)?,
            }
        }
        // text, and every type read as text: Pintail casts it to the
        // placeholder's type
        _ if portal.parameter_format.is_binary(i) && !matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME) => {
            return Err(user(
                "0A000",
                format!("parameter ${} of type {} in binary format is not supported; send it as text", i + 1, ty.name()),
            ));
        }
        _ => ScalarValue::Utf8(read!(String)),
    })
}

/// The bytes of parameter `i` as sent (`None`: NULL).
fn raw(portal: &Portal<Prepared>, i: usize) -> PgWireResult<Option<&[u8]>> {
    portal.parameters.get(i).map(|p| p.as_deref()).ok_or_else(|| user("08P01", format!("there is no parameter ${}", i + 1)))
}

/// Parameter `i`, sent as text.
fn text(bytes: Option<&[u8]>, i: usize) -> PgWireResult<Option<String>> {
    bytes
        .map(|b| String::from_utf8(b.to_vec()).map_err(|_| user("22021", format!("parameter ${} is not valid UTF-8", i + 1))))
        .transpose()
}

/// An `interval` in Postgres' binary format: microseconds, days, months.
fn interval(bytes: Option<&[u8]>, i: usize) -> PgWireResult<ScalarValue> {
    let Some(bytes) = bytes else { return Ok(ScalarValue::IntervalMonthDayNano(None)) };
    let malformed = || user("22P03", format!("parameter ${} is not an interval in binary format (16 bytes)", i + 1));
    let (micros, rest) = bytes.split_first_chunk::<8>().ok_or_else(malformed)?;
    let (days, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
    let months: &[u8; 4] = rest.try_into().map_err(|_| malformed())?;
    let nanos = i64::from_be_bytes(*micros).checked_mul(1000).ok_or_else(malformed)?;
    Ok(ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(i32::from_be_bytes(*months), i32::from_be_bytes(*days), nanos))))
}

/// A one-dimensional Postgres array literal (`{1,2,NULL}`, `{"a b","c\"d"}`)
/// of `element`s: a list of them, each element read as text and cast to
/// the element's type (as Pintail reads any list literal:
/// [`pintail_core::lists`]).
fn array(literal: &str, element: &Type, i: usize) -> PgWireResult<ScalarValue> {
    let opening: String = literal.chars().filter(|c| !c.is_whitespace()).take(2).collect();
    if opening == "{{" {
        return Err(user("0A000", format!("parameter ${}: arrays of more than one dimension are not supported", i + 1)));
    }
    if !opening.starts_with('{') {
        return Err(user("22P02", format!("parameter ${} is not an array literal {{a,b,...}}: {literal}", i + 1)));
    }
    let target = match *element {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::DATE => DataType::Date32,
        _ => DataType::Utf8,
    };
    let list = pintail_core::lists::from_texts(&[Some(literal)], &DataType::new_list(target, true), false)
        .and_then(|list| ScalarValue::try_from_array(&list, 0))
        .map_err(|e| user("22P02", format!("parameter ${}: {}", i + 1, pintail_core::Error::from(e).message())))?;
    Ok(list)
}

/// The Postgres type a placeholder of `ty` is described with.
pub(crate) fn pg_type(ty: Option<&DataType>) -> Type {
    ty.and_then(|t| arrow_pg::datatypes::into_pg_type(t).ok()).unwrap_or(Type::UNKNOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{Array as _, StringArray};

    fn strings(literal: &str) -> Vec<Option<String>> {
        let ScalarValue::List(list) = array(literal, &Type::TEXT, 0).expect(literal) else { panic!("not a list") };
        let values = list.value(0);
        let values = values.as_any().downcast_ref::<StringArray>().expect("strings");
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn array_literals_are_read_as_postgres_writes_them() {
        let some = |v: &str| Some(v.to_owned());
        assert_eq!(strings("{}"), Vec::<Option<String>>::new());
        assert_eq!(strings("{a,b}"), vec![some("a"), some("b")]);
        assert_eq!(strings(r#"{"a b", "say \"hi\"",NULL,"NULL","back\\slash",""}"#), vec![
            some("a b"),
            some("say \"hi\""),
            None,
            some("NULL"),
            some("back\\slash"),
            some(""),
        ]);
        let ScalarValue::List(ints) = array("{1, -2,NULL}", &Type::INT8, 0).unwrap_or(ScalarValue::Null) else { panic!("not a list") };
        assert_eq!(ints.value(0).data_type(), &DataType::Int64);
        assert_eq!(ints.value(0).null_count(), 1);
    }

    #[test]
    fn malformed_array_literals_are_refused() {
        for bad in ["1,2", "{1,,2}", "{1,}", r#"{"open}"#, "{{1,2},{3,4}}", "{1 2}", "{x}"] {
            let element = if matches!(bad, "{x}" | "{1 2}") { Type::INT4 } else { Type::TEXT };
            assert!(array(bad, &element, 0).is_err(), "{bad} was read");
        }
    }
}
