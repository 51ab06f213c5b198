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
//!   significant digit. DataFusion's own decimal average still does the
//!   work (exact sums, its groups accumulator, windows); the result is its
//!   exact sum as a DOUBLE divided by the count, as DuckDB computes it.
//!   (`avg(DISTINCT ...)` keeps DataFusion's quotient, asked for 12 more
//!   decimals than the input has, as a DOUBLE.) (Casting
//!   the input to DOUBLE instead made Q1 about 10% slower: 0.32 s against
//!   0.29 s at SF1.) DECIMALs wider or narrower than 128 bits are first
//!   cast to 128 bits, or to DOUBLE when they do not fit.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Decimal128Array, Float64Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::FunctionRegistry as _;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::expr::BinaryExpr;
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{Expr, ExprSchemable as _, Operator, cast};
use datafusion::error::Result;
use datafusion::functions_aggregate::average::Avg;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers Pintail's versions over DataFusion's built-ins of the same name.
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(DoubleAvg::new()));
}

/// Registers the expression rewrites, which run before type coercion.
pub(crate) fn register_rewrites(state: &mut SessionState) -> Result<()> {
    state.register_function_rewrite(Arc::new(FloatDivision))?;
    state.register_function_rewrite(Arc::new(crate::lists::TextToList))
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

/// Decimals the average is computed with: 12 more decimals than the input.
const EXTRA_SCALE: i8 = 12;

/// `avg` that returns DOUBLE for decimals; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DoubleAvg {
    inner: Avg,
    signature: Signature,
}

impl DoubleAvg {
    fn new() -> Self {
        Self { inner: Avg::new(), signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// The decimal type DataFusion's average should produce for `input`.
fn wide_decimal(input: &DataType) -> Option<DataType> {
    match input {
        DataType::Decimal128(_, s) => Some(DataType::Decimal128(38, s.saturating_add(EXTRA_SCALE).min(38))),
        _ => None,
    }
}

/// `args` asking DataFusion's average for [`wide_decimal`] results.
fn widened<'a>(args: &AccumulatorArgs<'a>) -> Option<AccumulatorArgs<'a>> {
    let wide = wide_decimal(args.expr_fields.first()?.data_type())?;
    let field = args.return_field.as_ref().clone().with_data_type(wide);
    Some(AccumulatorArgs { return_field: Arc::new(field), ..*args })
}

impl AggregateUDFImpl for DoubleAvg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [t] = arg_types else {
            return datafusion::common::plan_err!("avg takes one argument, got {}", arg_types.len());
        };
        let coerced = match t {
            DataType::Decimal128(..) | DataType::Duration(_) => t.clone(),
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
            DataType::Decimal256(p, s) if *p <= 38 => DataType::Decimal128(*p, *s),
            t if t.is_numeric() || t.is_null() => DataType::Float64,
            DataType::Dictionary(_, v) if v.is_numeric() => DataType::Float64,
            other => return datafusion::common::plan_err!("avg cannot average values of type {other}"),
        };
        Ok(vec![coerced])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::Decimal128(..)) => Ok(DataType::Float64),
            _ => self.inner.return_type(arg_types),
        }
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match widened(&acc_args) {
            Some(wide) => {
                let distinct = wide.is_distinct;
                Ok(Box::new(ToDouble { inner: self.inner.accumulator(wide)?, distinct }))
            }
            None => self.inner.accumulator(acc_args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        match widened(&args) {
            Some(wide) => self.inner.groups_accumulator_supported(wide),
            None => self.inner.groups_accumulator_supported(args),
        }
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        match widened(&args) {
            // DataFusion has no groups accumulator for DISTINCT
            Some(wide) => Ok(Box::new(GroupsToDouble(self.inner.create_groups_accumulator(wide)?))),
            None => self.inner.create_groups_accumulator(args),
        }
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

/// The mean of a decimal sum (at `scale`) over `count` values, as DuckDB
/// computes it: the exact sum as a DOUBLE, divided by the count.
#[expect(clippy::cast_precision_loss, reason = "the result is a DOUBLE, rounded once from the exact sum")]
fn mean(sum: i128, scale: i8, count: u64) -> Option<f64> {
    (count > 0).then(|| sum as f64 / 10f64.powi(i32::from(scale)) / count as f64)
}

/// A decimal [`Accumulator`] whose result is a DOUBLE.
#[derive(Debug)]
struct ToDouble {
    inner: Box<dyn Accumulator>,
    distinct: bool,
}

impl Accumulator for ToDouble {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if !self.distinct
            && let [ScalarValue::UInt64(count), ScalarValue::Decimal128(sum, _, scale)] = self.inner.state()?.as_slice()
        {
            let value = match (sum, count) {
                (Some(sum), Some(count)) => mean(*sum, *scale, *count),
                _ => None,
            };
            return Ok(ScalarValue::Float64(value));
        }
        self.inner.evaluate()?.cast_to(&DataType::Float64)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

/// A decimal [`GroupsAccumulator`] whose results are DOUBLEs.
struct GroupsToDouble(Box<dyn GroupsAccumulator>);

impl GroupsAccumulator for GroupsToDouble {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.0.update_batch(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        // the state is [count, sum]: the same groups as evaluate would emit
        let state = self.0.state(emit_to)?;
        let (Some(counts), Some(sums)) = (
            state.first().and_then(|a| a.as_any().downcast_ref::<UInt64Array>()),
            state.get(1).and_then(|a| a.as_any().downcast_ref::<Decimal128Array>()),
        ) else {
            return datafusion::common::internal_err!("avg's state is not [count, sum]");
        };
        let scale = sums.scale();
        let means: Float64Array = counts
            .iter()
            .zip(sums.iter())
            .map(|(count, sum)| mean(sum?, scale, count?))
            .collect();
        Ok(Arc::new(means))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.0.state(emit_to)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.0.merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        self.0.convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}
