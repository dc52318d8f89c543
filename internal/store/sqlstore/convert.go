package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// List limits.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

func limit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// zeroMicros is the zero time.Time in microseconds since the Unix epoch.
const zeroMicros = -62135596800 * 1_000_000

// utc returns t as it reads back from the database: UTC, whole microseconds.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// micros encodes a time for a NOT NULL column.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros decodes a NOT NULL time column.
func fromMicros(v int64) time.Time {
	if v == zeroMicros {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// nullMicros encodes a time for a nullable column: the zero time is NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromNullMicros decodes a nullable time column.
func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// nullString stores "" as NULL, for unique columns where empty means absent.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBytes stores an empty slice as NULL, so both dialects read back nil.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// bytesOrNil returns nil for an empty slice, the way nullBytes stores it.
func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode: %w", err)
	}
	return string(b), nil
}

func encodeStrings(s []string) (string, error) {
	if len(s) == 0 {
		return "[]", nil
	}
	return encodeJSON(s)
}

func decodeStrings(s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("sqlstore: decode string list: %w", err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

func encodeMap(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	return encodeJSON(m)
}

func decodeMap(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("sqlstore: decode map: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// cleanText makes text from outside (request headers, audit details) storable
// the same way on every dialect: PostgreSQL refuses invalid UTF-8 and NUL in
// TEXT, SQLite keeps them. Both become U+FFFD.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func cleanStrings(ss []string) {
	for i, s := range ss {
		ss[i] = cleanText(s)
	}
}

// cleanMap returns m with every key and value cleaned; m itself if none needed it.
func cleanMap(m map[string]string) map[string]string {
	dirty := false
	for k, v := range m {
		if cleanText(k) != k || cleanText(v) != v {
			dirty = true
			break
		}
	}
	if !dirty {
		return m
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[cleanText(k)] = cleanText(v) // keys that clean alike collapse; the last wins
	}
	return c
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }
