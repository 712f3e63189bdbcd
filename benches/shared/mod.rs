//! The benchmark table, shared by the micro-benchmark and the end-to-end run:
//! an orders table of eight columns and a schema file with eight column rules
//! and two CEL rules.

/// The table as SQL.
pub const ORDERS_DDL: &str = "CREATE TABLE orders (
    id         bigint PRIMARY KEY,
    account_id integer NOT NULL,
    amount     numeric(12, 2),
    email      text,
    status     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    note       text,
    meta       jsonb
)";

/// The schema file for the table.
pub const ORDERS_SCHEMA: &str = "
x-table: public.orders
type: object
required: [account_id, email]
properties:
  id:         {type: integer, minimum: 1}
  account_id: {type: integer, minimum: 1}
  amount:     {type: number, minimum: 0, maximum: 1000000}
  email:      {type: string, format: email}
  status:     {enum: [new, paid, shipped, cancelled]}
  created_at: {type: string, format: date-time}
  note:       {type: string, maxLength: 200}
  meta:       {type: object}
x-rules:
  - name: paid_needs_amount
    expr: \"!has(row.status) || row.status != 'paid' || (has(row.amount) && row.amount > 0)\"
  - name: shipped_needs_note
    expr: \"!has(row.status) || row.status != 'shipped' || has(row.note)\"
";

/// SQL that inserts the rows `first..=last` of the benchmark data: every
/// `one_in`-th row is bad (a negative amount), the rest pass every rule.
pub fn insert_rows(first: u64, last: u64, one_in: u64) -> String {
    insert_rows_between(&first.to_string(), &last.to_string(), one_in)
}

/// [`insert_rows`] with the bounds as SQL expressions, for use in a loop.
pub fn insert_rows_between(first: &str, last: &str, one_in: u64) -> String {
    format!(
        "INSERT INTO orders (id, account_id, amount, email, status, note, meta)
         SELECT g, 1 + g % 5000,
                CASE WHEN g % {one_in} = 0 THEN -1 ELSE (g % 900) + 0.5 END,
                'customer' || (g % 5000) || '@example.com',
                (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
                'order ' || g,
                jsonb_build_object('channel', 'web', 'items', g % 7)
         FROM generate_series({first}, {last}) g"
    )
}
