// Package restcheck holds tests of conventions every REST route must keep,
// run over all modules' routes together the way cmd/switchboard serves
// them: NUL characters and invalid UTF-8 refused in bodies and parameters,
// data after the JSON body refused, on both stores. The tests walk the echo
// router's own list of routes, so a route added later is checked too (or
// fails the test until it is described). It has no code of its own.
package restcheck
