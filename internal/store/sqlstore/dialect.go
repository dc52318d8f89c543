package sqlstore

import (
	"database/sql"
	"strconv"
	"strings"
)

// Placeholder is how a driver numbers query parameters.
type Placeholder int

// Placeholder styles.
const (
	Question Placeholder = iota // ?, ?, ? (SQLite)
	Dollar                      // $1, $2, $3 (PostgreSQL)
)

// ErrorClass is what sqlstore needs to know about a driver error.
type ErrorClass int

// Error classes.
const (
	ClassOther       ErrorClass = iota
	ClassUnique                 // a unique or primary key is taken
	ClassForeignKey             // a referenced row does not exist
	ClassTransient              // busy, serialization failure or deadlock: retry the transaction
	ClassUnavailable            // the database cannot be reached or cannot work: tell the caller to come back
)

// Dialect is what differs between database engines.
type Dialect struct {
	Name        string
	Placeholder Placeholder
	// Classify maps a driver error to its class.
	Classify func(error) ErrorClass
	// ErrorAbortsTx is true when any failed statement aborts the whole
	// transaction (PostgreSQL). Statements that may fail on a unique key then
	// run inside a savepoint, so the caller's transaction stays usable.
	ErrorAbortsTx bool
	// ModifyingCTE is true when a WITH clause may hold an UPDATE
	// (PostgreSQL), so two writes can go in one statement.
	ModifyingCTE bool
	// WriteTx and ReadTx are the options of Tx and View transactions.
	WriteTx, ReadTx sql.TxOptions
	// PrepareStatements keeps every statement prepared on each connection
	// after its first use, for drivers that would otherwise parse it anew
	// each time (SQLite; pgx has its own statement cache).
	PrepareStatements bool
}

// query is one SQL statement in every placeholder style.
type query struct {
	text   [2]string
	read   bool // a plain SELECT, allowed in Read
	cached bool // a package-level query, worth keeping prepared
}

// newQuery precomputes s, written with '?' placeholders, for every style.
// It is called only to initialise package-level query values (and for
// IN lists built at run time).
func newQuery(s string) query {
	return query{text: [2]string{Question: s, Dollar: rebindDollar(s)}, read: isSelect(s), cached: true}
}

// dynamicQuery is newQuery for a statement built at run time (an IN list):
// it is not kept prepared.
func dynamicQuery(s string) query {
	q := newQuery(s)
	q.cached = false
	return q
}

func isSelect(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) >= 6 && strings.EqualFold(s[:6], "SELECT")
}

// rebindDollar numbers the '?' placeholders of s outside quoted strings.
func rebindDollar(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
