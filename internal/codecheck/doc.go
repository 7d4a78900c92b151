// Package codecheck holds tests of the repository's own rules for its
// code and documents, which go vet and gofmt do not check: how long a
// function may grow, and that documents say what is true now rather than
// citing issues or dated history. It has no code; make test runs its tests
// with the others.
package codecheck
