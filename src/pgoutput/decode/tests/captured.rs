//! Payloads captured from a real PostgreSQL 15.18 server, one message each, as
//! returned by `pg_logical_slot_peek_binary_changes(slot, NULL, NULL,
//! 'proto_version', '1', 'publication_names', 'pub', 'messages', 'true')`
//! (and `'binary', 'true'` for the two binary payloads).
//!
//! The database was set up with:
//!
//! ```sql
//! CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
//! CREATE TABLE t1 (id int PRIMARY KEY, name text, m mood, ms mood[], big text,
//!                  data jsonb, n numeric(10,2), ts timestamptz);
//! CREATE TABLE t2 (a int, b text, c varchar(12));
//! ALTER TABLE t2 REPLICA IDENTITY FULL;
//! CREATE PUBLICATION pub FOR TABLE t1, t2;
//! INSERT INTO t1 SELECT 1, 'ann', 'happy', '{sad,ok}',
//!     repeat('x', 100) || string_agg(md5(g::text), ''), '{"k": [1, 2.50]}',
//!     12.30, '2024-05-01 12:00:00+00' FROM generate_series(1, 300) g;
//! ```
//!
//! followed by the statements named on each payload.

use bytes::Bytes;

use super::assert_every_prefix_fails;
use crate::pgoutput::encode::encode;
use crate::pgoutput::*;

/// `B` of the first transaction (xid 729).
const BEGIN_INSERT_TXN: &str = "420000000001534510000304c0292f9182000002d9";
/// `Y` for the enum `mood` (oid 16385), sent before the relation that uses it.
const TYPE_MOOD: &str = "59000040017075626c6963006d6f6f6400";
/// `Y` for `mood[]` (oid 16384): the array type gets its own message, named `_mood`.
const TYPE_MOOD_ARRAY: &str = "59000040007075626c6963005f6d6f6f6400";
/// `R` for `t1` (oid 16391), REPLICA IDENTITY DEFAULT: only `id` is flagged as key.
const RELATION_T1: &str = "\
    52000040077075626c6963007431006400080169640000000017ffffffff006e616d650000000019\
    ffffffff006d0000004001ffffffff006d730000004000ffffffff006269670000000019ffffffff\
    00646174610000000edaffffffff006e00000006a4000a000600747300000004a0ffffffff";
/// `C` of the first transaction.
const COMMIT_INSERT_TXN: &str = "430000000000015345100000000001534540000304c0292f9182";
/// `INSERT INTO t1 (id, name) VALUES (2, NULL)`.
const INSERT_WITH_NULLS: &str = "49000040074e00087400000001326e6e6e6e6e6e6e";
/// `UPDATE t1 SET name = 'anna' WHERE id = 1`: the key did not change, so
/// no old tuple; `big` is stored out of line and unchanged, so it is `u`.
const UPDATE_WITH_UNCHANGED_TOAST: &str = "\
    55000040074e00087400000001317400000004616e6e617400000005686170707974000000087b73\
    61642c6f6b7d7574000000107b226b223a205b312c20322e35305d7d740000000531322e33307400\
    000016323032342d30352d30312031323a30303a30302b3030";
/// `UPDATE t1 SET id = 10 WHERE id = 2`: the old key comes as `K`, with NULL
/// for every column outside the key.
const UPDATE_OF_KEY: &str = "\
    55000040074b00087400000001326e6e6e6e6e6e6e4e0008740000000231306e6e6e6e6e6e6e";
/// `DELETE FROM t1 WHERE id = 10`.
const DELETE_BY_KEY: &str = "44000040074b0008740000000231306e6e6e6e6e6e6e";
/// `R` for `t2` (oid 16398), REPLICA IDENTITY FULL: every column is flagged as key.
const RELATION_T2_FULL: &str = "\
    520000400e7075626c69630074320066000301610000000017ffffffff01620000000019ffffffff\
    0163000000041300000010";
/// `UPDATE t2 SET b = 'uno!' WHERE a = 1`: the whole old row comes as `O`.
const UPDATE_FULL: &str = "\
    550000400e4f000374000000013174000000036f6e657400000003756e6f4e000374000000013174\
    00000004756e6f217400000003756e6f";
