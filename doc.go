// Package gatehouse is the root of the Gatehouse module. The binary is in
// cmd/gatehouse and the code in internal/; docs/architecture.md maps the
// packages. The tests here check the import rules and package docs.
package gatehouse
