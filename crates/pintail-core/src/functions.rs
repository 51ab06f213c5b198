//! SQL functions whose results follow DuckDB where DataFusion's differ.
//!
//! Only behaviour a DuckDB user would call a wrong answer lives here; each
//! function wraps DataFusion's own and changes as little as it can.
//!
//! - `/` divides as DOUBLE when either side is an integer or a DECIMAL, as
//!   in DuckDB (and Polars): `3 / 2` is 1.5, not 1, and a DECIMAL quotient
//!   keeps its digits (DataFusion's DECIMAL division rounded TPC-H Q8's
//!   market share to 8 decimals). Dividing by zero gives infinity or NaN,
//!   as in DuckDB 2.
//! - `avg` (and `mean`) of a DECIMAL is a DOUBLE, as in DuckDB. DataFusion
//!   returns DECIMAL(p+4, s+4), truncated: `avg` of DECIMAL(15,2) values
//!   kept six decimals, so TPC-H Q1's `avg_disc` was off in the eighth
//!   significant digit. The argument is cast to DOUBLE and DataFusion's
//!   float average does the rest (its accumulators, groups accumulator and
//!   window support unchanged).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::execution::FunctionRegistry as _;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::expr::BinaryExpr;
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{Expr, ExprSchemable as _, Operator, cast};
use datafusion::common::types::{NativeType, logical_float64};
use datafusion::error::Result;
use datafusion::functions_aggregate::average::Avg;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Coercion, Documentation, GroupsAccumulator, ReversedUDAF, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers Pintail's versions over DataFusion's built-ins of the same name.
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(DoubleAvg::new()));
}

/// Registers the expression rewrites, which run before type coercion.
pub(crate) fn register_rewrites(state: &mut SessionState) -> Result<()> {
    state.register_function_rewrite(Arc::new(FloatDivision))
}

/// `a / b` as `CAST(a AS DOUBLE) / CAST(b AS DOUBLE)` when either side is an
/// integer or a DECIMAL and both are numbers; see the module docs.
#[derive(Debug)]
struct FloatDivision;

impl FunctionRewrite for FloatDivision {
    fn name(&self) -> &'static str {
        "pintail_float_division"
    }

    fn rewrite(&self, expr: Expr, schema: &DFSchema, _config: &ConfigOptions) -> Result<Transformed<Expr>> {
        let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Divide, right }) = &expr else {
            return Ok(Transformed::no(expr));
        };
        let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
            return Ok(Transformed::no(expr));
        };
        let exact = |t: &DataType| t.is_integer() || t.is_decimal();
        if !(l.is_numeric() && r.is_numeric() && (exact(&l) || exact(&r))) {
            return Ok(Transformed::no(expr));
        }
        let Expr::BinaryExpr(BinaryExpr { left, right, .. }) = expr else {
            return Ok(Transformed::no(expr));
        };
        let float = |e: Box<Expr>| Box::new(cast(*e, DataType::Float64));
        Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(float(left), Operator::Divide, float(right)))))
    }
}

/// `avg` that averages decimals as DOUBLE; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DoubleAvg {
    inner: Avg,
    signature: Signature,
}

impl DoubleAvg {
    fn new() -> Self {
        let signature = Signature::one_of(
            vec![
                TypeSignature::Coercible(vec![Coercion::new_exact(TypeSignatureClass::Duration)]),
                TypeSignature::Coercible(vec![Coercion::new_implicit(
                    TypeSignatureClass::Native(logical_float64()),
                    vec![TypeSignatureClass::Integer, TypeSignatureClass::Float, TypeSignatureClass::Decimal],
                    NativeType::Float64,
                )]),
            ],
            Volatility::Immutable,
        );
        Self { inner: Avg::new(), signature }
    }
}

impl AggregateUDFImpl for DoubleAvg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(acc_args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}
