//! A direct form of the simplest CEL rules, evaluated without the CEL
//! interpreter.
//!
//! Most rules compare a few columns with literals (`!has(row.status) ||
//! row.status != 'paid' || row.amount > 0`). The interpreter resolves every
//! name through its scopes and prepares an error value for each operator
//! before it knows whether one is needed, which makes it the largest part of
//! a row's cost. A rule made only of literals (bool, int, uint, double,
//! string), `row.c` and `old.c`, `has(row.c)`, `!`, `&&`, `||`, `? :`,
//! comparisons and `in` on a list of literals is also compiled into a
//! [`Direct`] tree.
//!
//! The direct form answers only where it is sure to agree with the
//! interpreter: a column that is absent, NULL, an array or an object, two
//! operands of kinds it does not compare, a NaN, or a non-bool result all
//! make it give up ([`Direct::evaluate`] returns `None`), and the caller then
//! runs the interpreter, whose verdict and error message stand. Comparison
//! follows the cel crate: numbers of the same kind compare exactly, an int
//! and a double compare as doubles, strings by their bytes, bools by
//! equality only. A property test checks the direct form against the
//! interpreter on random expressions and rows.

use std::cmp::Ordering;

use cel::common::ast::{Expr, LiteralValue, operators};
use serde_json::{Number, Value};

use crate::row::{Cell, Values};

/// A rule's expression as a tree the validator walks directly.
#[derive(Debug, Clone)]
pub(crate) struct Direct(Node);

#[derive(Debug, Clone)]
enum Node {
    Literal(Literal),
    /// `row.c`, or `old.c` when `old` is set.
    Column {
        old: bool,
        name: String,
    },
    /// `has(row.c)` or `has(old.c)`.
    Has {
        old: bool,
        name: String,
    },
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Conditional(Box<[Node; 3]>),
    Compare(Comparison, Box<[Node; 2]>),
    In(Box<Node>, Vec<Literal>),
}

#[derive(Debug, Clone)]
enum Literal {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(String),
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// A value during evaluation, borrowing strings from the row or the tree.
#[derive(Debug, Clone, Copy)]
enum Operand<'a> {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(&'a str),
}

impl Direct {
    /// The direct form of `program`, if every part of it has one.
    pub(super) fn compile(program: &cel::Program) -> Option<Direct> {
        node(&program.expression().expr).map(Direct)
    }

    /// The rule's value on `row` (and `old`, an update's previous row), or
    /// `None` where only the interpreter can tell.
    pub(crate) fn evaluate(&self, row: &Values, old: Option<&Values>) -> Option<bool> {
        match evaluate(&self.0, row, old)? {
            Operand::Bool(value) => Some(value),
            _ => None,
        }
    }
}

/// The node for `expr`, if it is one of the forms this module evaluates.
fn node(expr: &Expr) -> Option<Node> {
    match expr {
        Expr::Literal(literal) => literal_of(literal).map(Node::Literal),
        Expr::Select(select) => {
            let old = match &select.operand.expr {
                Expr::Ident(name) if name == "row" => false,
                Expr::Ident(name) if name == "old" => true,
                _ => return None,
            };
            let name = select.field.clone();
            Some(if select.test { Node::Has { old, name } } else { Node::Column { old, name } })
        }
        Expr::Call(call) if call.target.is_none() && call.func_name == operators::IN => {
            let [item, list] = call.args.as_slice() else {
                return None;
            };
            let Expr::List(list) = &list.expr else {
                return None;
            };
            if !list.optional_indices.is_empty() {
                return None;
            }
            let literals = list
                .elements
                .iter()
                .map(|element| match &element.expr {
                    Expr::Literal(literal) => literal_of(literal),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            Some(Node::In(Box::new(node(&item.expr)?), literals))
        }
        Expr::Call(call) if call.target.is_none() => {
            let args = call.args.iter().map(|arg| node(&arg.expr)).collect::<Option<_>>()?;
            operator_node(&call.func_name, args)
        }
        _ => None,
    }
}

/// The node for the operator `function` applied to `args`.
fn operator_node(function: &str, args: Vec<Node>) -> Option<Node> {
    let comparison = match function {
        operators::EQUALS => Some(Comparison::Equal),
        operators::NOT_EQUALS => Some(Comparison::NotEqual),
        operators::LESS => Some(Comparison::Less),
        operators::LESS_EQUALS => Some(Comparison::LessOrEqual),
        operators::GREATER => Some(Comparison::Greater),
        operators::GREATER_EQUALS => Some(Comparison::GreaterOrEqual),
        _ => None,
    };
    let mut args = args.into_iter();
    match (function, args.len()) {
        (operators::LOGICAL_NOT, 1) => Some(Node::Not(Box::new(args.next()?))),
        (operators::LOGICAL_AND, 2) => {
            Some(Node::And(Box::new(args.next()?), Box::new(args.next()?)))
        }
        (operators::LOGICAL_OR, 2) => {
            Some(Node::Or(Box::new(args.next()?), Box::new(args.next()?)))
        }
        (operators::CONDITIONAL, 3) => {
            Some(Node::Conditional(Box::new([args.next()?, args.next()?, args.next()?])))
        }
        (_, 2) => Some(Node::Compare(comparison?, Box::new([args.next()?, args.next()?]))),
        _ => None,
    }
}

/// A literal this module evaluates: not null, not bytes.
fn literal_of(literal: &LiteralValue) -> Option<Literal> {
    Some(match literal {
        LiteralValue::Boolean(value) => Literal::Bool(*value.inner()),
        LiteralValue::Int(value) => Literal::Int(*value.inner()),
        LiteralValue::UInt(value) => Literal::UInt(*value.inner()),
        LiteralValue::Double(value) => Literal::Double(*value.inner()),
        LiteralValue::String(value) => Literal::String(value.inner().to_owned()),
        LiteralValue::Bytes(_) | LiteralValue::Null => return None,
    })
}

fn evaluate<'a>(
    node: &'a Node,
    row: &'a Values<'_>,
    old: Option<&'a Values<'_>>,
) -> Option<Operand<'a>> {
    let boolean = |node: &'a Node| match evaluate(node, row, old)? {
        Operand::Bool(value) => Some(value),
        _ => None,
    };
    let source = |is_old: bool| if is_old { old } else { Some(row) };
    Some(match node {
        Node::Literal(literal) => literal.operand(),
        Node::Column { old: is_old, name } => column(source(*is_old)?.cell(name)?)?,
        Node::Has { old: is_old, name } => {
            Operand::Bool(source(*is_old)?.cell(name).is_some_and(|cell| !cell.is_null()))
        }
        Node::Not(inner) => Operand::Bool(!boolean(inner)?),
        // An error on the left may still be absorbed by the right; leave
        // that to the interpreter.
        Node::And(left, right) => Operand::Bool(boolean(left)? && boolean(right)?),
        Node::Or(left, right) => Operand::Bool(boolean(left)? || boolean(right)?),
        Node::Conditional(parts) => {
            let [condition, then, otherwise] = &**parts;
            evaluate(if boolean(condition)? { then } else { otherwise }, row, old)?
        }
        Node::Compare(comparison, operands) => {
            let [left, right] = &**operands;
            let left = evaluate(left, row, old)?;
            let right = evaluate(right, row, old)?;
            Operand::Bool(comparison.holds(left, right)?)
        }
        Node::In(item, list) => {
            let item = evaluate(item, row, old)?;
            let mut found = false;
            for candidate in list {
                found |= Comparison::Equal.holds(item, candidate.operand())?;
            }
            Operand::Bool(found)
        }
    })
}

