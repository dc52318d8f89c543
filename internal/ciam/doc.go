// Package ciam is Gatehouse's vocabulary: typed identifiers, the entities every
// other package speaks (tenants, users, sessions, audit events) and the one
// classified error type. It imports only the standard library and holds no
// behaviour beyond validation of its own values.
package ciam
