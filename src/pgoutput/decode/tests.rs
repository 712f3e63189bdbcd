//! Tests of [`decode`] on hand-built payloads, malformed and truncated input,
//! and arbitrary messages round-tripped through [`encode`]. Payloads captured
//! from a real server are in `captured`.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::pgoutput::encode::encode;

mod captured;

/// Concatenates the parts of a hand-built payload.
fn payload(parts: &[&[u8]]) -> Bytes {
    Bytes::from(parts.concat())
}

fn text(value: &'static str) -> Value {
    Value::Text(Bytes::from_static(value.as_bytes()))
}

/// An insert into relation 16384 whose tuple holds one value of each kind.
fn insert_of_every_value_kind() -> Bytes {
    payload(&[
        b"I",
        &16384u32.to_be_bytes(),
        b"N",
        &4i16.to_be_bytes(),
        b"n",
        b"u",
        b"t",
        &2i32.to_be_bytes(),
        b"42",
        b"b",
        &3i32.to_be_bytes(),
        &[0, 1, 255],
    ])
}

/// The hand-built payloads, each with the message it must decode to.
fn hand_built() -> Vec<(Bytes, Message)> {
    let key = || payload(&[&1i16.to_be_bytes(), b"t", &1i32.to_be_bytes(), b"7"]);
    let row = || payload(&[&2i16.to_be_bytes(), b"t", &1i32.to_be_bytes(), b"7", b"n"]);
    vec![
        (
            payload(&[
                b"B",
                &0x16B_3748u64.to_be_bytes(),
                &(-5i64).to_be_bytes(),
                &9u32.to_be_bytes(),
            ]),
            Message::Begin(Begin { final_lsn: 0x16B_3748, commit_time: -5, xid: 9 }),
        ),
        (
            payload(&[
                b"C",
                &[0],
                &10u64.to_be_bytes(),
                &20u64.to_be_bytes(),
                &30i64.to_be_bytes(),
            ]),
            Message::Commit(Commit { flags: 0, commit_lsn: 10, end_lsn: 20, commit_time: 30 }),
        ),
        (
            payload(&[b"O", &99u64.to_be_bytes(), b"east\0"]),
            Message::Origin(Origin { commit_lsn: 99, name: "east".into() }),
        ),
        (
            payload(&[
                b"R",
                &16384u32.to_be_bytes(),
                b"shop\0orders\0",
                b"d",
                &2i16.to_be_bytes(),
                &[1],
                b"id\0",
                &20u32.to_be_bytes(),
                &(-1i32).to_be_bytes(),
                &[0],
                b"note\0",
                &1043u32.to_be_bytes(),
                &36i32.to_be_bytes(),
            ]),
            Message::Relation(Relation {
                oid: 16384,
                namespace: "shop".into(),
                name: "orders".into(),
                replica_identity: b'd',
                columns: vec![
                    Column { flags: 1, name: "id".into(), type_oid: 20, type_modifier: -1 },
                    Column { flags: 0, name: "note".into(), type_oid: 1043, type_modifier: 36 },
                ],
            }),
        ),
        (
            payload(&[b"Y", &16390u32.to_be_bytes(), b"\0status\0"]),
            Message::Type(Type { oid: 16390, namespace: String::new(), name: "status".into() }),
        ),
        (
            insert_of_every_value_kind(),
            Message::Insert(Insert {
                relation: 16384,
                new: vec![
                    Value::Null,
                    Value::UnchangedToast,
                    text("42"),
                    Value::Binary(Bytes::from_static(&[0, 1, 255])),
                ],
            }),
        ),
        (
            payload(&[b"U", &5u32.to_be_bytes(), b"N", &row()]),
            Message::Update(Update { relation: 5, old: None, new: vec![text("7"), Value::Null] }),
        ),
        (
            payload(&[b"U", &5u32.to_be_bytes(), b"K", &key(), b"N", &row()]),
            Message::Update(Update {
                relation: 5,
                old: Some(OldTuple::Key(vec![text("7")])),
                new: vec![text("7"), Value::Null],
            }),
        ),
        (
            payload(&[b"U", &5u32.to_be_bytes(), b"O", &row(), b"N", &row()]),
            Message::Update(Update {
                relation: 5,
                old: Some(OldTuple::Full(vec![text("7"), Value::Null])),
                new: vec![text("7"), Value::Null],
            }),
        ),
        (
            payload(&[b"D", &5u32.to_be_bytes(), b"K", &key()]),
            Message::Delete(Delete { relation: 5, old: OldTuple::Key(vec![text("7")]) }),
        ),
        (
            payload(&[b"D", &5u32.to_be_bytes(), b"O", &row()]),
            Message::Delete(Delete {
                relation: 5,
                old: OldTuple::Full(vec![text("7"), Value::Null]),
            }),
        ),
        (
            payload(&[b"T", &2i32.to_be_bytes(), &[2], &5u32.to_be_bytes(), &6u32.to_be_bytes()]),
            Message::Truncate(Truncate { options: 2, relations: vec![5, 6] }),
        ),
        (
            payload(&[b"M", &[1], &77u64.to_be_bytes(), b"app\0", &3i32.to_be_bytes(), b"hi\0"]),
            Message::Message(LogicalMessage {
                transactional: true,
                lsn: 77,
                prefix: "app".into(),
                content: Bytes::from_static(b"hi\0"),
            }),
        ),
        (
            payload(&[b"M", &[0], &78u64.to_be_bytes(), b"\0", &0i32.to_be_bytes()]),
            Message::Message(LogicalMessage {
                transactional: false,
                lsn: 78,
                prefix: String::new(),
                content: Bytes::new(),
            }),
        ),
    ]
}

