//! Per-row cost of decode + validate through the pipeline, the synchronous
//! part of `walguard run`: a table with column keywords only, with a CEL rule
//! scoped by `when`, and with a reference whose keys are already known, each
//! without and with unresolved violation states (which add a resolution per
//! row). Prints the best of seven passes over 200 000 inserts:
//!
//! ```text
//! cargo run --release --example rule_cost
//! ```
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use walguard::pgoutput::encode::encode;
use walguard::pgoutput::{Column, Insert, Message, Relation, Value};
use walguard::pipeline::{Output, Pipeline};
use walguard::schema::SchemaSet;

fn main() {
    let schemas = [
        (
            "plain",
            "properties:\n  account_id: {type: integer}\n  amount: {type: number, minimum: 0}\n  status: {enum: [new, paid]}\n",
        ),
        (
            "rule",
            "properties:\n  account_id: {type: integer}\n  amount: {type: number, minimum: 0}\n  status: {enum: [new, paid]}\nx-rules:\n  - {name: r, when: \"row.status == 'paid'\", expr: 'row.amount > 0'}\n",
        ),
        (
            "reference",
            "properties:\n  account_id: {type: integer, x-references: public.accounts.id}\n  amount: {type: number, minimum: 0}\n  status: {enum: [new, paid]}\n",
        ),
    ];
    let col = |name: &str, oid, flags| Column {
        flags,
        name: name.into(),
        type_oid: oid,
        type_modifier: -1,
    };
    let relation = encode(&Message::Relation(Relation {
        oid: 1,
        namespace: "public".into(),
        name: "orders".into(),
        replica_identity: b'd',
        columns: vec![
            col("id", 20, 1),
            col("account_id", 20, 0),
            col("amount", 1700, 0),
            col("status", 25, 0),
        ],
    }));
    let rows: Vec<Bytes> = (0..200_000)
        .map(|i| {
            let text = |s: String| Value::Text(Bytes::from(s));
            encode(&Message::Insert(Insert {
                relation: 1,
                new: vec![
                    text(i.to_string()),
                    text((i % 100).to_string()),
                    text("42.00".into()),
                    text("new".into()),
                ],
            }))
        })
        .collect();
    for (label, schema) in schemas {
        for open in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("o.yaml"), format!("x-table: public.orders\n{schema}"))
                .unwrap();
            let set = Arc::new(SchemaSet::load(dir.path()).unwrap());
            let mut best = f64::MAX;
            for _ in 0..7 {
                let mut pipeline = Pipeline::new(set.clone());
                if open {
                    pipeline.mark_open("public".into(), "orders".into());
                }
                let mut out = Output::default();
                pipeline.handle(&relation, &mut out).unwrap();
                if label == "reference" {
                    for account in 0..100 {
                        pipeline.known_keys().insert(0, &account.to_string());
                    }
                }
                pipeline.begin(1, 0, 1);
                let start = Instant::now();
                for (n, row) in rows.iter().enumerate() {
                    pipeline.handle(row, &mut out).unwrap();
                    if n % 1000 == 0 {
                        out = Output::default();
                    }
                }
                best = best.min(start.elapsed().as_nanos() as f64 / rows.len() as f64);
            }
            let per_row = best;
            println!("{label:<10} open_states={open:<5} {per_row:>7.0} ns/row");
        }
    }
}
