//! Math: arithmetic that keeps integers exact (falling back to floats on
//! overflow), rounding, powers, roots and logarithms. `SUM`, `MULTIPLY`,
//! `MIN` and `MAX` take any number of arguments, and arrays are spread.

use serde_json::Value;

use super::number::{Decimal, Num, Rounding, num, parse_num};
use super::{Args, FunctionDef, number_value, opt_integer, type_name};
use crate::EvalError;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "ABS",
        min_args: 1,
        max_args: Some(1),
        body: abs,
    },
    FunctionDef {
        name: "CEIL",
        min_args: 1,
        max_args: Some(1),
        body: ceil,
    },
    FunctionDef {
        name: "FLOOR",
        min_args: 1,
        max_args: Some(1),
        body: floor,
    },
    FunctionDef {
        name: "ROUND",
        min_args: 1,
        max_args: Some(2),
        body: round,
    },
    FunctionDef {
        name: "SQRT",
        min_args: 1,
        max_args: Some(1),
        body: sqrt,
    },
    FunctionDef {
        name: "POW",
        min_args: 2,
        max_args: Some(2),
        body: pow,
    },
    FunctionDef {
        name: "LOG",
        min_args: 1,
        max_args: Some(2),
        body: log,
    },
    FunctionDef {
        name: "MAX",
        min_args: 1,
        max_args: None,
        body: max,
    },
    FunctionDef {
        name: "MIN",
        min_args: 1,
        max_args: None,
        body: min,
    },
    FunctionDef {
        name: "MOD",
        min_args: 2,
        max_args: Some(2),
        body: modulo,
    },
    FunctionDef {
        name: "DIVIDE",
        min_args: 2,
        max_args: Some(2),
        body: divide,
    },
    FunctionDef {
        name: "SUBTRACT",
        min_args: 2,
        max_args: Some(2),
        body: subtract,
    },
    FunctionDef {
        name: "SUM",
        min_args: 1,
        max_args: None,
        body: sum,
    },
    FunctionDef {
        name: "MULTIPLY",
        min_args: 1,
        max_args: None,
        body: multiply,
    },
];

fn abs(args: Args<'_, '_>) -> Result<Value, EvalError> {
    match num("ABS", args, 0)? {
        Num::Int(i) => Ok(i
            .checked_abs()
            .map_or_else(|| Value::from((i as f64).abs()), Value::from)),
        Num::Float(f) => Num::Float(f.abs()).into_value("ABS"),
    }
}

fn ceil(args: Args<'_, '_>) -> Result<Value, EvalError> {
    match num("CEIL", args, 0)? {
        Num::Int(i) => Ok(Value::from(i)),
        Num::Float(f) => number_value("CEIL", f.ceil()),
    }
}

fn floor(args: Args<'_, '_>) -> Result<Value, EvalError> {
    match num("FLOOR", args, 0)? {
        Num::Int(i) => Ok(Value::from(i)),
        Num::Float(f) => number_value("FLOOR", f.floor()),
    }
}

/// `ROUND(n, decimals?)`: half away from zero on the digits as written, so
/// `ROUND(2.5)` is 3, `ROUND(-2.5)` is -3 and `ROUND(1.005, 2)` is 1.01.
fn round(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "ROUND";
    let n = num(F, args, 0)?;
    let decimals = opt_integer(F, args, 1)?.unwrap_or(0);
    if !(-18..=15).contains(&decimals) {
        return Err(EvalError::function(
            F,
            format!("decimals must be between -18 and 15, got {decimals}"),
        ));
    }
    if let Num::Int(i) = n
        && decimals >= 0
    {
        return Ok(Value::from(i));
    }
    let mut decimal = Decimal::from_f64(n.as_f64());
    decimal.round(decimals, Rounding::HalfUp);
    let f = decimal.to_f64();
    if decimals <= 0 {
        number_value(F, f)
    } else {
        Num::Float(f).into_value(F)
    }
}

fn sqrt(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let n = num("SQRT", args, 0)?.as_f64();
    if n < 0.0 {
        return Err(EvalError::function(
            "SQRT",
            format!("cannot take the square root of a negative number ({n})"),
        ));
    }
    number_value("SQRT", n.sqrt())
}

