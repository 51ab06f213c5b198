//! Results as Python tuples, for `fetchone()`, `fetchmany()` and
//! `fetchall()`.
//!
//! Columns of integers, floats, booleans, strings and binary are turned
//! into Python objects here, one value at a time with no pyarrow in
//! between (a one-row result is most of the cost of a short query's round
//! trip). Every other type (decimals, dates, times, timestamps with their
//! zones, intervals, lists, structs, maps) goes through pyarrow's
//! `to_pylist()`, which knows the Python type each should become.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, FieldRef, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use pyo3_arrow::PyArray;

/// `batches` (rows of `schema`) as a list of tuples.
pub(crate) fn tuples<'py>(py: Python<'py>, schema: &Schema, batches: &[RecordBatch]) -> PyResult<Bound<'py, PyAny>> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if schema.fields().is_empty() {
        return Ok(PyList::empty(py).into_any());
    }
    let mut columns: Vec<Vec<Py<PyAny>>> = schema.fields().iter().map(|_| Vec::with_capacity(rows)).collect();
    for batch in batches {
        for ((array, field), column) in batch.columns().iter().zip(schema.fields()).zip(&mut columns) {
            append(py, array, field, column)?;
        }
    }
    let list = PyList::empty(py);
    for row in 0..rows {
        list.append(PyTuple::new(py, columns.iter().map(|c| c[row].bind(py)))?)?;
    }
    Ok(list.into_any())
}

/// Appends `array`'s values to `out` as Python objects.
fn append(py: Python<'_>, array: &ArrayRef, field: &FieldRef, out: &mut Vec<Py<PyAny>>) -> PyResult<()> {
    macro_rules! each {
        ($values:expr, |$v:ident| $convert:expr) => {{
            let values = $values;
            for i in 0..values.len() {
                out.push(if values.is_null(i) {
                    py.None()
                } else {
                    let $v = values.value(i);
                    $convert?.into_any().unbind()
                });
            }
        }};
    }
    macro_rules! primitive {
        ($t:ty) => {
            each!(array.as_primitive::<$t>(), |v| v.into_pyobject(py))
        };
    }
    match array.data_type() {
        DataType::Null => out.extend((0..array.len()).map(|_| py.None())),
        DataType::Boolean => each!(array.as_boolean(), |v| Ok::<_, PyErr>(v.into_pyobject(py)?.to_owned())),
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Float16 => each!(array.as_primitive::<Float16Type>(), |v| v.to_f64().into_pyobject(py)),
        DataType::Float32 => each!(array.as_primitive::<Float32Type>(), |v| f64::from(v).into_pyobject(py)),
        DataType::Float64 => primitive!(Float64Type),
        DataType::Utf8 => each!(array.as_string::<i32>(), |v| v.into_pyobject(py)),
        DataType::LargeUtf8 => each!(array.as_string::<i64>(), |v| v.into_pyobject(py)),
        DataType::Utf8View => each!(array.as_string_view(), |v| v.into_pyobject(py)),
        DataType::Binary => each!(array.as_binary::<i32>(), |v| Ok::<_, PyErr>(PyBytes::new(py, v))),
        DataType::LargeBinary => each!(array.as_binary::<i64>(), |v| Ok::<_, PyErr>(PyBytes::new(py, v))),
        DataType::BinaryView => each!(array.as_binary_view(), |v| Ok::<_, PyErr>(PyBytes::new(py, v))),
        _ => {
            let values = PyArray::new(ArrayRef::clone(array), FieldRef::clone(field));
            let list = values.to_pyarrow(py)?.call_method0("to_pylist")?;
            for value in list.try_iter()? {
                out.push(value?.unbind());
            }
        }
    }
    Ok(())
}
