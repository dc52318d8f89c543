// Package sqlstore is the one database/sql implementation of the store
// contract. It owns the hand-written SQL (one file per aggregate), the
// translation of driver errors into store.ErrNotFound and store.ErrConflict,
// transaction retries on transient failures, and the goose migration runner.
//
// Engine differences live in a Dialect value supplied by store/sqlite and
// store/postgres (placeholder style, error classification, transaction
// options), and in the migrations each of them embeds. Queries are written once with '?'
// placeholders and rebound for PostgreSQL once, when the package is loaded.
//
// Times are stored as BIGINT microseconds since the Unix epoch, UTC; zero
// times of optional columns are stored as NULL. Every tenant-owned table has
// tenant_id leading its keys and every query filters by the transaction's
// tenant.
package sqlstore
