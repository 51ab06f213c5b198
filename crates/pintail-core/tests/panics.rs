//! A panic inside DataFusion (here, in a UDF that panics on purpose) must
//! come back as an internal error that names the query, and leave the
//! session usable.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::sync::Arc;

use pintail_core::datafusion::arrow::datatypes::DataType;
use pintail_core::datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use pintail_core::{ErrorKind, Session};

fn session_with_boom() -> Session {
    let session = Session::new().unwrap();
    let boom = create_udf(
        "boom",
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(|_args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            panic!("boom went the UDF")
        }),
    );
    session.context().register_udf(boom);
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_while_running_is_an_internal_error_with_the_query() {
    let session = session_with_boom();
    let query = "SELECT boom(v) FROM generate_series(1, 10) AS t(v)";
    let outcome = match session.sql(query).await {
        Ok(result) => result.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    let text = err.to_string();
    assert!(text.contains("boom went the UDF"), "{text}");
    assert!(text.contains(query), "{text}");
    // the session survives
    let rows = session.sql("SELECT 1 AS one").await.unwrap().collect().await.unwrap();
    assert_eq!(rows[0].num_rows(), 1);
}
