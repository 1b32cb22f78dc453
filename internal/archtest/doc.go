// Package archtest holds only a test: it reads the module's real import
// graph with `go list` and fails, naming the file and the import, when a
// package crosses a line that ../shared/ARCHITECTURE.md ("Rooms (packages)
// and who may enter whom") draws. The rooms and the rules are two small
// tables in arch_test.go: a new module or protocol adapter is one row.
package archtest
