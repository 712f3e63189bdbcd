//! The row view on arbitrary column text: every type's conversion (numbers,
//! booleans, json, times, array literals of each) must return a value or an
//! error, never panic. The input is split at zero bytes into column values.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use walguard::pgoutput::{Column, Relation, Type, Value};
use walguard::relation::RelationCache;
use walguard::row::{row_from_tuple, row_key};

/// Built-in scalar and array type oids of every kind, then two user types.
const TYPES: [u32; 22] = [
    20, 1700, 701, 16, 114, 3802, 1184, 1114, 1083, 1266, 25, 1016, 1231, 1000, 3807, 1185, 1115,
    1183, 1270, 1020, 90001, 90002,
];

fuzz_target!(|data: &[u8]| {
    let mut cache = RelationCache::new();
    let user = |oid, name: &str| Type { oid, namespace: "public".into(), name: name.into() };
    cache.apply_type(user(90001, "_mood"));
    cache.apply_type(user(90002, "mood"));
    let columns = TYPES
        .iter()
        .enumerate()
        .map(|(i, &type_oid)| Column {
            flags: u8::from(i % 3 == 0),
            name: format!("c{i}"),
            type_oid,
            type_modifier: -1,
        })
        .collect();
    cache.apply_relation(Relation {
        oid: 1,
        namespace: "public".into(),
        name: "fuzz".into(),
        replica_identity: b'd',
        columns,
    });
    let relation = cache.get(1).expect("the relation just applied");

    // Each part is given to every column in turn, the others NULL, so that
    // each kind sees each input even when another kind rejects it.
    for part in data.split(|&b| b == 0) {
        for column in 0..TYPES.len() {
            let mut tuple = vec![Value::Null; TYPES.len()];
            tuple[column] = Value::Text(Bytes::copy_from_slice(part));
            let _ = row_from_tuple(relation, &tuple);
            let _ = row_key(relation, &tuple);
        }
    }
});
