//! The relation cache: each published table's shape, by oid, as the stream last
//! described it, with what the row view needs precomputed.
//!
//! Protocol facts it relies on (PostgreSQL 15 documentation, section 55.5.3
//! "Logical Replication Protocol Message Flow"):
//! - Insert, Update, Delete and Truncate name a relation only by oid. Before the
//!   first change to a relation in a session the server sends a Relation
//!   message, and sends another only when the relation's definition may have
//!   changed. It never resends one because the client forgot it, so the cache
//!   keeps every relation for the whole session: it is never an LRU, since an
//!   evicted relation would leave its rows undecodable.
//! - A resent Relation message may describe the same shape (the server resends
//!   after any invalidation of the table's cache entry), so [`RelationChange`]
//!   tells a real change, which is a schema drift, from a repeat.
//! - A column's type is an oid. For a type that is not built in, a Type message
//!   naming it comes before the Relation message that uses it.
//! - All of this holds within one session only: a new connection starts from
//!   nothing and resends everything, so [`RelationCache::clear`] is called on
//!   reconnect.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::pgoutput::{Oid, Relation, Type};
use crate::row::ValueKind;

/// What applying a Relation message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationChange {
    /// The relation was not known in this session.
    New,
    /// The relation was known with exactly this shape.
    Unchanged,
    /// The relation was known with another shape (columns, their types or key
    /// flags, its name or its replica identity).
    Changed { old: Relation, new: Relation },
}

/// A relation with what the row view needs precomputed. Only the cache builds
/// one, and it hands out shared references, so `names`, `kinds` and
/// `key_columns` always match `relation.columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRelation {
    /// The Relation message as received.
    pub relation: Relation,
    /// `namespace.name`, unquoted, as in schema file names and error messages.
    pub qualified_name: String,
    /// The column names, in column order, shared with every row built from
    /// this relation.
    pub names: Vec<Arc<str>>,
    /// Whether no two columns share a name, as PostgreSQL ensures.
    pub unique_names: bool,
    /// One kind per column, in column order.
    pub kinds: Vec<ValueKind>,
    /// Indexes of the key (replica identity) columns, ascending: every column
    /// under REPLICA IDENTITY FULL, none under NOTHING.
    pub key_columns: Vec<usize>,
}

impl CachedRelation {
    fn new(relation: Relation, types: &HashMap<Oid, ValueKind>) -> Self {
        let qualified_name = format!("{}.{}", relation.namespace, relation.name);
        let names: Vec<Arc<str>> =
            relation.columns.iter().map(|column| Arc::from(column.name.as_str())).collect();
        let unique_names = names.iter().collect::<HashSet<_>>().len() == names.len();
        let kinds = kinds_of(&relation, types);
        let key_columns =
            relation.columns.iter().enumerate().filter(|(_, c)| c.is_key()).map(|(i, _)| i);
        Self {
            key_columns: key_columns.collect(),
            relation,
            qualified_name,
            names,
            unique_names,
            kinds,
        }
    }
}

fn kinds_of(relation: &Relation, types: &HashMap<Oid, ValueKind>) -> Vec<ValueKind> {
    let kind = |oid| types.get(&oid).copied().unwrap_or_else(|| ValueKind::of_builtin(oid));
    relation.columns.iter().map(|c| kind(c.type_oid)).collect()
}

/// Relations and user-defined types seen in the current replication session.
#[derive(Debug, Default)]
pub struct RelationCache {
    relations: HashMap<Oid, CachedRelation>,
    types: HashMap<Oid, ValueKind>,
    /// Kinds read from the catalog, which win over a Type message's name;
    /// kept across sessions.
    catalog: HashMap<Oid, ValueKind>,
}

