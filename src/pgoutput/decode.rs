//! Decoding of one `pgoutput` message from the bytes of a replication
//! `XLogData` payload.
//!
//! The layouts follow the PostgreSQL 15 documentation, section 55.9 "Logical
//! Replication Message Formats", for protocol version 1: integers are big
//! endian, names are zero-terminated strings, and change messages carry no
//! transaction id (that field exists only for streamed transactions, protocol
//! version 2 and later, which walguard never requests).
//!
//! The input comes from the network, so every length and count is checked
//! against the bytes that remain before it is used: a count can never make the
//! decoder allocate more than the message itself could describe. Column values
//! and logical message contents are slices of the input ([`Bytes::slice`]), not
//! copies. Names are decoded as UTF-8, which assumes a database whose server
//! encoding is `UTF8` (or plain ASCII names).
//!
//! Every [`DecodeError`] is final for its message: the bytes will not decode
//! differently if read again, so the caller should stop and report rather than
//! retry.

use std::fmt;
use std::str::Utf8Error;

use bytes::Bytes;

use super::{
    Begin, Column, Commit, Delete, Insert, LogicalMessage, Message, MessageKind, OldTuple, Origin,
    Relation, Truncate, Tuple, Type, Update, Value,
};

#[cfg(test)]
mod tests;

/// The smallest encoding of one relation column: flags, an empty name's
/// terminator, the type oid and the type modifier.
const MIN_RELATION_COLUMN_LEN: usize = 1 + 1 + 4 + 4;

/// The part of a message that was being decoded when an error occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A field that occurs once in the message, such as `xid` or `prefix`.
    Named(&'static str),
    /// A part of one item of a list, such as `column 3 length`; `index`
    /// counts from 0, in the order the items appear in the message.
    Item { list: &'static str, index: usize, part: &'static str },
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Named(name) => f.write_str(name),
            Field::Item { list, index, part } => write!(f, "{list} {index} {part}"),
        }
    }
}

/// Why a message could not be decoded. Offsets count bytes from the start of
/// the message, where the tag byte is at offset 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input held no byte at all.
    #[error("empty pgoutput message: expected a tag byte")]
    Empty,

    /// The first byte is no tag of protocol version 1; the tags of streamed and
    /// two-phase transactions (version 2 and later) land here too.
    #[error("unknown pgoutput message tag {} for protocol version 1", Printable(*.tag))]
    UnknownTag { tag: u8 },

    /// The message ended before `field`, which needed more bytes.
    #[error(
        "truncated {kind}: needed {needed} bytes for {field} at offset {offset}, \
         {available} left"
    )]
    Truncated { kind: MessageKind, field: Field, offset: usize, needed: usize, available: usize },

    /// A length or count was negative.
    #[error("invalid {kind}: negative {field} {value} at offset {offset}")]
    Negative { kind: MessageKind, field: Field, offset: usize, value: i32 },

    /// A count promised more items than the rest of the message can hold,
    /// even if each took its smallest possible size.
    #[error(
        "invalid {kind}: {field} {count} at offset {offset} needs at least {needed} bytes, \
         {available} left"
    )]
    CountTooLarge {
        kind: MessageKind,
        field: Field,
        offset: usize,
        count: usize,
        needed: usize,
        available: usize,
    },

    /// A name ran to the end of the message without its zero byte.
    #[error("invalid {kind}: {field} at offset {offset} has no terminating zero byte")]
    UnterminatedString { kind: MessageKind, field: Field, offset: usize },

    /// A name was not UTF-8, as from a database with another server encoding.
    #[error("invalid {kind}: {field} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        kind: MessageKind,
        field: Field,
        offset: usize,
        #[source]
        source: Utf8Error,
    },

    /// A tuple marker or value kind byte was not one the layout allows there.
    #[error(
        "invalid {kind}: unexpected byte {} for {field} at offset {offset}, expected {expected}",
        Printable(*.byte)
    )]
    UnexpectedByte {
        kind: MessageKind,
        field: Field,
        offset: usize,
        byte: u8,
        expected: &'static str,
    },

    /// The message was complete before the input ended.
    #[error("invalid {kind}: {count} trailing bytes at offset {offset}")]
    TrailingBytes { kind: MessageKind, offset: usize, count: usize },
}

