//go:build !faults

// Package crashpoint lets the fault tests (make faults) kill the process with
// SIGKILL at a named moment of an upload, to show that nothing is lost
// whenever a crash comes. Built without the faults tag, as every release is,
// Hit does nothing and costs nothing.
package crashpoint

// Hit would kill the process if the fault tests named this point.
func Hit(string) {}