#[test]
fn hand_built_payloads_of_every_kind_decode_and_encode_back() {
    let cases = hand_built();
    for kind in MessageKind::ALL {
        assert!(cases.iter().any(|(_, message)| message.kind() == kind), "no case for {kind}");
    }
    for (data, expected) in cases {
        assert_eq!(decode(&data), Ok(expected.clone()), "decoding {data:?}");
        assert_eq!(encode(&expected), data, "encoding {expected:?}");
    }
}

#[test]
fn values_are_slices_of_the_input_not_copies() {
    let data = insert_of_every_value_kind();
    let Ok(Message::Insert(insert)) = decode(&data) else { panic!("not an insert") };
    let Value::Text(value) = &insert.new[2] else { panic!("not text") };
    assert_eq!(value.as_ptr(), data[15..].as_ptr());
    let Value::Binary(value) = &insert.new[3] else { panic!("not binary") };
    assert_eq!(value.as_ptr(), data[22..].as_ptr());
}

#[test]
fn every_prefix_of_a_valid_message_is_an_error() {
    for (data, _) in hand_built() {
        assert_every_prefix_fails(&data);
    }
}

/// Checks that no strict prefix of `data` decodes, and that each error says
/// the input ended early (or, for counts and strings, could not fit in it).
fn assert_every_prefix_fails(data: &Bytes) {
    for len in 0..data.len() {
        let err = decode(&data.slice(..len)).expect_err("a strict prefix must not decode");
        assert!(
            matches!(
                err,
                DecodeError::Empty
                    | DecodeError::Truncated { .. }
                    | DecodeError::CountTooLarge { .. }
                    | DecodeError::UnterminatedString { .. }
            ),
            "prefix of {len} bytes of {data:?}: unexpected error {err}"
        );
    }
}

#[test]
fn truncated_error_names_the_message_field_and_offset() {
    let data = payload(&[
        b"U",
        &16384u32.to_be_bytes(),
        b"N",
        &4i16.to_be_bytes(),
        b"t\0\0\0\x01a",
        b"t\0\0\0\x01b",
        b"t\0\0\0\x01c",
        b"t\0\0",
    ]);
    let err = decode(&data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "truncated update message: needed 4 bytes for column 3 length at offset 27, 2 left"
    );
}

#[test]
fn value_longer_than_the_message_is_truncated_not_allocated() {
    let data = payload(&[b"I", &1u32.to_be_bytes(), b"N", &1i16.to_be_bytes(), b"t", &[0x7f; 4]]);
    assert_eq!(
        decode(&data).unwrap_err().to_string(),
        "truncated insert message: needed 2139062143 bytes for column 0 value at offset 13, 0 left"
    );
}

#[test]
fn empty_input_is_an_error() {
    assert_eq!(decode(&Bytes::new()), Err(DecodeError::Empty));
}

#[test]
fn unknown_and_streaming_tags_are_rejected() {
    let err = decode(&Bytes::from_static(b"X1234")).unwrap_err();
    assert_eq!(err.to_string(), "unknown pgoutput message tag 0x58 ('X') for protocol version 1");
    // Stream Start belongs to protocol version 2, which walguard never asks for.
    assert_eq!(decode(&Bytes::from_static(b"S")), Err(DecodeError::UnknownTag { tag: b'S' }));
    assert_eq!(
        decode(&Bytes::from_static(b"\0")).unwrap_err().to_string(),
        "unknown pgoutput message tag 0x00 for protocol version 1"
    );
}

