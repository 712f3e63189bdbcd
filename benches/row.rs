//! Decoding plus validation of one row of the benchmark table: the per-row
//! cost of `walguard run` without any I/O. Run with `cargo bench --bench row`.
//!
//! Times on a shared virtual machine vary by a fifth from run to run, so the
//! benchmark also counts instructions, which do not: with
//! `WALGUARD_ROW_COUNT=N` it handles each row (or the one its first argument
//! names) N times without timing and exits, to be run under
//! `valgrind --tool=callgrind` (see BENCHMARKS.md).

#[path = "shared/mod.rs"]
#[allow(dead_code, reason = "the micro-benchmark needs only the schema file")]
mod shared;

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use walguard::pgoutput::encode::encode;
use walguard::pgoutput::{Column, Insert, Message, Relation, Value};
use walguard::pipeline::{Output, Pipeline};
use walguard::schema::SchemaSet;

/// The relation oid the benchmark pretends the table has.
const OID: u32 = 16_384;

fn relation() -> Bytes {
    let columns = [
        ("id", 20),
        ("account_id", 23),
        ("amount", 1700),
        ("email", 25),
        ("status", 25),
        ("created_at", 1184),
        ("note", 25),
        ("meta", 3802),
    ];
    let columns = columns
        .iter()
        .map(|(name, type_oid)| Column {
            flags: u8::from(*name == "id"),
            name: (*name).to_string(),
            type_oid: *type_oid,
            type_modifier: -1,
        })
        .collect();
    encode(&Message::Relation(Relation {
        oid: OID,
        namespace: "public".into(),
        name: "orders".into(),
        replica_identity: b'd',
        columns,
    }))
}

fn insert(id: &'static str, amount: &'static str) -> Bytes {
    let values = [
        id,
        "42",
        amount,
        "customer42@example.com",
        "paid",
        "2026-12-04 01:00:00.123456+00",
        "order 123456",
        r#"{"items": 3, "channel": "web"}"#,
    ];
    let new = values.iter().map(|text| Value::Text(Bytes::from_static(text.as_bytes()))).collect();
    encode(&Message::Insert(Insert { relation: OID, new }))
}

fn pipeline() -> Pipeline {
    let dir = tempfile::tempdir().expect("a temp folder");
    std::fs::write(dir.path().join("public.orders.yaml"), shared::ORDERS_SCHEMA)
        .expect("the schema file");
    let schemas = SchemaSet::load(dir.path()).expect("the benchmark schema compiles");
    let mut pipeline = Pipeline::new(Arc::new(schemas));
    pipeline.begin(0x1000, 0, 1);
    let mut out = Output::default();
    pipeline.handle(&relation(), &mut out).expect("the relation message");
    pipeline
}

/// The benchmark's rows: one that passes every rule, one with a negative
/// amount, and the good row again in a table that has open violation states
/// (as a table with any bad row does), where every change's key is looked up
/// in the open-row set.
const ROWS: [(&str, &str, bool); 3] = [
    ("good_row", "123.50", false),
    ("bad_row", "-1.00", false),
    ("good_row_open_table", "123.50", true),
];

/// The pipeline for one of [`ROWS`]: with a bad row of another key seen
/// first when `open` is set.
fn pipeline_for(open: bool) -> Pipeline {
    let mut pipeline = pipeline();
    if open {
        let mut out = Output::default();
        pipeline.handle(&insert("7", "-1.00"), &mut out).expect("the bad insert decodes");
        assert!(!out.batch.violations.is_empty(), "the priming row is bad");
        for violation in &out.batch.violations {
            pipeline.note_open(violation);
        }
    }
    pipeline
}

/// Handles each row whose name contains `filter` `count` times, untimed, for
/// an instruction count.
fn count_only(count: u64, filter: &str) {
    for (name, amount, open) in
        ROWS.into_iter().filter(|(name, ..)| filter.is_empty() || *name == filter)
    {
        let message = insert("123456", amount);
        let mut pipeline = pipeline_for(open);
        let mut out = Output::default();
        let mut violations = 0;
        for _ in 0..count {
            out.clear();
            pipeline.handle(&message, &mut out).expect("the insert decodes");
            violations += out.batch.violations.len();
        }
        println!("{name}: handled {count} times, {violations} violations");
    }
}

fn decode_and_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_and_validate");
    group.throughput(Throughput::Elements(1));
    for (name, amount, open) in ROWS {
        let message = insert("123456", amount);
        let mut pipeline = pipeline_for(open);
        let mut out = Output::default();
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                pipeline.handle(&message, &mut out).expect("the insert decodes");
                out.batch.violations.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode_and_validate);

fn main() {
    match std::env::var("WALGUARD_ROW_COUNT").ok().and_then(|count| count.parse().ok()) {
        Some(count) => {
            let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
            count_only(count, filter.as_deref().unwrap_or(""));
        }
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
