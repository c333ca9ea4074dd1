package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP socket with raw system calls, which do not
// tell the Go scheduler that they run: the socket is non-blocking, so a
// call never waits (EAGAIN hands the wait to the poller, as the net
// package does), and lasts microseconds. Through the net package every
// read and write enters and leaves the scheduler's syscall state, and a
// loopback write long enough to be seen there makes the runtime's monitor
// thread take the processor back and keep waking every 20 µs: on one core
// that was a tenth of canaryd's CPU time under load, and nginx pays
// nothing like it. Deadlines hold as before: the waits are the poller's.
//
// What it saves, measured with make bench-nginx (scripts/bench-nginx.sh,
// canaryd and nginx side by side on one pinned core) and perf record: the
// monitor thread went from 11.6% of canaryd's CPU to 0.3%, context
// switches from 17% to 7%, and the CPU per request from 28.4 to 24.4 µs
// (-14%, the median of three alternating rounds). The buffers are passed
// to the kernel through unsafe.Pointer, as syscall.Read does itself; only
// Linux has it (the _linux suffix is its build tag), elsewhere
// rawio_other.go uses the net.Conn.
//
// Its functions are made once per connection, so that a call allocates
// nothing.
type rawIO struct {
	rc      syscall.RawConn // nil: use the net.Conn
	r, w    rawOp           // a read and a write may run at once (a tunnel)
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

// rawOp is one direction's call in progress.
type rawOp struct {
	buf []byte
	n   int
	err error
}

// init prepares r for c; r stays unused when c is not a TCP socket.
func (r *rawIO) init(c net.Conn) {
	r.rc = nil
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	r.rc = rc
	if r.readFn == nil {
		r.readFn, r.writeFn = r.doRead, r.doWrite
	}
}

func (r *rawIO) read(c net.Conn, b []byte) (int, error) {
	if r.rc == nil || len(b) == 0 {
		return c.Read(b)
	}
	r.r = rawOp{buf: b}
	err := r.rc.Read(r.readFn)
	n, rerr := r.r.n, r.r.err
	r.r = rawOp{}
	if err != nil {
		return n, err
	}
	return n, opError("read", c, rerr)
}

func (r *rawIO) doRead(fd uintptr) bool {
	op := &r.r
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&op.buf[0])), uintptr(len(op.buf)))
		switch e {
		case 0:
			if op.n = int(n); n == 0 {
				op.err = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			op.err = os.NewSyscallError("read", e)
			return true
		}
	}
}

func (r *rawIO) write(c net.Conn, b []byte) (int, error) {
	if r.rc == nil || len(b) == 0 {
		return c.Write(b)
	}
	r.w = rawOp{buf: b}
	err := r.rc.Write(r.writeFn)
	n, werr := r.w.n, r.w.err
	r.w = rawOp{}
	if err != nil {
		return n, err
	}
	return n, opError("write", c, werr)
}

// doWrite sends all of buf, waiting for the poller between parts. MSG_NOSIGNAL:
// a peer gone is EPIPE, never a signal.
func (r *rawIO) doWrite(fd uintptr) bool {
	op := &r.w
	for op.n < len(op.buf) {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&op.buf[op.n])), uintptr(len(op.buf)-op.n),
			syscall.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			op.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			op.err = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}

// opError wraps err as the net package would, so that callers' checks
// (a reset, a timeout, EOF) see what they always saw.
func opError(op string, c net.Conn, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
