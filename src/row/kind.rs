//! Which JSON shape a column's text value takes, chosen once per column from its type.
//!
//! A Relation message names each column's type by oid only. For a built-in type
//! (oid below 10000, `FirstGenbkiObjectId`) the client is expected to know the
//! oid; for any other type pgoutput first sends a Type message with a name
//! (PostgreSQL 15 documentation, section 55.5.3 "Logical Replication Protocol
//! Message Flow"). Two facts about that Type message, seen on PostgreSQL 15,
//! shape [`ValueKind::of_named`]:
//! - for a domain it carries the domain's oid but the name of the domain's base
//!   type, so a domain over `int4` arrives as `int4`;
//! - the `pg_catalog` namespace is sent as the empty string.
//!
//! Neither message says what an array's element type is, so the built-in array
//! oids are listed here, taken from `pg_type` (`SELECT oid, typname, typelem
//! FROM pg_type WHERE typcategory = 'A'`). `int2vector` and `oidvector` are
//! left out on purpose: their text form is space separated, not an array
//! literal.

use crate::pgoutput::Oid;

/// The JSON shape of a single (non-array) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// int2, int4, int8, oid, numeric, float4, float8: an exact JSON number,
    /// except `NaN`, `Infinity` and `-Infinity`, which stay strings.
    Number,
    /// bool, sent as `t` or `f`.
    Boolean,
    /// json and jsonb: the parsed document.
    Json,
    /// timestamptz: RFC 3339 text (`2024-02-29T12:00:00.5+00:00`), so that
    /// `format: date-time` accepts it; `infinity` and BC dates stay as sent.
    Timestamptz,
    /// timestamp without time zone: RFC 3339 text read as UTC
    /// (`2024-02-29T12:00:00.5Z`). The type stores no zone, and most
    /// applications write UTC into it; without one `format: date-time` would
    /// flag every row. `infinity` and BC dates stay as sent.
    Timestamp,
    /// time without time zone: RFC 3339 `full-time` read as UTC (`12:00:00Z`),
    /// so that `format: time` accepts it, for the reason given at `Timestamp`.
    Time,
    /// timetz: RFC 3339 `full-time`, the offset written with minutes
    /// (`12:00:00+05:00`).
    Timetz,
    /// Every other type: the text exactly as PostgreSQL sent it.
    Text,
}

/// The JSON shape of a column's value, chosen from the column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Scalar(ScalarKind),
    /// An array literal whose elements take the element type's shape; nested
    /// dimensions become nested JSON arrays.
    Array {
        element: ScalarKind,
        delimiter: u8,
    },
    /// A user-defined type named `_name`, which is how PostgreSQL names array
    /// types, that the catalog read at start did not describe (see
    /// [`crate::type_catalog`]): one created while walguard runs. The Type
    /// message does not say the element type, so elements stay text, even for
    /// an array of a domain over a number. A user may also give a non-array
    /// type such a name: its text is kept as a string when it is not an array
    /// literal, but a value that happens to be one (an enum label `{a}`) is
    /// read as an array until walguard restarts and reads the catalog again.
    UserArray,
}

impl ValueKind {
    /// The kind of a built-in type, or text for an oid this module does not know.
    pub(crate) fn of_builtin(type_oid: Oid) -> Self {
        match array_element(type_oid) {
            Some(element) => ValueKind::Array {
                element: scalar_of_oid(element),
                delimiter: delimiter_of_oid(element),
            },
            None => ValueKind::Scalar(scalar_of_oid(type_oid)),
        }
    }

    /// The kind of a type described by a Type message.
    pub(crate) fn of_named(namespace: &str, name: &str) -> Self {
        let builtin = namespace.is_empty() || namespace == "pg_catalog";
        match name.strip_prefix('_') {
            Some(element) if builtin => ValueKind::Array {
                element: scalar_of_name(element),
                delimiter: if element == "box" { b';' } else { b',' },
            },
            Some(_) => ValueKind::UserArray,
            None if builtin => ValueKind::Scalar(scalar_of_name(name)),
            None => ValueKind::Scalar(ScalarKind::Text),
        }
    }
}

fn scalar_of_oid(type_oid: Oid) -> ScalarKind {
    match type_oid {
        20 | 21 | 23 | 26 | 700 | 701 | 1700 => ScalarKind::Number,
        16 => ScalarKind::Boolean,
        114 | 3802 => ScalarKind::Json,
        1184 => ScalarKind::Timestamptz,
        1114 => ScalarKind::Timestamp,
        1083 => ScalarKind::Time,
        1266 => ScalarKind::Timetz,
        _ => ScalarKind::Text,
    }
}

