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
// counts on its own. [Shared] applies the same rules with the counters in
// Redis, one atomic script per operation, so every node counts together;
// while Redis is unreachable it falls back to its Throttle's memory.
// Consumers depend on [Limiter]; the server wiring picks Shared when a
// Redis URL is configured.
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
