// Package password owns password credentials: turning a password into an
// argon2id hash and checking one against it (Hasher), the rules a new password
// must meet (Policy), and the list of common passwords those rules refuse
// (Blocklist, embedded in the binary).
//
// It follows NIST SP 800-63B-4: passwords are NFKC-normalised before they are
// counted, hashed or compared; length is counted in characters and never
// truncated; there are no composition rules; common passwords are refused.
// Hashing is argon2id with m=19 MiB, t=2, p=1, stored as a PHC string, and the
// number of hashes computed at once is bounded so that a burst of logins
// queues instead of exhausting memory.
//
// The package does not store credentials, throttle failed attempts or speak
// HTTP; the user service and the transports do. It holds no package-level
// mutable state: every Hasher and Blocklist is built by its constructor.
package password