/// A row's number as CEL sees it, here and in the CEL row: int when it fits,
/// else uint, else double (`None` past the range of a finite double).
pub(crate) enum RowNumber {
    Int(i64),
    UInt(u64),
    Double(Option<f64>),
}

impl RowNumber {
    pub(crate) fn of(number: &Number) -> Self {
        if let Some(int) = number.as_i64() {
            RowNumber::Int(int)
        } else if let Some(uint) = number.as_u64() {
            RowNumber::UInt(uint)
        } else {
            RowNumber::Double(number.as_f64())
        }
    }
}

/// A column's value as the CEL row would give it.
fn column(cell: Cell<'_>) -> Option<Operand<'_>> {
    let value = match cell {
        Cell::Text(text) => return Some(Operand::String(text)),
        Cell::Int(int, _) => return Some(Operand::Int(int)),
        Cell::Value(value) => value,
    };
    Some(match value {
        Value::Bool(flag) => Operand::Bool(*flag),
        Value::String(text) => Operand::String(text),
        Value::Number(number) => match RowNumber::of(number) {
            RowNumber::Int(int) => Operand::Int(int),
            RowNumber::UInt(uint) => Operand::UInt(uint),
            RowNumber::Double(double) => Operand::Double(double?),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    })
}

impl Literal {
    fn operand(&self) -> Operand<'_> {
        match self {
            Literal::Bool(value) => Operand::Bool(*value),
            Literal::Int(value) => Operand::Int(*value),
            Literal::UInt(value) => Operand::UInt(*value),
            Literal::Double(value) => Operand::Double(*value),
            Literal::String(value) => Operand::String(value),
        }
    }
}

impl Comparison {
    /// Whether `left` and `right` are in this relation, or `None` for kinds
    /// this module leaves to the interpreter.
    fn holds(self, left: Operand<'_>, right: Operand<'_>) -> Option<bool> {
        let ordering = match (left, right) {
            (Operand::Bool(a), Operand::Bool(b)) => {
                return match self {
                    Comparison::Equal => Some(a == b),
                    Comparison::NotEqual => Some(a != b),
                    _ => None,
                };
            }
            (Operand::Int(a), Operand::Int(b)) => a.cmp(&b),
            (Operand::UInt(a), Operand::UInt(b)) => a.cmp(&b),
            (Operand::Double(a), Operand::Double(b)) => a.partial_cmp(&b)?,
            #[allow(clippy::cast_precision_loss, reason = "the cel crate compares so")]
            (Operand::Int(a), Operand::Double(b)) => (a as f64).partial_cmp(&b)?,
            #[allow(clippy::cast_precision_loss, reason = "the cel crate compares so")]
            (Operand::Double(a), Operand::Int(b)) => a.partial_cmp(&(b as f64))?,
            (Operand::String(a), Operand::String(b)) => a.cmp(b),
            _ => return None,
        };
        Some(match self {
            Comparison::Equal => ordering == Ordering::Equal,
            Comparison::NotEqual => ordering != Ordering::Equal,
            Comparison::Less => ordering == Ordering::Less,
            Comparison::LessOrEqual => ordering != Ordering::Greater,
            Comparison::Greater => ordering == Ordering::Greater,
            Comparison::GreaterOrEqual => ordering != Ordering::Less,
        })
    }
}