#[test]
fn negative_value_length_is_rejected() {
    let data = payload(&[b"I", &1u32.to_be_bytes(), b"N", &1i16.to_be_bytes(), b"t", &[0xff; 4]]);
    assert_eq!(
        decode(&data).unwrap_err().to_string(),
        "invalid insert message: negative column 0 length -1 at offset 9"
    );
}

#[test]
fn negative_counts_and_content_length_are_rejected() {
    let tuple = payload(&[b"D", &1u32.to_be_bytes(), b"K", &(-2i16).to_be_bytes()]);
    assert_eq!(
        decode(&tuple).unwrap_err().to_string(),
        "invalid delete message: negative old column count -2 at offset 6"
    );
    let truncate = payload(&[b"T", &(-1i32).to_be_bytes(), &[0]]);
    assert!(matches!(decode(&truncate), Err(DecodeError::Negative { value: -1, offset: 1, .. })));
    let message = payload(&[b"M", &[1], &0u64.to_be_bytes(), b"p\0", &i32::MIN.to_be_bytes()]);
    assert!(matches!(decode(&message), Err(DecodeError::Negative { value: i32::MIN, .. })));
}

#[test]
fn counts_larger_than_the_remaining_bytes_are_rejected_before_allocating() {
    let tuple = payload(&[b"I", &1u32.to_be_bytes(), b"N", &i16::MAX.to_be_bytes(), b"nn"]);
    assert_eq!(
        decode(&tuple).unwrap_err().to_string(),
        "invalid insert message: column count 32767 at offset 6 needs at least 32767 bytes, 2 left"
    );
    let truncate = payload(&[b"T", &i32::MAX.to_be_bytes(), &[0], &1u32.to_be_bytes()]);
    assert!(matches!(
        decode(&truncate),
        Err(DecodeError::CountTooLarge { count: 2_147_483_647, needed: 8_589_934_588, .. })
    ));
    let relation = payload(&[b"R", &1u32.to_be_bytes(), b"s\0t\0d", &2i16.to_be_bytes(), &[0; 19]]);
    assert!(matches!(
        decode(&relation),
        Err(DecodeError::CountTooLarge { count: 2, needed: 20, available: 19, .. })
    ));
}

#[test]
fn unexpected_tuple_markers_and_value_kinds_are_rejected() {
    let insert = payload(&[b"I", &1u32.to_be_bytes(), b"K", &0i16.to_be_bytes()]);
    assert_eq!(
        decode(&insert).unwrap_err().to_string(),
        "invalid insert message: unexpected byte 0x4b ('K') for tuple marker at offset 5, \
         expected 'N'"
    );
    let update = payload(&[b"U", &1u32.to_be_bytes(), b"X"]);
    assert!(matches!(
        decode(&update),
        Err(DecodeError::UnexpectedByte { byte: b'X', expected: "'K', 'O' or 'N'", .. })
    ));
    let update = payload(&[b"U", &1u32.to_be_bytes(), b"K", &0i16.to_be_bytes(), b"O"]);
    assert!(matches!(
        decode(&update),
        Err(DecodeError::UnexpectedByte { byte: b'O', offset: 8, expected: "'N'", .. })
    ));
    let delete = payload(&[b"D", &1u32.to_be_bytes(), b"N", &0i16.to_be_bytes()]);
    assert!(matches!(decode(&delete), Err(DecodeError::UnexpectedByte { byte: b'N', .. })));
    let value = payload(&[b"I", &1u32.to_be_bytes(), b"N", &2i16.to_be_bytes(), b"nx"]);
    assert_eq!(
        decode(&value).unwrap_err().to_string(),
        "invalid insert message: unexpected byte 0x78 ('x') for column 1 kind at offset 9, \
         expected 'n', 'u', 't' or 'b'"
    );
}

