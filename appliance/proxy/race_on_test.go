//go:build race

package proxy_test

// race: the tests run with the race detector, which allocates on its own.
const race = true