/// Shows a byte in hex, followed by its character when it is printable ASCII.
struct Printable(u8);

impl fmt::Display for Printable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "0x{:02x} ('{}')", self.0, char::from(self.0))
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// Decodes one `pgoutput` message (protocol version 1). `data` must hold the
/// whole message and nothing else: bytes left over are an error.
pub fn decode(data: &Bytes) -> Result<Message, DecodeError> {
    let Some(&tag) = data.first() else {
        return Err(DecodeError::Empty);
    };
    let kind = MessageKind::from_tag(tag).ok_or(DecodeError::UnknownTag { tag })?;
    let mut reader = Reader { data, pos: 1, kind };
    let message = match kind {
        MessageKind::Begin => Message::Begin(begin(&mut reader)?),
        MessageKind::Commit => Message::Commit(commit(&mut reader)?),
        MessageKind::Origin => Message::Origin(origin(&mut reader)?),
        MessageKind::Relation => Message::Relation(relation(&mut reader)?),
        MessageKind::Type => Message::Type(type_message(&mut reader)?),
        MessageKind::Insert => Message::Insert(insert(&mut reader)?),
        MessageKind::Update => Message::Update(update(&mut reader)?),
        MessageKind::Delete => Message::Delete(delete(&mut reader)?),
        MessageKind::Truncate => Message::Truncate(truncate(&mut reader)?),
        MessageKind::Message => Message::Message(logical_message(&mut reader)?),
    };
    reader.finish()?;
    Ok(message)
}

fn begin(r: &mut Reader<'_>) -> Result<Begin, DecodeError> {
    let final_lsn = r.u64(Field::Named("final lsn"))?;
    let commit_time = r.i64(Field::Named("commit time"))?;
    let xid = r.u32(Field::Named("xid"))?;
    Ok(Begin { final_lsn, commit_time, xid })
}

fn commit(r: &mut Reader<'_>) -> Result<Commit, DecodeError> {
    let flags = r.u8(Field::Named("flags"))?;
    let commit_lsn = r.u64(Field::Named("commit lsn"))?;
    let end_lsn = r.u64(Field::Named("end lsn"))?;
    let commit_time = r.i64(Field::Named("commit time"))?;
    Ok(Commit { flags, commit_lsn, end_lsn, commit_time })
}

fn origin(r: &mut Reader<'_>) -> Result<Origin, DecodeError> {
    let commit_lsn = r.u64(Field::Named("commit lsn"))?;
    let name = r.string(Field::Named("origin name"))?;
    Ok(Origin { commit_lsn, name })
}

fn relation(r: &mut Reader<'_>) -> Result<Relation, DecodeError> {
    let oid = r.u32(Field::Named("relation oid"))?;
    let namespace = r.string(Field::Named("namespace"))?;
    let name = r.string(Field::Named("relation name"))?;
    let replica_identity = r.u8(Field::Named("replica identity"))?;
    let count = r.i16_count(Field::Named("column count"), MIN_RELATION_COLUMN_LEN)?;
    let mut columns = Vec::with_capacity(count);
    for index in 0..count {
        let field = |part| Field::Item { list: "column", index, part };
        columns.push(Column {
            flags: r.u8(field("flags"))?,
            name: r.string(field("name"))?,
            type_oid: r.u32(field("type oid"))?,
            type_modifier: r.i32(field("type modifier"))?,
        });
    }
    Ok(Relation { oid, namespace, name, replica_identity, columns })
}

fn type_message(r: &mut Reader<'_>) -> Result<Type, DecodeError> {
    let oid = r.u32(Field::Named("type oid"))?;
    let namespace = r.string(Field::Named("namespace"))?;
    let name = r.string(Field::Named("type name"))?;
    Ok(Type { oid, namespace, name })
}

