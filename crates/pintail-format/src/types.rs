//! SQL names for Arrow types, as DuckDB users know them.
//!
//! Two spellings are offered: [`sql_type_name`] (`BIGINT`, `VARCHAR`,
//! `DECIMAL(15,2)`, `INTEGER[]`) for `DESCRIBE` and `SUMMARIZE`, and
//! [`short_type_name`] (`int64`, `varchar`, `decimal(15,2)`) for the line of
//! types under a boxed table's header. Neither parses types: turning SQL type
//! text into Arrow types is DataFusion's job.

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};

/// The SQL spelling of an Arrow type, in upper case (`BIGINT`, `VARCHAR`).
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 => "HALFFLOAT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(unit, tz) => {
            let base = match unit {
                TimeUnit::Second => "TIMESTAMP_S",
                TimeUnit::Millisecond => "TIMESTAMP_MS",
                TimeUnit::Microsecond => "TIMESTAMP",
                TimeUnit::Nanosecond => "TIMESTAMP_NS",
            };
            if tz.is_some() {
                format!("{base} WITH TIME ZONE")
            } else {
                base.into()
            }
        }
        DataType::Duration(_) | DataType::Interval(_) => "INTERVAL".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => format!("{}[]", sql_type_name(f.data_type())),
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", sql_type_name(f.data_type())),
        DataType::Struct(fields) => format!("STRUCT({})", struct_fields(fields.iter(), sql_type_name)),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP({}, {})",
                sql_type_name(kv[0].data_type()),
                sql_type_name(kv[1].data_type())
            ),
            other => format!("MAP({})", sql_type_name(other)),
        },
        DataType::Dictionary(_, value) => sql_type_name(value),
        DataType::RunEndEncoded(_, values) => sql_type_name(values.data_type()),
        DataType::Union(..) => "UNION".into(),
    }
}

/// The short lower-case spelling used under a boxed table's header
/// (`int64`, `varchar`, `double`, `timestamptz`).
pub fn short_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "null".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "float16".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "blob".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Duration(_) => "duration".into(),
        DataType::Interval(IntervalUnit::YearMonth | IntervalUnit::DayTime | IntervalUnit::MonthDayNano) => {
            "interval".into()
        }
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => format!("{}[]", short_type_name(f.data_type())),
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", short_type_name(f.data_type())),
        DataType::Struct(fields) => format!("struct({})", struct_fields(fields.iter(), short_type_name)),
        DataType::Map(..) => "map".into(),
        DataType::Dictionary(_, value) => short_type_name(value),
        DataType::RunEndEncoded(_, values) => short_type_name(values.data_type()),
        DataType::Union(..) => "union".into(),
    }
}

fn struct_fields<'a>(
    fields: impl Iterator<Item = &'a std::sync::Arc<Field>>,
    name: fn(&DataType) -> String,
) -> String {
    fields
        .map(|f| format!("{} {}", f.name(), name(f.data_type())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether values of this type are numbers, which tables align to the right.
pub fn is_numeric(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_numeric(value),
        other => other.is_numeric(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Fields;
    use std::sync::Arc;

    #[test]
    fn names_match_duckdb_spelling() {
        assert_eq!(sql_type_name(&DataType::Int64), "BIGINT");
        assert_eq!(sql_type_name(&DataType::Utf8View), "VARCHAR");
        assert_eq!(sql_type_name(&DataType::Decimal128(15, 2)), "DECIMAL(15,2)");
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        assert_eq!(sql_type_name(&list), "INTEGER[]");
        let st = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        assert_eq!(sql_type_name(&st), "STRUCT(a INTEGER, b VARCHAR)");
        assert_eq!(
            short_type_name(&DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
            "timestamptz"
        );
    }
}
