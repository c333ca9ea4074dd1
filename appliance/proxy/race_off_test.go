//go:build !race

package proxy_test

const race = false