fn insert(r: &mut Reader<'_>) -> Result<Insert, DecodeError> {
    let relation = r.u32(Field::Named("relation oid"))?;
    r.expect(b'N', Field::Named("tuple marker"), "'N'")?;
    let new = tuple(r, TupleRole::New)?;
    Ok(Insert { relation, new })
}

fn update(r: &mut Reader<'_>) -> Result<Update, DecodeError> {
    let relation = r.u32(Field::Named("relation oid"))?;
    let marker_field = Field::Named("tuple marker");
    let first = r.u8(marker_field)?;
    let old = old_tuple(r, first)?;
    let marker = if old.is_some() { r.u8(marker_field)? } else { first };
    if marker != b'N' {
        let expected = if old.is_some() { "'N'" } else { "'K', 'O' or 'N'" };
        return Err(r.unexpected(marker, marker_field, expected));
    }
    let new = tuple(r, TupleRole::New)?;
    Ok(Update { relation, old, new })
}

fn delete(r: &mut Reader<'_>) -> Result<Delete, DecodeError> {
    let relation = r.u32(Field::Named("relation oid"))?;
    let marker_field = Field::Named("tuple marker");
    let marker = r.u8(marker_field)?;
    let old =
        old_tuple(r, marker)?.ok_or_else(|| r.unexpected(marker, marker_field, "'K' or 'O'"))?;
    Ok(Delete { relation, old })
}

/// Decodes the old tuple that follows a `K` or `O` marker; any other marker
/// means there is none.
fn old_tuple(r: &mut Reader<'_>, marker: u8) -> Result<Option<OldTuple>, DecodeError> {
    Ok(match marker {
        b'K' => Some(OldTuple::Key(tuple(r, TupleRole::Old)?)),
        b'O' => Some(OldTuple::Full(tuple(r, TupleRole::Old)?)),
        _ => None,
    })
}

fn truncate(r: &mut Reader<'_>) -> Result<Truncate, DecodeError> {
    let count = r.i32_count(Field::Named("relation count"), 4)?;
    let options = r.u8(Field::Named("options"))?;
    let mut relations = Vec::with_capacity(count);
    for index in 0..count {
        relations.push(r.u32(Field::Item { list: "relation", index, part: "oid" })?);
    }
    Ok(Truncate { options, relations })
}

/// Decodes a `pg_logical_emit_message` message. Only bit 1 of its flags is
/// defined (transactional); PostgreSQL 15 sets no other.
fn logical_message(r: &mut Reader<'_>) -> Result<LogicalMessage, DecodeError> {
    let flags = r.u8(Field::Named("flags"))?;
    let lsn = r.u64(Field::Named("lsn"))?;
    let prefix = r.string(Field::Named("prefix"))?;
    let length = r.length(Field::Named("content length"))?;
    let content = r.bytes(length, Field::Named("content"))?;
    Ok(LogicalMessage { transactional: flags & 1 == 1, lsn, prefix, content })
}

/// Which tuple of a change is being decoded, to tell an update's old values
/// from its new ones in errors.
#[derive(Clone, Copy)]
enum TupleRole {
    New,
    Old,
}

/// Decodes TupleData: a column count, then per column a kind byte and, for
/// text and binary values, a length and the bytes.
fn tuple(r: &mut Reader<'_>, role: TupleRole) -> Result<Tuple, DecodeError> {
    let (count_field, list) = match role {
        TupleRole::New => ("column count", "column"),
        TupleRole::Old => ("old column count", "old column"),
    };
    let count = r.i16_count(Field::Named(count_field), 1)?;
    let mut values = Vec::with_capacity(count);
    for index in 0..count {
        let field = |part| Field::Item { list, index, part };
        let value = match r.u8(field("kind"))? {
            b'n' => Value::Null,
            b'u' => Value::UnchangedToast,
            b't' => Value::Text(r.length_prefixed(field("length"), field("value"))?),
            b'b' => Value::Binary(r.length_prefixed(field("length"), field("value"))?),
            byte => return Err(r.unexpected(byte, field("kind"), "'n', 'u', 't' or 'b'")),
        };
        values.push(value);
    }
    Ok(values)
}

