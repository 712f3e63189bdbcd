//! Encoding of `pgoutput` messages, the exact inverse of [`decode`].
//!
//! walguard never sends these messages to a server; they exist so that tests,
//! property tests and fuzzing can build payloads from typed messages instead
//! of hand-written bytes, with `decode(&encode(&m)) == Ok(m)` for every message
//! that can be encoded. The layouts are those of the PostgreSQL 15
//! documentation, section 55.9 "Logical Replication Message Formats",
//! protocol version 1.
//!
//! [`decode`]: super::decode()

use bytes::{BufMut, Bytes, BytesMut};

use super::{Message, OldTuple, Tuple, Value};

/// Encodes one message as the server would send it.
///
/// # Panics
///
/// When the message cannot be represented on the wire, which is a bug in the
/// calling test rather than a property of any input: a name or prefix that
/// contains a zero byte, more than `i16::MAX` columns, more than `i32::MAX`
/// truncated relations, or a value or content longer than `i32::MAX` bytes.
pub fn encode(msg: &Message) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(msg.kind().tag());
    match msg {
        Message::Begin(begin) => {
            out.put_u64(begin.final_lsn);
            out.put_i64(begin.commit_time);
            out.put_u32(begin.xid);
        }
        Message::Commit(commit) => {
            out.put_u8(commit.flags);
            out.put_u64(commit.commit_lsn);
            out.put_u64(commit.end_lsn);
            out.put_i64(commit.commit_time);
        }
        Message::Origin(origin) => {
            out.put_u64(origin.commit_lsn);
            put_string(&mut out, &origin.name);
        }
        Message::Relation(relation) => {
            out.put_u32(relation.oid);
            put_string(&mut out, &relation.namespace);
            put_string(&mut out, &relation.name);
            out.put_u8(relation.replica_identity);
            out.put_i16(i16_count(relation.columns.len()));
            for column in &relation.columns {
                out.put_u8(column.flags);
                put_string(&mut out, &column.name);
                out.put_u32(column.type_oid);
                out.put_i32(column.type_modifier);
            }
        }
        Message::Type(ty) => {
            out.put_u32(ty.oid);
            put_string(&mut out, &ty.namespace);
            put_string(&mut out, &ty.name);
        }
        Message::Insert(insert) => {
            out.put_u32(insert.relation);
            out.put_u8(b'N');
            put_tuple(&mut out, &insert.new);
        }
        Message::Update(update) => {
            out.put_u32(update.relation);
            if let Some(old) = &update.old {
                put_old_tuple(&mut out, old);
            }
            out.put_u8(b'N');
            put_tuple(&mut out, &update.new);
        }
        Message::Delete(delete) => {
            out.put_u32(delete.relation);
            put_old_tuple(&mut out, &delete.old);
        }
        Message::Truncate(truncate) => {
            out.put_i32(i32_len(truncate.relations.len(), "truncated relation count"));
            out.put_u8(truncate.options);
            for &oid in &truncate.relations {
                out.put_u32(oid);
            }
        }
        Message::Message(message) => {
            out.put_u8(u8::from(message.transactional));
            out.put_u64(message.lsn);
            put_string(&mut out, &message.prefix);
            out.put_i32(i32_len(message.content.len(), "logical message content length"));
            out.put_slice(&message.content);
        }
    }
    out.freeze()
}

fn put_old_tuple(out: &mut BytesMut, old: &OldTuple) {
    let (marker, values) = match old {
        OldTuple::Key(values) => (b'K', values),
        OldTuple::Full(values) => (b'O', values),
    };
    out.put_u8(marker);
    put_tuple(out, values);
}

fn put_tuple(out: &mut BytesMut, values: &Tuple) {
    out.put_i16(i16_count(values.len()));
    for value in values {
        match value {
            Value::Null => out.put_u8(b'n'),
            Value::UnchangedToast => out.put_u8(b'u'),
            Value::Text(bytes) => put_value_bytes(out, b't', bytes),
            Value::Binary(bytes) => put_value_bytes(out, b'b', bytes),
        }
    }
}

fn put_value_bytes(out: &mut BytesMut, kind: u8, bytes: &[u8]) {
    out.put_u8(kind);
    out.put_i32(i32_len(bytes.len(), "column value length"));
    out.put_slice(bytes);
}

/// Writes a zero-terminated string, which cannot itself hold a zero byte.
fn put_string(out: &mut BytesMut, text: &str) {
    assert!(!text.contains('\0'), "cannot encode {text:?}: pgoutput strings end at a zero byte");
    out.put_slice(text.as_bytes());
    out.put_u8(0);
}

fn i16_count(len: usize) -> i16 {
    i16::try_from(len).unwrap_or_else(|_| panic!("cannot encode {len} columns: at most 32767"))
}

fn i32_len(len: usize, what: &str) -> i32 {
    i32::try_from(len).unwrap_or_else(|_| panic!("cannot encode {what} {len}: above i32::MAX"))
}
