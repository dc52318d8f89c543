// Package throttle slows down and then locks out repeated failures, per key:
// the failed-login throttling NIST SP 800-63B asks for, per account and per
// source.
//
// Callers choose the keys; logins use "acct:<tenant>:<email>" and
// "ip:<tenant>:<ip>", with one [Throttle] for each kind since their limits
// differ ([NewPerAccount], [NewPerIP]). Keys are used for the same account
// whether or not it exists, so throttling reveals nothing about which
// accounts exist. The package does not know about HTTP, users or tenants; it
// only counts.
//
// A login handler asks [Throttle.Check] before verifying a password, refuses
// (429 with Retry-After) while a delay or a lock is in force, records
// [Throttle.Fail] for both keys after a failed verification, and calls
// [Throttle.Reset] on the account key after a success (never on the IP key,
// or one valid account would launder an attacker's source).
//
// [Throttle] keeps its counters in memory, so on several nodes each node
// counts on its own. [Limiter] is the seam for an implementation shared
// between nodes (Redis): consumers depend on it, and server wiring picks the
// implementation. The package owns that contract and the in-memory
// implementation only; it does not implement Redis.
package throttle

import "time"

// Limiter is the contract every throttle implementation keeps; see
// [Throttle] for the meaning of each method.
type Limiter interface {
	// Check returns how long this attempt must wait (delay), or, when the
	// key is locked, how long the lock lasts (locked). Both zero: go ahead.
	Check(key string) (delay, locked time.Duration)
	// Fail records a failed attempt.
	Fail(key string)
	// Reset forgets the key's failures.
	Reset(key string)
}

var _ Limiter = (*Throttle)(nil)
