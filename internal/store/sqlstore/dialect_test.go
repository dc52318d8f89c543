package sqlstore

import "testing"

func TestRebindDollar(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"SELECT '?', \"?\" FROM t WHERE x = ?", "SELECT '?', \"?\" FROM t WHERE x = $1"},
		{"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"},
	} {
		if got := rebindDollar(c.in); got != c.want {
			t.Errorf("rebindDollar(%q) = %q, want %q", c.in, got, c.want)
		}
		if q := newQuery(c.in); q.text[Question] != c.in || q.text[Dollar] != c.want {
			t.Errorf("newQuery(%q) = %q", c.in, q.text)
		}
	}
}

func TestLimit(t *testing.T) {
	for in, want := range map[int]int{-1: defaultLimit, 0: defaultLimit, 1: 1, 1000: 1000, 1001: maxLimit, 1 << 40: maxLimit} {
		if got := limit(in); got != want {
			t.Errorf("limit(%d) = %d, want %d", in, got, want)
		}
	}
}
