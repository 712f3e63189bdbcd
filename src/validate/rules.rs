//! Evaluating `x-rules` against a row.
//!
//! The row is bound to `row` as a CEL map of its non-NULL columns (see
//! [`super::cel_row`]): a column is converted when a rule selects it, and its
//! strings are borrowed, not copied. A NULL column is absent from the map, so
//! `row.amount` fails on it and `has(row.amount)` is the way to test for NULL.
//!
//! Numbers become `int` when they fit in 64 bits, else `uint`, else `double`
//! (so an exact numeric loses digits past double precision inside a rule; the
//! JSON Schema keywords compare them exactly).
//!
//! A rule that cannot be evaluated is reported, not passed, with one exception:
//! on an update, a rule that needs a column the server left out because its
//! TOASTed value did not change is skipped, as `required` skips such a column.
//!
//! A rule with a `when` is checked only where `when` is true. A transition
//! rule (naming `old`) sees the previous row bound to `old`, with the same
//! shape as `row`. Under REPLICA IDENTITY DEFAULT the server sends at most the
//! old key columns, so `old` then holds only those: a transition rule that
//! still comes out true passes, any other verdict is unknown (the missing
//! columns could have decided it) and never a finding.
//! Evaluation errors are described by type names only, since cel's own messages
//! quote operand values, which may be pii.
//!
//! A rule with a direct form (see [`crate::schema::Program`]) is first asked
//! of it; only where it cannot answer does the interpreter run, so verdicts
//! and messages are the interpreter's either way.

use std::cell::OnceCell;
use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, ExecutionError};

use super::cel_row::CelRow;
use super::{Finding, OldRow, Operation, Outcome};
use crate::row::{Row, Values};
use crate::schema::{Program, Rule, TableSchema, cel_env};

/// The verdict of one rule on one row.
enum Verdict {
    Pass,
    Fail(String),
    Skipped,
    Unknown,
}

/// Evaluates each rule of `schema` and reports those that are false or fail.
pub(super) fn check_rules(
    schema: &TableSchema,
    op: Operation,
    row: &Row,
    old: Option<OldRow<'_>>,
    outcome: &mut Outcome,
) {
    if schema.rules().is_empty() {
        return;
    }
    let old_values = old.filter(|_| op == Operation::Update).map(|old| &old.row.values);
    let binding = RowBinding { row: CelRow::new(&row.values), old: old_values.map(CelRow::new) };
    let old_complete = old.is_some_and(|old| old.complete);
    // Built only if some rule needs the interpreter.
    let context = OnceCell::new();
    let context = || {
        context.get_or_init(|| {
            let mut context = Context::with_env(Arc::clone(cel_env()));
            context.set_variable_resolver(&binding);
            context
        })
    };

    for (index, rule) in schema.rules().iter().enumerate() {
        let verdict = if rule.uses_old() && binding.old.is_none() {
            Verdict::Skipped
        } else {
            let verdict = evaluate(rule, &context, row, old_values);
            match verdict {
                Verdict::Fail(_) if rule.uses_old() && !old_complete => Verdict::Unknown,
                verdict => verdict,
            }
        };
        match verdict {
            Verdict::Pass => {}
            Verdict::Skipped => outcome.skipped.push(rule.name().to_owned()),
            Verdict::Unknown => {
                outcome.unknown.push(index);
                outcome.skipped.push(rule.name().to_owned());
            }
            Verdict::Fail(message) => outcome.findings.push(Finding {
                rule: rule.name().to_owned(),
                column: None,
                severity: rule.severity().unwrap_or(schema.severity()),
                message,
                value: None,
            }),
        }
    }
}

/// Runs `when`, then `expr`; a failure to evaluate either is a failure of the
/// rule, unless it comes from an unchanged TOAST column.
fn evaluate<'c>(
    rule: &Rule,
    context: &impl Fn() -> &'c Context<'c, 'c>,
    row: &Row,
    old: Option<&Values>,
) -> Verdict {
    let run = |program: &Program, what: &str| {
        let direct = program.direct.as_ref().and_then(|direct| direct.evaluate(&row.values, old));
        if let Some(value) = direct {
            return Ok(value);
        }
        match program.cel.execute(context()) {
            Ok(cel::Value::Bool(value)) => Ok(value),
            Ok(other) => Err(Verdict::Fail(format!(
                "rule {} could not be evaluated: {what} returned a {} instead of a bool",
                rule.name(),
                other.type_of()
            ))),
            Err(ExecutionError::NoSuchKey(key))
                if row.unchanged.iter().any(|column| column == key.as_str()) =>
            {
                Err(Verdict::Skipped)
            }
            Err(err) => Err(Verdict::Fail(format!(
                "rule {} could not be evaluated: {}",
                rule.name(),
                describe_error(&err)
            ))),
        }
    };
    if let Some(when) = rule.when() {
        match run(when, "its when condition") {
            Ok(true) => {}
            Ok(false) => return Verdict::Pass,
            Err(verdict) => return verdict,
        }
    }
    match run(rule.program(), "it") {
        Ok(true) => Verdict::Pass,
        Ok(false) => Verdict::Fail(
            rule.message().map_or_else(|| format!("rule {} failed", rule.name()), str::to_owned),
        ),
        Err(verdict) => verdict,
    }
}

/// Answers the variable `row` with the row's map, and `old` with the
/// previous row's on an update.
struct RowBinding<'r> {
    row: CelRow<'r>,
    old: Option<CelRow<'r>>,
}

impl VariableResolver for RowBinding<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "row" => Some(CowVal::Borrowed(&self.row)),
            "old" => self.old.as_ref().map(|old| CowVal::Borrowed(old as &dyn Val)),
            _ => None,
        }
    }
}

/// Why evaluation failed, naming keys, functions and types but no values.
fn describe_error(err: &ExecutionError) -> String {
    match err {
        ExecutionError::NoSuchKey(key) => {
            format!("the row has no {key} (NULL columns are absent; test with has(row.{key}))")
        }
        ExecutionError::UndeclaredReference(name) => {
            format!(
                "unknown name {name}; the row is bound to `row`, an update's previous row to `old`"
            )
        }
        ExecutionError::NoSuchOverload(overload) => overload.to_string(),
        ExecutionError::UnexpectedType { got, want } => format!("expected {want}, got {got}"),
        ExecutionError::InvalidArgumentCount { expected, actual } => {
            format!("expected {expected} arguments, got {actual}")
        }
        ExecutionError::ValuesNotComparable(left, right) => {
            format!("a {} cannot be compared with a {}", left.type_of(), right.type_of())
        }
        ExecutionError::UnsupportedBinaryOperator(operator, left, right) => {
            format!("{operator} does not apply to {} and {}", left.type_of(), right.type_of())
        }
        ExecutionError::NotSupportedAsMethod { method, target } => {
            format!("{method} is not a method of {}", target.type_of())
        }
        ExecutionError::FunctionError { function, .. } => format!("{function} failed"),
        ExecutionError::DivisionByZero(_) | ExecutionError::RemainderByZero(_) => {
            "division by zero".to_owned()
        }
        ExecutionError::Overflow(operator, ..) => format!("{operator} overflowed"),
        ExecutionError::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
        _ => "evaluation error".to_owned(),
    }
}

#[cfg(test)]
mod direct_tests {
    //! The direct form of a rule against the interpreter: wherever the direct
    //! form answers, the interpreter gives the same bool.

    use proptest::prelude::*;

    use super::*;

    /// What the interpreter makes of `expr` on `row` and `old`.
    fn interpret(program: &cel::Program, row: &Values, old: Option<&Values>) -> Option<bool> {
        let binding = RowBinding { row: CelRow::new(row), old: old.map(CelRow::new) };
        let mut context = Context::with_env(Arc::clone(cel_env()));
        context.set_variable_resolver(&binding);
        match program.execute(&context) {
            Ok(cel::Value::Bool(value)) => Some(value),
            _ => None,
        }
    }

    /// The direct form's answer, asserting that `expr` has one.
    fn direct(expr: &str, row: &str) -> Option<bool> {
        let program = Program::new(cel_env().compile(expr).unwrap());
        let direct = program.direct.as_ref().expect("the expression has a direct form");
        let row: Values = serde_json::from_str(row).unwrap();
        let answer = direct.evaluate(&row, None);
        if let Some(value) = answer {
            assert_eq!(interpret(&program.cel, &row, None), Some(value), "{expr} on {row:?}");
        }
        answer
    }