fn pow(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "POW";
    let base = num(F, args, 0)?;
    let exponent = num(F, args, 1)?;
    if let (Num::Int(b), Num::Int(e)) = (base, exponent)
        && let Ok(e) = u32::try_from(e)
        && let Some(exact) = b.checked_pow(e)
    {
        return Ok(Value::from(exact));
    }
    let result = base.as_f64().powf(exponent.as_f64());
    if result.is_nan() {
        return Err(EvalError::function(
            F,
            format!(
                "{} to the power {} is not a real number",
                base.as_f64(),
                exponent.as_f64()
            ),
        ));
    }
    number_value(F, result)
}

/// `LOG(n, base?)`: the natural logarithm when no base is given.
fn log(args: Args<'_, '_>) -> Result<Value, EvalError> {
    const F: &str = "LOG";
    let n = num(F, args, 0)?.as_f64();
    if n <= 0.0 {
        return Err(EvalError::function(
            F,
            format!("the logarithm needs a positive number, got {n}"),
        ));
    }
    let result = match super::arg(args, 1) {
        Value::Null => n.ln(),
        _ => {
            let base = num(F, args, 1)?.as_f64();
            if base <= 0.0 || base == 1.0 {
                return Err(EvalError::function(
                    F,
                    format!("the base must be positive and not 1, got {base}"),
                ));
            }
            // Exact for powers of common bases, e.g. LOG(1000, 10) = 3.
            if base == 10.0 {
                n.log10()
            } else if base == 2.0 {
                n.log2()
            } else {
                n.ln() / base.ln()
            }
        }
    };
    Num::Float(result).into_value(F).map(|v| match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Value::from(f as i64),
        _ => v,
    })
}

/// Every numeric argument, arrays spread; anything else is an error.
fn numbers(function: &'static str, args: Args<'_, '_>) -> Result<Vec<Num>, EvalError> {
    let mut out = Vec::with_capacity(args.len());
    for (index, value) in args.iter().enumerate() {
        let mut push = |v: &Value| match parse_num(v) {
            Some(n) => {
                out.push(n);
                Ok(())
            }
            None => Err(EvalError::function(
                function,
                format!(
                    "argument {} must be a number or an array of numbers, got {}",
                    index + 1,
                    describe(v)
                ),
            )),
        };
        match value.as_ref() {
            Value::Array(items) => items.iter().try_for_each(&mut push)?,
            other => push(other)?,
        }
    }
    Ok(out)
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        other => type_name(other).to_owned(),
    }
}

fn fold(
    function: &'static str,
    args: Args<'_, '_>,
    start: Num,
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Value, EvalError> {
    let mut acc = start;
    for n in numbers(function, args)? {
        acc = match (acc, n) {
            (Num::Int(a), Num::Int(b)) => {
                int_op(a, b).map_or_else(|| Num::Float(float_op(a as f64, b as f64)), Num::Int)
            }
            (a, b) => Num::Float(float_op(a.as_f64(), b.as_f64())),
        };
    }
    acc.into_value(function)
}

fn sum(args: Args<'_, '_>) -> Result<Value, EvalError> {
    fold("SUM", args, Num::Int(0), i64::checked_add, |a, b| a + b)
}

fn multiply(args: Args<'_, '_>) -> Result<Value, EvalError> {
    fold("MULTIPLY", args, Num::Int(1), i64::checked_mul, |a, b| {
        a * b
    })
}

fn subtract(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let a = num("SUBTRACT", args, 0)?;
    let b = num("SUBTRACT", args, 1)?;
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x
            .checked_sub(y)
            .map_or_else(|| Num::Float(x as f64 - y as f64), Num::Int),
        _ => Num::Float(a.as_f64() - b.as_f64()),
    }
    .into_value("SUBTRACT")
}

/// `DIVIDE(a, b)`: an integer when the division is exact, else a float.
fn divide(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let a = num("DIVIDE", args, 0)?;
    let b = num("DIVIDE", args, 1)?;
    if b.as_f64() == 0.0 {
        return Err(EvalError::function("DIVIDE", "division by zero"));
    }
    if let (Num::Int(x), Num::Int(y)) = (a, b)
        && x.checked_rem(y) == Some(0)
    {
        return Ok(Value::from(x / y));
    }
    Num::Float(a.as_f64() / b.as_f64()).into_value("DIVIDE")
}