impl RelationCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes these kinds for user-defined types from now on, whatever their
    /// Type messages say (see [`crate::type_catalog`]).
    pub fn set_catalog(&mut self, catalog: HashMap<Oid, ValueKind>) {
        self.catalog = catalog;
    }

    /// Records a Relation message and says how it compares with the one before.
    pub fn apply_relation(&mut self, relation: Relation) -> RelationChange {
        let oid = relation.oid;
        let cached = CachedRelation::new(relation, &self.types);
        let change = match self.relations.get(&oid) {
            None => RelationChange::New,
            Some(old) if old.relation == cached.relation => RelationChange::Unchanged,
            Some(old) => {
                RelationChange::Changed { old: old.relation.clone(), new: cached.relation.clone() }
            }
        };
        self.relations.insert(oid, cached);
        change
    }

    /// Records a Type message. Relations already cached that use the type are
    /// updated too, in case the server ever sends the type after the relation.
    pub fn apply_type(&mut self, ty: Type) {
        let kind = match self.catalog.get(&ty.oid) {
            Some(&kind) => kind,
            None => ValueKind::of_named(&ty.namespace, &ty.name),
        };
        self.types.insert(ty.oid, kind);
        for cached in self.relations.values_mut() {
            if cached.relation.columns.iter().any(|c| c.type_oid == ty.oid) {
                cached.kinds = kinds_of(&cached.relation, &self.types);
            }
        }
    }

    /// The relation with this oid, if a Relation message for it arrived in this
    /// session.
    pub fn get(&self, oid: Oid) -> Option<&CachedRelation> {
        self.relations.get(&oid)
    }

    /// Forgets everything; called when a new replication session starts.
    pub fn clear(&mut self) {
        self.relations.clear();
        self.types.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::Column;
    use crate::row::ScalarKind;

    fn column(name: &str, type_oid: Oid, flags: u8) -> Column {
        Column { flags, name: name.to_owned(), type_oid, type_modifier: -1 }
    }

    fn orders(columns: Vec<Column>) -> Relation {
        Relation {
            oid: 16384,
            namespace: "public".to_owned(),
            name: "orders".to_owned(),
            replica_identity: b'd',
            columns,
        }
    }

    fn ty(oid: Oid, namespace: &str, name: &str) -> Type {
        Type { oid, namespace: namespace.to_owned(), name: name.to_owned() }
    }

    #[test]
    fn first_relation_message_is_new() {
        let mut cache = RelationCache::new();
        assert_eq!(cache.apply_relation(orders(vec![column("id", 20, 1)])), RelationChange::New);
        let cached = cache.get(16384).unwrap();
        assert_eq!(cached.qualified_name, "public.orders");
        assert_eq!(cached.relation.columns.len(), 1);
        assert!(cache.get(16385).is_none());
    }

    #[test]
    fn identical_relation_message_is_unchanged() {
        let mut cache = RelationCache::new();
        cache.apply_relation(orders(vec![column("id", 20, 1)]));
        let change = cache.apply_relation(orders(vec![column("id", 20, 1)]));
        assert_eq!(change, RelationChange::Unchanged);
    }

    #[test]
    fn changed_column_type_is_reported_with_both_shapes() {
        let mut cache = RelationCache::new();
        cache.apply_relation(orders(vec![column("id", 20, 1), column("amount", 1700, 0)]));
        let change =
            cache.apply_relation(orders(vec![column("id", 20, 1), column("amount", 25, 0)]));
        let RelationChange::Changed { old, new } = change else { panic!("expected a change") };
        assert_eq!(old.columns[1].type_oid, 1700);
        assert_eq!(new.columns[1].type_oid, 25);
        assert_eq!(cache.get(16384).unwrap().kinds[1], ValueKind::Scalar(ScalarKind::Text));
    }

    #[test]
    fn added_column_and_changed_key_are_changes() {
        let mut cache = RelationCache::new();
        cache.apply_relation(orders(vec![column("id", 20, 1)]));
        let added = cache.apply_relation(orders(vec![column("id", 20, 1), column("x", 25, 0)]));
        assert!(matches!(added, RelationChange::Changed { .. }));
        let rekeyed = cache.apply_relation(orders(vec![column("id", 20, 0), column("x", 25, 1)]));
        assert!(matches!(rekeyed, RelationChange::Changed { .. }));
        assert_eq!(cache.get(16384).unwrap().key_columns, &[1]);
    }

    #[test]
    fn kinds_and_key_columns_are_precomputed() {
        let mut cache = RelationCache::new();
        let columns = vec![
            column("tenant", 23, 1),
            column("note", 25, 0),
            column("id", 2950, 1),
            column("flags", 1000, 0),
        ];
        cache.apply_relation(orders(columns));
        let cached = cache.get(16384).unwrap();
        assert_eq!(cached.key_columns, &[0, 2]);
        assert_eq!(
            cached.kinds,
            &[
                ValueKind::Scalar(ScalarKind::Number),
                ValueKind::Scalar(ScalarKind::Text),
                ValueKind::Scalar(ScalarKind::Text),
                ValueKind::Array { element: ScalarKind::Boolean, delimiter: b',' },
            ]
        );
    }

    #[test]
    fn type_messages_give_user_types_their_kind() {
        let mut cache = RelationCache::new();
        cache.apply_type(ty(16385, "public", "mood"));
        cache.apply_type(ty(16384, "public", "_mood"));
        cache.apply_type(ty(16392, "", "int4")); // a domain over int4
        let columns = vec![column("m", 16385, 0), column("ms", 16384, 0), column("p", 16392, 0)];
        cache.apply_relation(orders(columns));
        assert_eq!(
            cache.get(16384).unwrap().kinds,
            &[
                ValueKind::Scalar(ScalarKind::Text),
                ValueKind::UserArray,
                ValueKind::Scalar(ScalarKind::Number),
            ]
        );
    }

    #[test]
    fn type_arriving_after_its_relation_still_applies() {
        let mut cache = RelationCache::new();
        cache.apply_relation(orders(vec![column("ms", 16384, 0)]));
        assert_eq!(cache.get(16384).unwrap().kinds, &[ValueKind::Scalar(ScalarKind::Text)]);
        cache.apply_type(ty(16384, "public", "_mood"));
        assert_eq!(cache.get(16384).unwrap().kinds, &[ValueKind::UserArray]);
    }

    #[test]
    fn catalog_kinds_win_over_type_message_names() {
        let number_array = ValueKind::Array { element: ScalarKind::Number, delimiter: b',' };
        let catalog = HashMap::from([(16391, number_array)]);
        let mut cache = RelationCache::new();
        cache.set_catalog(catalog);
        cache.apply_type(ty(16391, "public", "_posint"));
        cache.apply_type(ty(16384, "public", "_mood"));
        cache.apply_relation(orders(vec![column("p", 16391, 0), column("m", 16384, 0)]));
        assert_eq!(cache.get(16384).unwrap().kinds, &[number_array, ValueKind::UserArray]);
    }

    #[test]
    fn clear_forgets_relations_and_types() {
        let mut cache = RelationCache::new();
        cache.apply_type(ty(16384, "public", "_mood"));
        cache.apply_relation(orders(vec![column("ms", 16384, 0)]));
        cache.clear();
        assert!(cache.get(16384).is_none());
        assert_eq!(cache.apply_relation(orders(vec![column("ms", 16384, 0)])), RelationChange::New);
        assert_eq!(cache.get(16384).unwrap().kinds, &[ValueKind::Scalar(ScalarKind::Text)]);
    }
}