    #[test]
    fn the_benchmark_rules_are_answered_directly() {
        let paid =
            "!has(row.status) || row.status != 'paid' || (has(row.amount) && row.amount > 0)";
        assert_eq!(direct(paid, r#"{"status": "paid", "amount": 12.5}"#), Some(true));
        assert_eq!(direct(paid, r#"{"status": "paid", "amount": -1.00}"#), Some(false));
        assert_eq!(direct(paid, r#"{"status": "new"}"#), Some(true));
        assert_eq!(direct(paid, r#"{"status": "paid"}"#), Some(false));
        let shipped = "!has(row.status) || row.status != 'shipped' || has(row.note)";
        assert_eq!(direct(shipped, r#"{"status": "shipped", "note": null}"#), Some(false));
        assert_eq!(direct(shipped, r#"{"status": "shipped", "note": "x"}"#), Some(true));
    }

    #[test]
    fn what_only_the_interpreter_can_tell_is_left_to_it() {
        // An absent column, a kind the direct form does not compare, an
        // error that the other side of || absorbs.
        assert_eq!(direct("row.amount > 0", r#"{}"#), None);
        assert_eq!(direct("row.amount > 0", r#"{"amount": "12"}"#), None);
        assert_eq!(direct("row.amount > 0u", r#"{"amount": 12}"#), None);
        assert_eq!(direct("row.meta == 1", r#"{"meta": {"a": 1}}"#), None);
        assert_eq!(direct("row.missing > 0 || true", r#"{}"#), None);
        // Forms it does not have at all.
        for expr in ["size(row.note) < 3", "row.note.startsWith('a')", "row.a + 1 > 2", "row"] {
            let program = Program::new(cel_env().compile(expr).unwrap());
            assert!(program.direct.is_none(), "{expr}");
        }
    }

    #[test]
    fn in_lists_of_literals_and_mixed_numbers_are_answered_directly() {
        assert_eq!(direct("row.s in ['a', 'b']", r#"{"s": "b"}"#), Some(true));
        assert_eq!(direct("row.s in ['a', 'b']", r#"{"s": "c"}"#), Some(false));
        assert_eq!(direct("row.n in [1, 2.5]", r#"{"n": 2.5}"#), Some(true));
        assert_eq!(direct("row.n >= 3", r#"{"n": 2.99}"#), Some(false));
        assert_eq!(direct("row.n == 3.0", r#"{"n": 3}"#), Some(true));
        assert_eq!(direct("row.big > 1u", r#"{"big": 18446744073709551615}"#), Some(true));
        assert_eq!(
            direct("row.ok ? row.n < 1 : row.s == 'x'", r#"{"ok": false, "s": "x"}"#),
            Some(true)
        );
    }

    /// Source text of an expression over the columns a..d of `row` and `old`.
    fn expression() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("true".to_owned()),
            Just("false".to_owned()),
            (-3i64..4).prop_map(|n| n.to_string()),
            (0u64..4).prop_map(|n| format!("{n}u")),
            prop::sample::select(vec!["0.0", "-1.5", "2.5", "1e300", "3.0"])
                .prop_map(str::to_owned),
            prop::sample::select(vec!["''", "'a'", "'b'", "'é'", "'a\\u0000'"])
                .prop_map(str::to_owned),
            (
                prop::sample::select(vec!["row", "old"]),
                prop::sample::select(vec!["a", "b", "c", "d"])
            )
                .prop_map(|(var, col)| format!("{var}.{col}")),
            (
                prop::sample::select(vec!["row", "old"]),
                prop::sample::select(vec!["a", "b", "c", "d"])
            )
                .prop_map(|(var, col)| format!("has({var}.{col})")),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            let op = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">=", "&&", "||"]);
            prop_oneof![
                inner.clone().prop_map(|e| format!("!({e})")),
                (inner.clone(), op, inner.clone())
                    .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(c, a, b)| format!("({c}) ? ({a}) : ({b})")),
                (
                    inner,
                    prop::collection::vec(
                        prop::sample::select(vec!["1", "2.5", "'a'", "true", "0u"]),
                        0..3
                    )
                )
                    .prop_map(|(e, items)| format!("({e}) in [{}]", items.join(", "))),
            ]
        })
    }

    /// A row with some of the columns a..d, of every kind the row view makes.
    fn row() -> impl Strategy<Value = Values<'static>> {
        let value = prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "-2",
            "3",
            "2.5",
            "-1.5",
            "3.00",
            "1e300",
            "18446744073709551615",
            "123456789012345678901234567890",
            "\"\"",
            "\"a\"",
            "\"b\"",
            "\"é\"",
            "[1]",
            "{\"x\": 1}",
        ]);
        prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c", "d"]), value, 0..4)
            .prop_map(|columns| {
                let members: Vec<String> =
                    columns.iter().map(|(name, value)| format!("\"{name}\": {value}")).collect();
                serde_json::from_str(&format!("{{{}}}", members.join(", "))).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_direct_form_agrees_with_the_interpreter(
            expr in expression(),
            new in row(),
            old in row(),
            update in any::<bool>(),
        ) {
            let program = Program::new(cel_env().compile(&expr).unwrap());
            prop_assert!(program.direct.is_some(), "{} has no direct form", expr);
            let old = update.then_some(&old);
            if let Some(value) = program.direct.as_ref().unwrap().evaluate(&new, old) {
                prop_assert_eq!(interpret(&program.cel, &new, old), Some(value), "{}", expr);
            }
        }
    }
}
