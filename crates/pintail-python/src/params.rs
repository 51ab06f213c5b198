//! Python values as typed query parameters.
//!
//! Each value becomes an Arrow scalar of the type a Python user expects
//! (`int` a `BIGINT`, `Decimal` a `DECIMAL` of its own precision, an aware
//! `datetime` a `TIMESTAMP WITH TIME ZONE`, ...); Pintail then casts it to
//! the type its placeholder takes. Nothing is turned into SQL text.

use std::sync::Arc;

use arrow::datatypes::{DataType, IntervalMonthDayNano};
use pintail_core::datafusion::common::ScalarValue;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDate, PyDateTime, PyDelta, PyDict, PyFloat, PyList, PyString, PyTime, PyTuple};

use crate::errors::{NotSupportedError, ProgrammingError};

/// The values of `params`: `None` or a sequence (list, tuple, ...) of them.
pub(crate) fn scalars(params: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<ScalarValue>> {
    let Some(params) = params.filter(|p| !p.is_none()) else { return Ok(Vec::new()) };
    if params.is_instance_of::<PyDict>() {
        return Err(NotSupportedError::new_err(
            "named parameters (a dict) are not supported\nhint: write the placeholders as ? or $1, $2, ... and pass a list",
        ));
    }
    if params.is_instance_of::<PyString>() || params.is_instance_of::<PyBytes>() {
        return Err(ProgrammingError::new_err(
            "parameters must be a list or tuple of values, not a single string\nhint: pass [value]",
        ));
    }
    let items = params.try_iter().map_err(|_| {
        ProgrammingError::new_err(format!(
            "parameters must be a list or tuple of values, not {}",
            type_name(params)
        ))
    })?;
    items
        .enumerate()
        .map(|(i, item)| scalar(&item?).map_err(|e| in_parameter(&e, i + 1)))
        .collect()
}

/// Names the parameter in a conversion error.
fn in_parameter(e: &PyErr, n: usize) -> PyErr {
    Python::attach(|py| {
        let message = e.value(py).to_string();
        if e.is_instance_of::<NotSupportedError>(py) {
            NotSupportedError::new_err(format!("parameter ${n}: {message}"))
        } else {
            ProgrammingError::new_err(format!("parameter ${n}: {message}"))
        }
    })
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// One Python value as an Arrow scalar.
fn scalar(value: &Bound<'_, PyAny>) -> PyResult<ScalarValue> {
    let py = value.py();
    if value.is_none() {
        return Ok(ScalarValue::Null);
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(ScalarValue::Boolean(Some(value.extract()?)));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(ScalarValue::Float64(Some(value.extract()?)));
    }
    if let Ok(i) = value.extract::<i64>() {
        return Ok(ScalarValue::Int64(Some(i)));
    }
    if let Ok(u) = value.extract::<u64>() {
        return Ok(ScalarValue::UInt64(Some(u)));
    }
    if value.hasattr("__index__")? {
        return Err(NotSupportedError::new_err(format!("{value} does not fit a 64-bit integer")));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(ScalarValue::Utf8(Some(s.to_str()?.to_string())));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(ScalarValue::Binary(Some(b.as_bytes().to_vec())));
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(ScalarValue::Binary(Some(b.to_vec())));
    }
    // datetime before date: a datetime is a date too
    if value.is_instance_of::<PyDateTime>() {
        return timestamp(value);
    }
    if value.is_instance_of::<PyDate>() {
        let ordinal: i64 = value.call_method0("toordinal")?.extract()?;
        // date(1970, 1, 1).toordinal()
        return Ok(ScalarValue::Date32(Some((ordinal - 719_163) as i32)));
    }
    if value.is_instance_of::<PyTime>() {
        if !value.getattr("tzinfo")?.is_none() {
            return Err(NotSupportedError::new_err("a time with a time zone cannot be bound\nhint: pass a naive time"));
        }
        let part = |name: &str| -> PyResult<i64> { value.getattr(name)?.extract() };
        let micros = ((part("hour")? * 60 + part("minute")?) * 60 + part("second")?) * 1_000_000 + part("microsecond")?;
        return Ok(ScalarValue::Time64Microsecond(Some(micros)));
    }
    if value.is_instance_of::<PyDelta>() {
        let part = |name: &str| -> PyResult<i64> { value.getattr(name)?.extract() };
        let nanos = (part("seconds")? * 1_000_000 + part("microseconds")?) * 1_000;
        return Ok(ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, part("days")? as i32, nanos))));
    }
    let module = value.get_type().module()?.to_string();
    let name = type_name(value);
    if module == "decimal" && name == "Decimal" {
        return decimal(value);
    }
    if module == "uuid" && name == "UUID" {
        return Ok(ScalarValue::Utf8(Some(value.str()?.to_str()?.to_string())));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        return list(value);
    }
    // numpy and other scalars that know their Python value
    if value.hasattr("item")? && value.hasattr("dtype")? {
        let item = value.call_method0("item")?;
        if !item.is(value) {
            return scalar(&item);
        }
    }
    let _ = py;
    Err(NotSupportedError::new_err(format!("a value of type {name} cannot be bound")))
}