/// `DELETE FROM t2 WHERE a = 2`.
const DELETE_FULL: &str = "440000400e4f00037400000001326e7400000003646f73";
/// `pg_logical_emit_message(true, 'wg', 'in txn')` inside a transaction.
const MESSAGE_TRANSACTIONAL: &str = "4d010000000001534a5877670000000006696e2074786e";
/// `pg_logical_emit_message(false, 'wg-nontx', '\\x00ff'::bytea)`: sent at once,
/// outside any Begin and Commit.
const MESSAGE_NON_TRANSACTIONAL: &str = "4d000000000001534b1077672d6e6f6e7478000000000200ff";
/// `TRUNCATE t1, t2 RESTART IDENTITY CASCADE`.
const TRUNCATE_BOTH: &str = "540000000203000040070000400e";
/// `B` of a transaction replayed from origin `node_a`: its commit time is the
/// one given to `pg_replication_origin_xact_setup`, 2024-01-02 03:04:05 UTC.
const BEGIN_FROM_ORIGIN: &str = "4200000000015363c00002b0ec8515f340000002e4";
/// `O` right after that `B`, with the origin's lsn 0/ABCDEF.
const ORIGIN_NODE_A: &str = "4f0000000000abcdef6e6f64655f6100";
/// `C` of the transaction from origin `node_a`.
const COMMIT_FROM_ORIGIN: &str = "430000000000015363c000000000015364080002b0ec8515f340";
/// The update of `UPDATE_WITH_UNCHANGED_TOAST`, read with `binary` set.
const BINARY_UPDATE_WITH_UNCHANGED_TOAST: &str = "\
    55000040074e00086200000004000000016200000004616e6e616200000005686170707962000000\
    21000000010000000000004001000000020000000100000003736164000000026f6b756200000011\
    017b226b223a205b312c20322e35305d7d620000000c0002000000000002000c0bb8620000000800\
    02ba61fea15000";
/// `INSERT INTO t2 VALUES (1, 'one', 'uno')` read with `binary` set.
const BINARY_INSERT_T2: &str = "\
    490000400e4e000362000000040000000162000000036f6e656200000003756e6f";

const ALL: [&str; 20] = [
    BEGIN_INSERT_TXN,
    TYPE_MOOD,
    TYPE_MOOD_ARRAY,
    RELATION_T1,
    COMMIT_INSERT_TXN,
    INSERT_WITH_NULLS,
    UPDATE_WITH_UNCHANGED_TOAST,
    UPDATE_OF_KEY,
    DELETE_BY_KEY,
    RELATION_T2_FULL,
    UPDATE_FULL,
    DELETE_FULL,
    MESSAGE_TRANSACTIONAL,
    MESSAGE_NON_TRANSACTIONAL,
    TRUNCATE_BOTH,
    BEGIN_FROM_ORIGIN,
    ORIGIN_NODE_A,
    COMMIT_FROM_ORIGIN,
    BINARY_UPDATE_WITH_UNCHANGED_TOAST,
    BINARY_INSERT_T2,
];

/// The bytes of a hex constant. The `hex` crate is used without its `alloc`
/// feature, hence the slice.
fn bytes(hex_text: &str) -> Bytes {
    let mut out = vec![0; hex_text.len() / 2];
    hex::decode_to_slice(hex_text, &mut out).expect("captured payloads are valid hex");
    Bytes::from(out)
}

fn decoded(hex_text: &str) -> Message {
    decode(&bytes(hex_text)).unwrap_or_else(|err| panic!("{hex_text}: {err}"))
}

fn text(value: &'static str) -> Value {
    Value::Text(Bytes::from_static(value.as_bytes()))
}

fn binary(value: &'static [u8]) -> Value {
    Value::Binary(Bytes::from_static(value))
}

fn column(flags: u8, name: &str, type_oid: Oid, type_modifier: i32) -> Column {
    Column { flags, name: name.into(), type_oid, type_modifier }
}

#[test]
fn captured_payloads_encode_back_to_the_same_bytes() {
    for hex_text in ALL {
        let data = bytes(hex_text);
        assert_eq!(encode(&decoded(hex_text)), data, "{hex_text}");
    }
}

#[test]
fn every_prefix_of_a_captured_payload_is_an_error() {
    for hex_text in ALL {
        assert_every_prefix_fails(&bytes(hex_text));
    }
}

#[test]
fn captured_begin_and_commit_bracket_a_transaction() {
    let commit_time = 849_648_301_347_202;
    assert_eq!(
        decoded(BEGIN_INSERT_TXN),
        Message::Begin(Begin { final_lsn: 0x0153_4510, commit_time, xid: 729 })
    );
    assert_eq!(
        decoded(COMMIT_INSERT_TXN),
        Message::Commit(Commit {
            flags: 0,
            commit_lsn: 0x0153_4510,
            end_lsn: 0x0153_4540,
            commit_time
        })
    );
}

#[test]
fn captured_enum_and_its_array_each_get_a_type_message() {
    let ty = |oid, name: &str| Type { oid, namespace: "public".into(), name: name.into() };
    assert_eq!(decoded(TYPE_MOOD), Message::Type(ty(16385, "mood")));
    assert_eq!(decoded(TYPE_MOOD_ARRAY), Message::Type(ty(16384, "_mood")));
}

