//! SQL functions whose results follow DuckDB where DataFusion's differ.
//!
//! Only behaviour a DuckDB user would call a wrong answer lives here; each
//! function wraps DataFusion's own and changes as little as it can.
//!
//! - `avg` (and `mean`) of a DECIMAL is a DOUBLE, as in DuckDB. DataFusion
//!   returns DECIMAL(p+4, s+4), truncated: `avg` of DECIMAL(15,2) values
//!   kept six decimals, so TPC-H Q1's `avg_disc` was off in the eighth
//!   significant digit. The argument is cast to DOUBLE and DataFusion's
//!   float average does the rest (its accumulators, groups accumulator and
//!   window support unchanged).

use datafusion::arrow::datatypes::{DataType, FieldRef};
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
