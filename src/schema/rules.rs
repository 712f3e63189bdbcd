//! CEL rules (`x-rules`): reading the list and compiling each expression once.
//!
//! Each rule is a mapping with a `name` (the violation's `rule`), an `expr`
//! (CEL, with the row bound to `row`), and optionally a `when` (a CEL condition
//! that scopes the rule: it is checked only on rows where `when` is true), a
//! `message` and a `severity`. A rule whose `expr` or `when` names `old` is a
//! transition rule: it compares an updated row with its previous version and
//! is checked on updates only. Every program is compiled with one
//! standard-library environment shared by the whole process; evaluation (in
//! `validate`) builds only a cheap context around it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::Value;

use super::table::Program;
use super::{Rule, SchemaError, Severity};

/// The CEL environment rules are compiled and executed with: the standard
/// library and macros (`has`, `all`, `exists`, `map`, `filter`, ...).
pub(crate) fn cel_env() -> &'static Arc<cel::Env> {
    static ENV: OnceLock<Arc<cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib()))
}

/// One entry of `x-rules` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    expr: String,
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    severity: Option<Severity>,
}

/// Reads and compiles `x-rules`, which must be a list of rule mappings.
pub(super) fn compile_rules(path: &Path, rules: Option<&Value>) -> Result<Vec<Rule>, SchemaError> {
    let Some(rules) = rules else {
        return Ok(Vec::new());
    };
    let Some(entries) = rules.as_array() else {
        return Err(SchemaError::invalid(
            path,
            "/x-rules",
            "x-rules must be a list of rules, each with a name and an expr",
        ));
    };

    let mut names = HashSet::new();
    let mut compiled = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let pointer = format!("/x-rules/{index}");
        let spec = RuleSpec::deserialize(entry).map_err(|err| {
            let message = format!("a rule needs a name and an expr: {err}");
            SchemaError::invalid(path, &pointer, message)
        })?;
        if spec.name.trim().is_empty() {
            return Err(SchemaError::invalid(path, &pointer, "the rule's name is empty"));
        }
        if !names.insert(spec.name.clone()) {
            let message = format!("another rule is already named {}", spec.name);
            return Err(SchemaError::invalid(path, &pointer, message));
        }

        let compile = |text: &str, field: &str| {
            cel_env().compile(text).map_err(|errors| SchemaError::Rule {
                path: path.to_owned(),
                pointer: format!("{pointer}/{field}"),
                rule: spec.name.clone(),
                message: describe(&errors),
            })
        };
        let program = compile(&spec.expr, "expr")?;
        let when = spec.when.as_deref().map(|when| compile(when, "when")).transpose()?;
        let uses_old = program.references().has_variable("old")
            || when.as_ref().is_some_and(|when| when.references().has_variable("old"));
        compiled.push(Rule {
            name: spec.name,
            expr: spec.expr,
            message: spec.message,
            severity: spec.severity,
            program: Program::new(program),
            when: when.map(Program::new),
            uses_old,
        });
    }
    Ok(compiled)
}

/// The parser's messages on one line, each with its position in the
/// expression; its own `Display` adds a multi-line source excerpt.
fn describe(errors: &cel::ParseErrors) -> String {
    let messages: Vec<String> = errors
        .errors
        .iter()
        .map(|error| format!("{} at {}:{}", error.msg, error.pos.0, error.pos.1))
        .collect();
    if messages.is_empty() { "the expression is empty".to_owned() } else { messages.join("; ") }
}