fn scalar_of_name(name: &str) -> ScalarKind {
    match name {
        "int2" | "int4" | "int8" | "oid" | "float4" | "float8" | "numeric" => ScalarKind::Number,
        "bool" => ScalarKind::Boolean,
        "json" | "jsonb" => ScalarKind::Json,
        "timestamptz" => ScalarKind::Timestamptz,
        "timestamp" => ScalarKind::Timestamp,
        "time" => ScalarKind::Time,
        "timetz" => ScalarKind::Timetz,
        _ => ScalarKind::Text,
    }
}

/// `box` is the only built-in type whose array delimiter is not a comma.
fn delimiter_of_oid(element_oid: Oid) -> u8 {
    if element_oid == 603 { b';' } else { b',' }
}

/// The element type oid of a built-in array type (`typelem`).
fn array_element(array_oid: Oid) -> Option<Oid> {
    let element = match array_oid {
        // Numbers, booleans and json.
        1000 => 16,   // _bool
        1005 => 21,   // _int2
        1007 => 23,   // _int4
        1016 => 20,   // _int8
        1028 => 26,   // _oid
        1021 => 700,  // _float4
        1022 => 701,  // _float8
        1231 => 1700, // _numeric
        199 => 114,   // _json
        3807 => 3802, // _jsonb
        // Character and binary strings.
        1002 => 18,   // _char
        1003 => 19,   // _name
        1009 => 25,   // _text
        1014 => 1042, // _bpchar
        1015 => 1043, // _varchar
        1001 => 17,   // _bytea
        143 => 142,   // _xml
        1263 => 2275, // _cstring
        2201 => 1790, // _refcursor
        // Dates and times.
        1115 => 1114, // _timestamp
        1182 => 1082, // _date
        1183 => 1083, // _time
        1185 => 1184, // _timestamptz
        1187 => 1186, // _interval
        1270 => 1266, // _timetz
        // Network, identifiers, money, bit strings, text search, positions.
        651 => 650,   // _cidr
        1041 => 869,  // _inet
        1040 => 829,  // _macaddr
        775 => 774,   // _macaddr8
        2951 => 2950, // _uuid
        791 => 790,   // _money
        1561 => 1560, // _bit
        1563 => 1562, // _varbit
        3221 => 3220, // _pg_lsn
        4073 => 4072, // _jsonpath
        3643 => 3614, // _tsvector
        3644 => 3642, // _gtsvector
        3645 => 3615, // _tsquery
        1010 => 27,   // _tid
        1011 => 28,   // _xid
        1012 => 29,   // _cid
        271 => 5069,  // _xid8
        1034 => 1033, // _aclitem
        2949 => 2970, // _txid_snapshot
        5039 => 5038, // _pg_snapshot
        // Object identifier aliases, which print names.
        1008 => 24,   // _regproc
        2207 => 2202, // _regprocedure
        2208 => 2203, // _regoper
        2209 => 2204, // _regoperator
        2210 => 2205, // _regclass
        2211 => 2206, // _regtype
        3735 => 3734, // _regconfig
        3770 => 3769, // _regdictionary
        4090 => 4089, // _regnamespace
        4097 => 4096, // _regrole
        4192 => 4191, // _regcollation
        // Geometry.
        629 => 628,  // _line
        719 => 718,  // _circle
        1017 => 600, // _point
        1018 => 601, // _lseg
        1019 => 602, // _path
        1020 => 603, // _box
        1027 => 604, // _polygon
        // Ranges and multiranges.
        3905 => 3904, // _int4range
        3907 => 3906, // _numrange
        3909 => 3908, // _tsrange
        3911 => 3910, // _tstzrange
        3913 => 3912, // _daterange
        3927 => 3926, // _int8range
        6150 => 4451, // _int4multirange
        6151 => 4532, // _nummultirange
        6152 => 4533, // _tsmultirange
        6153 => 4534, // _tstzmultirange
        6155 => 4535, // _datemultirange
        6157 => 4536, // _int8multirange
        // Row types of system catalogs below 10000 (no Type message for them).
        210 => 71, // _pg_type
        270 => 75, // _pg_attribute
        272 => 81, // _pg_proc
        273 => 83, // _pg_class
        _ => return None,
    };
    Some(element)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(element: ScalarKind) -> ValueKind {
        ValueKind::Array { element, delimiter: b',' }
    }

    #[test]
    fn builtin_numbers_booleans_json_and_timestamptz_have_their_own_kinds() {
        for oid in [20, 21, 23, 26, 700, 701, 1700] {
            assert_eq!(ValueKind::of_builtin(oid), ValueKind::Scalar(ScalarKind::Number), "{oid}");
        }
        assert_eq!(ValueKind::of_builtin(16), ValueKind::Scalar(ScalarKind::Boolean));
        assert_eq!(ValueKind::of_builtin(114), ValueKind::Scalar(ScalarKind::Json));
        assert_eq!(ValueKind::of_builtin(3802), ValueKind::Scalar(ScalarKind::Json));
        assert_eq!(ValueKind::of_builtin(1184), ValueKind::Scalar(ScalarKind::Timestamptz));
    }

    #[test]
    fn other_builtin_types_are_text() {
        // text, varchar, uuid, date, inet, money, xid, int2vector, oidvector.
        for oid in [25, 1043, 2950, 1082, 869, 790, 28, 22, 30] {
            assert_eq!(ValueKind::of_builtin(oid), ValueKind::Scalar(ScalarKind::Text), "{oid}");
        }
    }

    #[test]
    fn builtin_arrays_take_their_element_kind() {
        assert_eq!(ValueKind::of_builtin(1000), array(ScalarKind::Boolean));
        for oid in [1005, 1007, 1016, 1028, 1021, 1022, 1231] {
            assert_eq!(ValueKind::of_builtin(oid), array(ScalarKind::Number), "{oid}");
        }
        assert_eq!(ValueKind::of_builtin(199), array(ScalarKind::Json));
        assert_eq!(ValueKind::of_builtin(3807), array(ScalarKind::Json));
        for oid in [1009, 1015, 2951, 1182, 1041, 3905] {
            assert_eq!(ValueKind::of_builtin(oid), array(ScalarKind::Text), "{oid}");
        }
        assert_eq!(ValueKind::of_builtin(1185), array(ScalarKind::Timestamptz));
        assert_eq!(ValueKind::of_builtin(1115), array(ScalarKind::Timestamp));
        assert_eq!(ValueKind::of_builtin(1183), array(ScalarKind::Time));
        assert_eq!(ValueKind::of_builtin(1270), array(ScalarKind::Timetz));
    }

    #[test]
    fn times_without_zone_have_their_own_kinds_by_oid_and_by_name() {
        assert_eq!(ValueKind::of_builtin(1114), ValueKind::Scalar(ScalarKind::Timestamp));
        assert_eq!(ValueKind::of_builtin(1083), ValueKind::Scalar(ScalarKind::Time));
        assert_eq!(ValueKind::of_builtin(1266), ValueKind::Scalar(ScalarKind::Timetz));
        assert_eq!(ValueKind::of_named("", "timestamp"), ValueKind::Scalar(ScalarKind::Timestamp));
        assert_eq!(ValueKind::of_named("", "timetz"), ValueKind::Scalar(ScalarKind::Timetz));
    }

    #[test]
    fn box_arrays_use_a_semicolon_delimiter() {
        let expected = ValueKind::Array { element: ScalarKind::Text, delimiter: b';' };
        assert_eq!(ValueKind::of_builtin(1020), expected);
        assert_eq!(ValueKind::of_named("", "_box"), expected);
    }

    #[test]
    fn domain_over_builtin_type_takes_the_base_type_kind() {
        assert_eq!(ValueKind::of_named("", "int4"), ValueKind::Scalar(ScalarKind::Number));
        assert_eq!(ValueKind::of_named("pg_catalog", "jsonb"), ValueKind::Scalar(ScalarKind::Json));
        assert_eq!(ValueKind::of_named("", "_int4"), array(ScalarKind::Number));
        assert_eq!(ValueKind::of_named("", "_pg_class"), array(ScalarKind::Text));
    }

    #[test]
    fn user_types_are_text_and_user_arrays_are_recognised_by_name() {
        assert_eq!(ValueKind::of_named("public", "mood"), ValueKind::Scalar(ScalarKind::Text));
        assert_eq!(ValueKind::of_named("public", "int4"), ValueKind::Scalar(ScalarKind::Text));
        assert_eq!(ValueKind::of_named("public", "_mood"), ValueKind::UserArray);
    }
}