/// `MOD(a, b)`: the remainder with the sign of `a`, as Java's `%`.
fn modulo(args: Args<'_, '_>) -> Result<Value, EvalError> {
    let a = num("MOD", args, 0)?;
    let b = num("MOD", args, 1)?;
    if b.as_f64() == 0.0 {
        return Err(EvalError::function("MOD", "division by zero"));
    }
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Ok(Value::from(x.checked_rem(y).unwrap_or(0))),
        _ => Num::Float(a.as_f64() % b.as_f64()).into_value("MOD"),
    }
}

fn extreme(
    function: &'static str,
    args: Args<'_, '_>,
    wanted: std::cmp::Ordering,
) -> Result<Value, EvalError> {
    let all = numbers(function, args)?;
    let mut best: Option<Num> = None;
    for n in all {
        best = match best {
            Some(b) if n.as_f64().partial_cmp(&b.as_f64()) != Some(wanted) => Some(b),
            _ => Some(n),
        };
    }
    match best {
        Some(n) => n.into_value(function),
        None => Err(EvalError::function(function, "needs at least one number")),
    }
}

fn max(args: Args<'_, '_>) -> Result<Value, EvalError> {
    extreme("MAX", args, std::cmp::Ordering::Greater)
}

fn min(args: Args<'_, '_>) -> Result<Value, EvalError> {
    extreme("MIN", args, std::cmp::Ordering::Less)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;

    fn call(
        f: fn(Args<'_, '_>) -> Result<Value, EvalError>,
        args: &[Value],
    ) -> Result<Value, String> {
        let args: Vec<Cow<'_, Value>> = args.iter().map(Cow::Borrowed).collect();
        f(&args).map_err(|e| e.to_string())
    }

    #[test]
    fn abs_ceil_floor() {
        assert_eq!(call(abs, &[json!(-3)]).unwrap(), json!(3));
        assert_eq!(call(abs, &[json!(-2.5)]).unwrap(), json!(2.5));
        assert_eq!(
            call(abs, &[json!(i64::MIN)]).unwrap(),
            json!(9.223372036854776e18)
        );
        assert_eq!(call(ceil, &[json!(1.2)]).unwrap(), json!(2));
        assert_eq!(call(ceil, &[json!(-1.2)]).unwrap(), json!(-1));
        assert_eq!(call(floor, &[json!(-1.2)]).unwrap(), json!(-2));
        assert_eq!(call(floor, &[json!("7.9")]).unwrap(), json!(7));
        assert!(
            call(abs, &[json!("x")])
                .unwrap_err()
                .contains("ABS: argument 1 must be a number, got 'x'")
        );
        assert!(call(ceil, &[Value::Null]).unwrap_err().contains("CEIL"));
    }

    #[test]
    fn round_is_half_up_on_visible_digits() {
        assert_eq!(call(round, &[json!(2.5)]).unwrap(), json!(3));
        assert_eq!(call(round, &[json!(-2.5)]).unwrap(), json!(-3));
        assert_eq!(call(round, &[json!(1.005), json!(2)]).unwrap(), json!(1.01));
        assert_eq!(
            call(round, &[json!(1234.5678), json!(-2)]).unwrap(),
            json!(1200)
        );
        assert_eq!(call(round, &[json!(7), json!(2)]).unwrap(), json!(7));
        assert_eq!(call(round, &[json!(0.1), json!(3)]).unwrap(), json!(0.1));
        assert!(
            call(round, &[json!(1), json!(40)])
                .unwrap_err()
                .contains("ROUND: decimals")
        );
        assert!(
            call(round, &[json!(1), json!(1.5)])
                .unwrap_err()
                .contains("integer")
        );
    }

    #[test]
    fn powers_roots_logs() {
        assert_eq!(call(sqrt, &[json!(16)]).unwrap(), json!(4));
        assert_eq!(
            call(sqrt, &[json!(2)]).unwrap(),
            json!(std::f64::consts::SQRT_2)
        );
        assert!(call(sqrt, &[json!(-1)]).unwrap_err().contains("negative"));
        assert_eq!(call(pow, &[json!(2), json!(10)]).unwrap(), json!(1024));
        assert_eq!(call(pow, &[json!(2), json!(-1)]).unwrap(), json!(0.5));
        assert_eq!(call(pow, &[json!(4), json!(0.5)]).unwrap(), json!(2));
        assert_eq!(call(pow, &[json!(10), json!(30)]).unwrap(), json!(1e30));
        assert!(
            call(pow, &[json!(-8), json!(0.5)])
                .unwrap_err()
                .contains("not a real number")
        );
        assert_eq!(call(log, &[json!(1000), json!(10)]).unwrap(), json!(3));
        assert_eq!(call(log, &[json!(8), json!(2)]).unwrap(), json!(3));
        assert_eq!(call(log, &[json!(1)]).unwrap(), json!(0));
        assert!(call(log, &[json!(0)]).unwrap_err().contains("positive"));
        assert!(
            call(log, &[json!(5), json!(1)])
                .unwrap_err()
                .contains("base")
        );
    }

    #[test]
    fn sums_and_products_spread_arrays_and_stay_exact() {
        assert_eq!(
            call(sum, &[json!(1), json!(2), json!(3)]).unwrap(),
            json!(6)
        );
        assert_eq!(
            call(sum, &[json!([1, 2.5]), json!("3")]).unwrap(),
            json!(6.5)
        );
        assert_eq!(call(sum, &[json!([])]).unwrap(), json!(0));
        assert_eq!(
            call(sum, &[json!(i64::MAX), json!(1)]).unwrap(),
            json!(9.223372036854776e18)
        );
        assert_eq!(
            call(sum, &[json!(0.1), json!(0.2)]).unwrap(),
            json!(0.30000000000000004)
        );
        assert!(
            call(sum, &[json!(1), json!(null)])
                .unwrap_err()
                .contains("SUM: argument 2")
        );
        assert!(call(sum, &[json!([1, "x"])]).unwrap_err().contains("'x'"));
        assert_eq!(
            call(multiply, &[json!(2), json!([3, 4])]).unwrap(),
            json!(24)
        );
        assert_eq!(call(multiply, &[json!(1.5), json!(2)]).unwrap(), json!(3.0));
        assert_eq!(call(subtract, &[json!(10), json!(3)]).unwrap(), json!(7));
        assert_eq!(call(subtract, &[json!(1), json!(0.5)]).unwrap(), json!(0.5));
        assert!(
            call(subtract, &[json!(true), json!(1)])
                .unwrap_err()
                .contains("SUBTRACT: argument 1 must be a number, got boolean")
        );
    }

    #[test]
    fn divide_and_mod() {
        assert_eq!(call(divide, &[json!(10), json!(2)]).unwrap(), json!(5));
        assert_eq!(call(divide, &[json!(10), json!(4)]).unwrap(), json!(2.5));
        assert_eq!(
            call(divide, &[json!(i64::MIN), json!(-1)]).unwrap(),
            json!(9.223372036854776e18)
        );
        assert!(
            call(divide, &[json!(1), json!(0)])
                .unwrap_err()
                .contains("DIVIDE: division by zero")
        );
        assert_eq!(call(modulo, &[json!(10), json!(3)]).unwrap(), json!(1));
        assert_eq!(call(modulo, &[json!(-10), json!(3)]).unwrap(), json!(-1));
        assert_eq!(call(modulo, &[json!(5.5), json!(2)]).unwrap(), json!(1.5));
        assert!(
            call(modulo, &[json!(1), json!(0)])
                .unwrap_err()
                .contains("MOD: division by zero")
        );
    }

    #[test]
    fn min_and_max() {
        assert_eq!(
            call(max, &[json!(3), json!(9.5), json!(-1)]).unwrap(),
            json!(9.5)
        );
        assert_eq!(call(min, &[json!([4, 2, 8])]).unwrap(), json!(2));
        assert_eq!(call(max, &[json!("10"), json!(9)]).unwrap(), json!(10));
        assert!(
            call(max, &[json!([])])
                .unwrap_err()
                .contains("MAX: needs at least one number")
        );
        assert!(
            call(min, &[json!({})])
                .unwrap_err()
                .contains("MIN: argument 1")
        );
    }
}
