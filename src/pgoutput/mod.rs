//! Decoding of the `pgoutput` logical replication protocol, version 1.
//!
//! This module is pure: bytes in, messages out, no I/O. Every message kind of
//! protocol version 1 is understood (PostgreSQL documentation, section 55.9
//! "Logical Replication Message Formats"). Values are kept as the text (or
//! binary) bytes the server sent; turning them into JSON is the row view's job.
//!
//! Invariants the rest of walguard relies on:
//! - a malformed or truncated message is a [`DecodeError`], never a panic;
//! - the column values of a tuple are in the order of the columns of the
//!   Relation message most recently sent for that relation oid.

mod decode;
pub mod encode;

pub use decode::{DecodeError, Field, decode};

use bytes::Bytes;

/// A relation's oid as sent by the server.
pub type Oid = u32;

/// One decoded `pgoutput` message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Begin(Begin),
    Commit(Commit),
    Origin(Origin),
    Relation(Relation),
    Type(Type),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Truncate(Truncate),
    Message(LogicalMessage),
}

impl Message {
    /// Which kind of message this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Begin(_) => MessageKind::Begin,
            Message::Commit(_) => MessageKind::Commit,
            Message::Origin(_) => MessageKind::Origin,
            Message::Relation(_) => MessageKind::Relation,
            Message::Type(_) => MessageKind::Type,
            Message::Insert(_) => MessageKind::Insert,
            Message::Update(_) => MessageKind::Update,
            Message::Delete(_) => MessageKind::Delete,
            Message::Truncate(_) => MessageKind::Truncate,
            Message::Message(_) => MessageKind::Message,
        }
    }
}

/// The kinds of [`Message`], each identified on the wire by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Begin,
    Commit,
    Origin,
    Relation,
    Type,
    Insert,
    Update,
    Delete,
    Truncate,
    Message,
}

impl MessageKind {
    /// Every kind, in the order of the PostgreSQL documentation.
    pub const ALL: [MessageKind; 10] = [
        MessageKind::Begin,
        MessageKind::Message,
        MessageKind::Commit,
        MessageKind::Origin,
        MessageKind::Relation,
        MessageKind::Type,
        MessageKind::Insert,
        MessageKind::Update,
        MessageKind::Delete,
        MessageKind::Truncate,
    ];

    /// The tag byte that starts a message of this kind.
    pub fn tag(self) -> u8 {
        match self {
            MessageKind::Begin => b'B',
            MessageKind::Commit => b'C',
            MessageKind::Origin => b'O',
            MessageKind::Relation => b'R',
            MessageKind::Type => b'Y',
            MessageKind::Insert => b'I',
            MessageKind::Update => b'U',
            MessageKind::Delete => b'D',
            MessageKind::Truncate => b'T',
            MessageKind::Message => b'M',
        }
    }

    /// The kind a tag byte stands for, if it is one of protocol version 1.
    pub fn from_tag(tag: u8) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|kind| kind.tag() == tag)
    }
}

/// Names the kind as a noun phrase for error messages, such as `update message`.
impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MessageKind::Begin => "begin message",
            MessageKind::Commit => "commit message",
            MessageKind::Origin => "origin message",
            MessageKind::Relation => "relation message",
            MessageKind::Type => "type message",
            MessageKind::Insert => "insert message",
            MessageKind::Update => "update message",
            MessageKind::Delete => "delete message",
            MessageKind::Truncate => "truncate message",
            MessageKind::Message => "logical decoding message",
        })
    }
}

/// Start of a transaction (`B`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    /// The LSN of the transaction's commit record.
    pub final_lsn: u64,
    /// Commit time, microseconds since 2000-01-01 00:00 UTC.
    pub commit_time: i64,
    pub xid: u32,
}

/// End of a transaction (`C`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub flags: u8,
    /// The LSN of the commit record.
    pub commit_lsn: u64,
    /// The LSN just past the commit record: the position to acknowledge.
    pub end_lsn: u64,
    /// Commit time, microseconds since 2000-01-01 00:00 UTC.
    pub commit_time: i64,
}

/// The transaction came from another node (`O`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub commit_lsn: u64,
    pub name: String,
}

/// A table's shape (`R`), sent before the first change to it in a session and
/// again whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: Oid,
    /// The schema; the server sends an empty name for `pg_catalog`.
    pub namespace: String,
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<Column>,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Bit 1 set when the column is part of the replica identity key.
    pub flags: u8,
    pub name: String,
    pub type_oid: Oid,
    pub type_modifier: i32,
}

impl Column {
    /// Whether the column is part of the key (replica identity).
    pub fn is_key(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// A user-defined type's name (`Y`), sent before a relation that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub oid: Oid,
    /// The schema; the server sends an empty name for `pg_catalog`.
    pub namespace: String,
    pub name: String,
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL (`n`).
    Null,
    /// A TOASTed value that did not change (`u`): the server did not send it.
    UnchangedToast,
    /// The value in text format (`t`).
    Text(Bytes),
    /// The value in binary format (`b`, only when binary output was requested).
    Binary(Bytes),
}

/// The values of one row, in the relation's column order.
pub type Tuple = Vec<Value>;

/// The old row sent with an update or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// Only the replica identity key columns (`K`); the others are NULL.
    Key(Tuple),
    /// The whole old row (`O`, REPLICA IDENTITY FULL).
    Full(Tuple),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub relation: Oid,
    pub new: Tuple,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub relation: Oid,
    pub old: Option<OldTuple>,
    pub new: Tuple,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub relation: Oid,
    pub old: OldTuple,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// Bit 1: CASCADE, bit 2: RESTART IDENTITY.
    pub options: u8,
    pub relations: Vec<Oid>,
}

/// A message written with `pg_logical_emit_message` (`M`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalMessage {
    pub transactional: bool,
    pub lsn: u64,
    pub prefix: String,
    pub content: Bytes,
}
