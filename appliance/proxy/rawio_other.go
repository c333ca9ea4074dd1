//go:build !linux

package proxy

import "net"

// rawIO is the net.Conn's own reads and writes here.
type rawIO struct{}

func (r *rawIO) init(net.Conn) {}

func (r *rawIO) read(c net.Conn, b []byte) (int, error)  { return c.Read(b) }
func (r *rawIO) write(c net.Conn, b []byte) (int, error) { return c.Write(b) }
