//go:build unix

package journal

import "syscall"

// newBlock returns size zeroed bytes in memory of their own, outside the Go
// heap: the journal's blocks then do not count toward the heap the garbage
// collector lets grow before it runs, and the kernel gives the pages only
// as records reach them. A block holds no pointers, so the collector needs
// never look in it.
func newBlock(size int) []byte {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, size)
	}
	return mem
}

// freeBlock gives a block's memory back to the system.
func freeBlock(mem []byte) {
	syscall.Munmap(mem) // a block from make is not mapped, and stays the collector's
}
