//go:build !unix

package journal

func newSlots(n int) []slot { return make([]slot, n) }
