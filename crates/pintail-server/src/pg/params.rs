//! Parameters of the extended query protocol as typed values.
//!
//! Each parameter is read as the type the client declared for it or, when
//! it declared none, the type Pintail's plan gives its placeholder; in text
//! format a value of any other type stays text, which Pintail casts to the
//! placeholder's type when it binds it. Nothing is spliced into SQL.

use arrow::datatypes::DataType;
use pgwire::api::Type;
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

/// The Postgres type a placeholder of `ty` is described with.
pub(crate) fn pg_type(ty: Option<&DataType>) -> Type {
    ty.and_then(|t| arrow_pg::datatypes::into_pg_type(t).ok()).unwrap_or(Type::UNKNOWN)
}