#[test]
fn invalid_utf8_and_unterminated_names_are_rejected() {
    let bad_utf8 = payload(&[b"Y", &1u32.to_be_bytes(), b"public\0", &[0xc3, 0x28, 0]]);
    let err = decode(&bad_utf8).unwrap_err();
    assert_eq!(err.to_string(), "invalid type message: type name at offset 12 is not valid UTF-8");
    assert!(std::error::Error::source(&err).is_some());
    let unterminated = payload(&[b"O", &1u64.to_be_bytes(), b"east"]);
    assert_eq!(
        decode(&unterminated).unwrap_err().to_string(),
        "invalid origin message: origin name at offset 9 has no terminating zero byte"
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    for (data, _) in hand_built() {
        let longer = payload(&[&data, b"\0"]);
        assert_eq!(
            decode(&longer),
            Err(DecodeError::TrailingBytes {
                kind: decode(&data).unwrap().kind(),
                offset: data.len(),
                count: 1
            })
        );
    }
    let err = decode(&payload(&[b"Y", &1u32.to_be_bytes(), b"\0t\0xyz"])).unwrap_err();
    assert_eq!(err.to_string(), "invalid type message: 3 trailing bytes at offset 8");
}

#[test]
fn logical_message_flags_other_than_transactional_are_ignored() {
    let data = payload(&[b"M", &[0x03], &1u64.to_be_bytes(), b"p\0", &0i32.to_be_bytes()]);
    let Ok(Message::Message(message)) = decode(&data) else { panic!("not a logical message") };
    assert!(message.transactional);
}

fn name() -> impl Strategy<Value = String> {
    "[^\\x00]{0,10}"
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::UnchangedToast),
        vec(any::<u8>(), 0..12).prop_map(|bytes| Value::Text(bytes.into())),
        vec(any::<u8>(), 0..12).prop_map(|bytes| Value::Binary(bytes.into())),
    ]
}

fn tuple() -> impl Strategy<Value = Tuple> {
    vec(value(), 0..6)
}

fn old_tuple() -> impl Strategy<Value = OldTuple> {
    prop_oneof![tuple().prop_map(OldTuple::Key), tuple().prop_map(OldTuple::Full)]
}

fn column() -> impl Strategy<Value = Column> {
    (any::<u8>(), name(), any::<u32>(), any::<i32>()).prop_map(
        |(flags, name, type_oid, type_modifier)| Column { flags, name, type_oid, type_modifier },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any::<i64>(), any::<u32>()).prop_map(|(final_lsn, commit_time, xid)| {
            Message::Begin(Begin { final_lsn, commit_time, xid })
        }),
        (any::<u8>(), any::<u64>(), any::<u64>(), any::<i64>()).prop_map(
            |(flags, commit_lsn, end_lsn, commit_time)| {
                Message::Commit(Commit { flags, commit_lsn, end_lsn, commit_time })
            }
        ),
        (any::<u64>(), name())
            .prop_map(|(commit_lsn, name)| Message::Origin(Origin { commit_lsn, name })),
        (any::<u32>(), name(), name(), any::<u8>(), vec(column(), 0..5)).prop_map(
            |(oid, namespace, name, replica_identity, columns)| {
                Message::Relation(Relation { oid, namespace, name, replica_identity, columns })
            }
        ),
        (any::<u32>(), name(), name()).prop_map(|(oid, namespace, name)| Message::Type(Type {
            oid,
            namespace,
            name
        })),
        (any::<u32>(), tuple())
            .prop_map(|(relation, new)| Message::Insert(Insert { relation, new })),
        (any::<u32>(), proptest::option::of(old_tuple()), tuple())
            .prop_map(|(relation, old, new)| Message::Update(Update { relation, old, new })),
        (any::<u32>(), old_tuple())
            .prop_map(|(relation, old)| Message::Delete(Delete { relation, old })),
        (any::<u8>(), vec(any::<u32>(), 0..5))
            .prop_map(|(options, relations)| Message::Truncate(Truncate { options, relations })),
        (any::<bool>(), any::<u64>(), name(), vec(any::<u8>(), 0..12)).prop_map(
            |(transactional, lsn, prefix, content)| {
                Message::Message(LogicalMessage {
                    transactional,
                    lsn,
                    prefix,
                    content: content.into(),
                })
            }
        ),
    ]
}

proptest! {
    #[test]
    fn decode_inverts_encode(message in message()) {
        prop_assert_eq!(decode(&encode(&message)), Ok(message));
    }

    #[test]
    fn no_strict_prefix_of_an_encoded_message_decodes(message in message()) {
        assert_every_prefix_fails(&encode(&message));
    }

    /// Changing one byte of a valid message must give an error or a message
    /// that encodes to exactly the changed bytes; it must never panic.
    #[test]
    fn a_changed_byte_never_panics_or_decodes_loosely(
        message in message(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut data = encode(&message).to_vec();
        let at = position.index(data.len());
        data[at] = byte;
        if let Ok(decoded) = decode(&Bytes::from(data.clone())) {
            // Only the transactional bit of a logical message's flags is kept.
            if data[0] == b'M' {
                data[1] &= 1;
            }
            prop_assert_eq!(encode(&decoded).to_vec(), data);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..64)) {
        let _ = decode(&Bytes::from(data));
    }
}