/// A `datetime`: naive as `TIMESTAMP`, aware as `TIMESTAMP WITH TIME
/// ZONE` (in UTC), microseconds since the epoch either way.
fn timestamp(value: &Bound<'_, PyAny>) -> PyResult<ScalarValue> {
    let py = value.py();
    let datetime = py.import("datetime")?;
    let aware = !value.call_method0("utcoffset")?.is_none();
    let epoch = if aware {
        let utc = datetime.getattr("timezone")?.getattr("utc")?;
        datetime.getattr("datetime")?.call1((1970, 1, 1, 0, 0, 0, 0, utc))?
    } else {
        datetime.getattr("datetime")?.call1((1970, 1, 1))?
    };
    let since = value.call_method1("__sub__", (epoch,))?;
    let part = |name: &str| -> PyResult<i64> { since.getattr(name)?.extract() };
    let micros = (part("days")? * 86_400 + part("seconds")?) * 1_000_000 + part("microseconds")?;
    let zone: Option<Arc<str>> = aware.then(|| Arc::from("UTC"));
    Ok(ScalarValue::TimestampMicrosecond(Some(micros), zone))
}

/// A `decimal.Decimal` as a `DECIMAL` of its own precision and scale.
fn decimal(value: &Bound<'_, PyAny>) -> PyResult<ScalarValue> {
    if !value.call_method0("is_finite")?.extract::<bool>()? {
        return Err(NotSupportedError::new_err(format!("Decimal('{value}') cannot be bound\nhint: pass a float")));
    }
    let text: String = value.call_method1("__format__", ("f",))?.extract()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all = format!("{whole}{fraction}");
    let significant = all.trim_start_matches('0').len();
    let scale = fraction.len();
    let precision = significant.max(scale).max(1);
    if precision > 38 {
        return Err(NotSupportedError::new_err(format!(
            "Decimal('{value}') has more than 38 digits\nhint: pass it as a string or a float"
        )));
    }
    let unscaled: i128 = all
        .parse()
        .map_err(|e| NotSupportedError::new_err(format!("Decimal('{value}') cannot be bound: {e}")))?;
    Ok(ScalarValue::Decimal128(
        Some(if negative { -unscaled } else { unscaled }),
        precision as u8,
        scale as i8,
    ))
}

/// A list or tuple of values of one type as a `LIST`.
fn list(value: &Bound<'_, PyAny>) -> PyResult<ScalarValue> {
    let items = value.try_iter()?.map(|item| scalar(&item?)).collect::<PyResult<Vec<_>>>()?;
    let types: Vec<DataType> = items.iter().filter(|v| !v.is_null()).map(ScalarValue::data_type).collect();
    let item_type = match types.first() {
        None => DataType::Null,
        Some(first) if types.iter().all(|t| t == first) => first.clone(),
        Some(_) => {
            return Err(NotSupportedError::new_err(
                "a list whose items have different types cannot be bound\nhint: make every item the same type",
            ));
        }
    };
    let items = items
        .into_iter()
        .map(|v| if v.is_null() { ScalarValue::try_from(&item_type) } else { Ok(v) })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NotSupportedError::new_err(e.to_string()))?;
    Ok(ScalarValue::List(ScalarValue::new_list(&items, &item_type, true)))
}