/// A cursor over one message that turns every shortfall into a [`DecodeError`]
/// naming the message kind, the field and the offset. `pos` never exceeds
/// `data.len()`.
struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
    kind: MessageKind,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Consumes `needed` bytes and returns the offset where they start.
    fn advance(&mut self, needed: usize, field: Field) -> Result<usize, DecodeError> {
        let available = self.remaining();
        if needed > available {
            let (kind, offset) = (self.kind, self.pos);
            return Err(DecodeError::Truncated { kind, field, offset, needed, available });
        }
        let start = self.pos;
        self.pos += needed;
        Ok(start)
    }

    fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], DecodeError> {
        let start = self.advance(N, field)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.data[start..start + N]);
        Ok(out)
    }

    fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn i16(&mut self, field: Field) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: Field) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: Field) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: Field) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: Field) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads one byte that must equal `wanted`.
    fn expect(
        &mut self,
        wanted: u8,
        field: Field,
        expected: &'static str,
    ) -> Result<(), DecodeError> {
        match self.u8(field)? {
            byte if byte == wanted => Ok(()),
            byte => Err(self.unexpected(byte, field, expected)),
        }
    }

    /// The error for the byte just read, which is none of the `expected` ones.
    fn unexpected(&self, byte: u8, field: Field, expected: &'static str) -> DecodeError {
        DecodeError::UnexpectedByte { kind: self.kind, field, offset: self.pos - 1, byte, expected }
    }

    /// Reads an Int32 length and checks that it is not negative.
    fn length(&mut self, field: Field) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let value = self.i32(field)?;
        usize::try_from(value).map_err(|_| DecodeError::Negative {
            kind: self.kind,
            field,
            offset,
            value,
        })
    }

    /// Reads an Int32 length followed by that many bytes, as a slice of the input.
    fn length_prefixed(&mut self, length: Field, value: Field) -> Result<Bytes, DecodeError> {
        let length = self.length(length)?;
        self.bytes(length, value)
    }

    /// Takes `len` bytes as a slice of the input, without copying.
    fn bytes(&mut self, len: usize, field: Field) -> Result<Bytes, DecodeError> {
        let start = self.advance(len, field)?;
        Ok(self.data.slice(start..start + len))
    }

    /// Reads an Int16 count of items that take at least `min_item_len` bytes each.
    fn i16_count(&mut self, field: Field, min_item_len: usize) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let value = self.i16(field)?;
        self.check_count(i32::from(value), offset, field, min_item_len)
    }

    /// Reads an Int32 count of items that take at least `min_item_len` bytes each.
    fn i32_count(&mut self, field: Field, min_item_len: usize) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let value = self.i32(field)?;
        self.check_count(value, offset, field, min_item_len)
    }

    /// Rejects a count that is negative or that promises more items than the
    /// rest of the message could hold, so that it is safe to allocate for.
    fn check_count(
        &self,
        value: i32,
        offset: usize,
        field: Field,
        min_item_len: usize,
    ) -> Result<usize, DecodeError> {
        let kind = self.kind;
        let count = usize::try_from(value).map_err(|_| DecodeError::Negative {
            kind,
            field,
            offset,
            value,
        })?;
        let needed = count.saturating_mul(min_item_len);
        let available = self.remaining();
        if needed > available {
            return Err(DecodeError::CountTooLarge {
                kind,
                field,
                offset,
                count,
                needed,
                available,
            });
        }
        Ok(count)
    }

    /// Reads a zero-terminated UTF-8 string.
    fn string(&mut self, field: Field) -> Result<String, DecodeError> {
        let (kind, offset) = (self.kind, self.pos);
        let rest = &self.data[offset..];
        let len = rest
            .iter()
            .position(|&byte| byte == 0)
            .ok_or(DecodeError::UnterminatedString { kind, field, offset })?;
        let text = std::str::from_utf8(&rest[..len])
            .map_err(|source| DecodeError::InvalidUtf8 { kind, field, offset, source })?;
        self.pos += len + 1;
        Ok(text.to_owned())
    }

    /// Checks that the whole message was consumed.
    fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { kind: self.kind, offset: self.pos, count }),
        }
    }
}
