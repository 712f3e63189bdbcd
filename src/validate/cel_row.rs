//! The row as the CEL value `row` (and `old`): a map that converts a column
//! only when a rule selects it.
//!
//! Most rules read a few columns by name (`row.status`, `has(row.note)`), so
//! building a whole CEL map for every row would cost more than evaluating the
//! rules. A field selection looks the column up in the row's JSON object and
//! converts that value alone, borrowing its strings. Anything that needs the
//! map as a whole (`size(row)`, `'note' in row`, comprehensions, equality) gets
//! a full CEL map, built once per row on first need. It is not a built-in
//! value to the interpreter, which asks every selected value whether it is an
//! optional: were it one, the first selection would build the whole map. So
//! `row == {...}` compares as maps do, but `{...} == row` is false.

use std::collections::HashMap;
use std::sync::OnceLock;

use cel::ExecutionError;
use cel::common::traits::{Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt, MAP_TYPE,
    Type,
};
use cel::common::value::{Builtin, CowVal, Val};
use serde_json::{Number, Value};

use crate::row::{Cell, Values};
use crate::schema::RowNumber;

/// A row's non-NULL columns as a CEL map.
#[derive(Debug)]
pub(super) struct CelRow<'r> {
    values: &'r Values<'r>,
    full: OnceLock<CelMap<'r>>,
}

impl<'r> CelRow<'r> {
    pub(super) fn new(values: &'r Values<'r>) -> Self {
        CelRow { values, full: OnceLock::new() }
    }

    /// The whole row as a built-in CEL map.
    fn full(&self) -> &CelMap<'r> {
        self.full.get_or_init(|| cel_map(self.values.iter()))
    }
}

impl Val for CelRow<'_> {
    fn get_type(&self) -> &Type {
        <Self as Val>::cel_type()
    }

    fn cel_type() -> &'static Type {
        &MAP_TYPE
    }

    fn as_indexer<'b, 'w>(&'b self) -> Option<&'b (dyn Indexer + 'w)>
    where
        Self: 'w,
    {
        Some(self)
    }

    fn as_container(&self) -> Option<&dyn Container> {
        self.full().as_container()
    }

    fn as_iterable<'b, 'w>(&'b self) -> Option<&'b (dyn Iterable + 'w)>
    where
        Self: 'w,
    {
        self.full().as_iterable()
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        self.full().as_sizer()
    }

    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        self.full().as_zeroer()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        self.full().equals(other)
    }

    fn clone_as_boxed<'w>(&self) -> Box<dyn Val + 'w>
    where
        Self: 'w,
    {
        Box::new(self.full().clone())
    }

    fn into_builtin<'w>(self: Box<Self>) -> Option<Builtin<'w>>
    where
        Self: 'w,
    {
        Some(Builtin::Map(self.full().clone()))
    }
}

impl Indexer for CelRow<'_> {
    fn get<'b, 'w>(&'b self, key: &dyn Val) -> Result<CowVal<'b, 'w>, ExecutionError>
    where
        Self: 'w,
    {
        let Some(name) = key.downcast_ref::<CelString>() else {
            return self.full().get(key);
        };
        match self.values.cell(name.inner()) {
            Some(cell) if !cell.is_null() => Ok(CowVal::Owned(cel_value(cell))),
            _ => Err(ExecutionError::no_such_key(name.inner())),
        }
    }

    fn steal<'w>(self: Box<Self>, key: &dyn Val) -> Result<Box<dyn Val + 'w>, ExecutionError>
    where
        Self: 'w,
    {
        self.get(key).map(CowVal::into_owned)
    }
}

/// A CEL map borrowing from a row's columns or a JSON object's members, NULL
/// ones left out.
fn cel_map<'v>(members: impl ExactSizeIterator<Item = (&'v str, Cell<'v>)>) -> CelMap<'v> {
    let mut map: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = HashMap::with_capacity(members.len());
    for (name, cell) in members {
        if !cell.is_null() {
            map.insert(CelMapKey::from(name), cel_value(cell));
        }
    }
    CelMap::from(map)
}

/// A CEL value borrowing from a cell of the row.
fn cel_value(cell: Cell<'_>) -> Box<dyn Val + '_> {
    let value = match cell {
        Cell::Text(text) => return Box::new(CelString::from(text)),
        Cell::Int(int, _) => return Box::new(CelInt::from(int)),
        Cell::Value(value) => value,
    };
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(flag) => Box::new(CelBool::from(*flag)),
        Value::Number(number) => cel_number(number),
        Value::String(text) => Box::new(CelString::from(text.as_str())),
        Value::Array(items) => Box::new(CelList::from(
            items.iter().map(|item| cel_value(Cell::Value(item))).collect::<Vec<_>>(),
        )),
        Value::Object(members) => Box::new(cel_map(
            members.iter().map(|(name, value)| (name.as_str(), Cell::Value(value))),
        )),
    }
}

/// `int` if it fits, else `uint`, else `double` (NaN past its range).
fn cel_number(number: &Number) -> Box<dyn Val> {
    match RowNumber::of(number) {
        RowNumber::Int(int) => Box::new(CelInt::from(int)),
        RowNumber::UInt(uint) => Box::new(CelUInt::from(uint)),
        RowNumber::Double(double) => Box::new(CelDouble::from(double.unwrap_or(f64::NAN))),
    }
}