#[test]
fn captured_relation_lists_columns_with_key_flags_and_modifiers() {
    assert_eq!(
        decoded(RELATION_T1),
        Message::Relation(Relation {
            oid: 16391,
            namespace: "public".into(),
            name: "t1".into(),
            replica_identity: b'd',
            columns: vec![
                column(1, "id", 23, -1),
                column(0, "name", 25, -1),
                column(0, "m", 16385, -1),
                column(0, "ms", 16384, -1),
                column(0, "big", 25, -1),
                column(0, "data", 3802, -1),
                // numeric(10,2): ((10 << 16) | 2) + 4, the varlena header size.
                column(0, "n", 1700, 655_366),
                column(0, "ts", 1184, -1),
            ],
        })
    );
    let Message::Relation(full) = decoded(RELATION_T2_FULL) else { panic!("not a relation") };
    assert_eq!(full.replica_identity, b'f');
    assert!(full.columns.iter().all(Column::is_key));
    assert_eq!(full.columns[2], column(1, "c", 1043, 16));
}

#[test]
fn captured_changes_under_default_replica_identity() {
    let nulls = |n| std::iter::repeat_n(Value::Null, n);
    let key = |id| std::iter::once(text(id)).chain(nulls(7)).collect::<Tuple>();
    assert_eq!(
        decoded(INSERT_WITH_NULLS),
        Message::Insert(Insert { relation: 16391, new: key("2") })
    );
    assert_eq!(
        decoded(UPDATE_WITH_UNCHANGED_TOAST),
        Message::Update(Update {
            relation: 16391,
            old: None,
            new: vec![
                text("1"),
                text("anna"),
                text("happy"),
                text("{sad,ok}"),
                Value::UnchangedToast,
                text(r#"{"k": [1, 2.50]}"#),
                text("12.30"),
                text("2024-05-01 12:00:00+00"),
            ],
        })
    );
    assert_eq!(
        decoded(UPDATE_OF_KEY),
        Message::Update(Update {
            relation: 16391,
            old: Some(OldTuple::Key(key("2"))),
            new: key("10")
        })
    );
    assert_eq!(
        decoded(DELETE_BY_KEY),
        Message::Delete(Delete { relation: 16391, old: OldTuple::Key(key("10")) })
    );
}

#[test]
fn captured_changes_under_replica_identity_full_carry_the_old_row() {
    assert_eq!(
        decoded(UPDATE_FULL),
        Message::Update(Update {
            relation: 16398,
            old: Some(OldTuple::Full(vec![text("1"), text("one"), text("uno")])),
            new: vec![text("1"), text("uno!"), text("uno")],
        })
    );
    assert_eq!(
        decoded(DELETE_FULL),
        Message::Delete(Delete {
            relation: 16398,
            old: OldTuple::Full(vec![text("2"), Value::Null, text("dos")]),
        })
    );
}

#[test]
fn captured_logical_messages_and_truncate() {
    assert_eq!(
        decoded(MESSAGE_TRANSACTIONAL),
        Message::Message(LogicalMessage {
            transactional: true,
            lsn: 0x0153_4A58,
            prefix: "wg".into(),
            content: Bytes::from_static(b"in txn"),
        })
    );
    assert_eq!(
        decoded(MESSAGE_NON_TRANSACTIONAL),
        Message::Message(LogicalMessage {
            transactional: false,
            lsn: 0x0153_4B10,
            prefix: "wg-nontx".into(),
            content: Bytes::from_static(&[0x00, 0xff]),
        })
    );
    assert_eq!(
        decoded(TRUNCATE_BOTH),
        Message::Truncate(Truncate { options: 3, relations: vec![16391, 16398] })
    );
}

#[test]
fn captured_origin_follows_begin_with_the_origin_commit_time() {
    let commit_time = 757_479_845_000_000; // 2024-01-02 03:04:05 UTC
    assert_eq!(
        decoded(BEGIN_FROM_ORIGIN),
        Message::Begin(Begin { final_lsn: 0x0153_63C0, commit_time, xid: 740 })
    );
    assert_eq!(
        decoded(ORIGIN_NODE_A),
        Message::Origin(Origin { commit_lsn: 0x00AB_CDEF, name: "node_a".into() })
    );
    assert_eq!(
        decoded(COMMIT_FROM_ORIGIN),
        Message::Commit(Commit {
            flags: 0,
            commit_lsn: 0x0153_63C0,
            end_lsn: 0x0153_6408,
            commit_time
        })
    );
}

#[test]
fn captured_binary_values_keep_the_server_bytes() {
    assert_eq!(
        decoded(BINARY_INSERT_T2),
        Message::Insert(Insert {
            relation: 16398,
            new: vec![binary(&[0, 0, 0, 1]), binary(b"one"), binary(b"uno")],
        })
    );
    let Message::Update(update) = decoded(BINARY_UPDATE_WITH_UNCHANGED_TOAST) else {
        panic!("not an update")
    };
    assert_eq!(update.new[2], binary(b"happy"));
    // An array's binary form names its element type: here the enum, oid 16385.
    let Value::Binary(array) = &update.new[3] else { panic!("not binary") };
    assert_eq!(array[8..12], 16385u32.to_be_bytes());
    assert_eq!(update.new[4], Value::UnchangedToast);
    // jsonb's binary form is a version byte, then the text.
    assert_eq!(update.new[5], binary(b"\x01{\"k\": [1, 2.50]}"));
}
