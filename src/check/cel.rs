//! Which columns a CEL rule reads, found in its syntax tree, so that a typo in
//! a column name is caught by `walguard check` rather than by the first row
//! (where it would make the rule unevaluable).
//!
//! A column is read as `row.name`, `has(row.name)` or `row["name"]`, and the
//! same on `old`. A comprehension that names its own variable `row` or `old`
//! hides the outer one inside its body, as CEL scopes it.

use std::collections::BTreeSet;

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr, LiteralValue};

/// The variables that hold a row.
const ROW_VARIABLES: [&str; 2] = ["row", "old"];

/// The column names `expression` reads from `row` or `old`.
pub(crate) fn columns_read(expression: &IdedExpr) -> BTreeSet<String> {
    let mut columns = BTreeSet::new();
    walk(expression, &mut columns);
    columns
}

fn walk(expression: &IdedExpr, columns: &mut BTreeSet<String>) {
    match &expression.expr {
        Expr::Select(select) => match &select.operand.expr {
            Expr::Ident(name) if ROW_VARIABLES.contains(&name.as_str()) => {
                columns.insert(select.field.clone());
            }
            _ => walk(&select.operand, columns),
        },
        Expr::Call(call) => {
            if let (cel::common::ast::operators::INDEX, [target, key]) =
                (call.func_name.as_str(), call.args.as_slice())
                && let (Expr::Ident(name), Expr::Literal(LiteralValue::String(column))) =
                    (&target.expr, &key.expr)
                && ROW_VARIABLES.contains(&name.as_str())
            {
                columns.insert(column.inner().to_owned());
            }
            call.target.iter().for_each(|target| walk(target, columns));
            call.args.iter().for_each(|arg| walk(arg, columns));
        }
        Expr::Comprehension(comprehension) => {
            walk(&comprehension.iter_range, columns);
            walk(&comprehension.accu_init, columns);
            let shadowed = std::iter::once(&comprehension.iter_var)
                .chain(&comprehension.iter_var2)
                .chain(std::iter::once(&comprehension.accu_var))
                .any(|name| ROW_VARIABLES.contains(&name.as_str()));
            if !shadowed {
                walk(&comprehension.loop_cond, columns);
                walk(&comprehension.loop_step, columns);
                walk(&comprehension.result, columns);
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|element| walk(element, columns)),
        Expr::Map(map) => map.entries.iter().for_each(|entry| walk_entry(&entry.expr, columns)),
        Expr::Struct(structure) => {
            structure.entries.iter().for_each(|entry| walk_entry(&entry.expr, columns))
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn walk_entry(entry: &EntryExpr, columns: &mut BTreeSet<String>) {
    match entry {
        EntryExpr::StructField(field) => walk(&field.value, columns),
        EntryExpr::MapEntry(pair) => {
            walk(&pair.key, columns);
            walk(&pair.value, columns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: &str) -> Vec<String> {
        let program = crate::schema::cel_env().compile(source).unwrap();
        columns_read(program.expression()).into_iter().collect()
    }

    #[test]
    fn fields_presence_tests_and_indexes_of_row_and_old_are_columns() {
        let source = "has(row.status) && row.amount > old['amount'] && size(row.tags) > 0";
        assert_eq!(read(source), ["amount", "status", "tags"]);
    }

    #[test]
    fn nested_fields_and_other_variables_are_not_columns() {
        assert_eq!(read("row.meta.kind == 'x' && other.field == 1"), ["meta"]);
        assert_eq!(read("row.tags.exists(t, t == row.status)"), ["status", "tags"]);
    }

    #[test]
    fn a_comprehension_variable_named_row_hides_the_row() {
        assert_eq!(read("row.items.all(row, row.qty > 0)"), ["items"]);
    }
}
