//go:build unix

package journal

import (
	"syscall"
	"unsafe"
)

// newSlots returns n zeroed slots in memory of their own, outside the Go
// heap: the ring's size then does not count toward the heap the garbage
// collector lets grow before it runs (25 MiB of ring would let the heap
// take 25 MiB more, with GOGC=100), and the kernel gives the pages only as
// records reach them. A slot holds no pointers, so the collector needs
// never look in it. The memory lives as long as the process; a Journal
// is made once per start.
func newSlots(n int) []slot {
	if n == 0 {
		return nil
	}
	size := n * int(unsafe.Sizeof(slot{}))
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]slot, n)
	}
	return unsafe.Slice((*slot)(unsafe.Pointer(unsafe.SliceData(mem))), n)
}
