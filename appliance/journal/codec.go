package journal

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"strconv"
	"time"
)

// A block holds records packed one after another, each as small as its
// differences from the one before make it: the times as deltas, a request
// id that canaryd made as the step of its counter, and a path, user key or
// id prefix already written in the block as a reference to it. A typical
// canary request takes about 20 bytes instead of a fixed slot's 256.
//
// A record is laid out as:
//
//	header      1 byte: id kind (bits 0-1), path cut (bit 2), user key
//	            present (bit 3), method code (bits 4-7, 0: a string follows)
//	time        zigzag varint, nanoseconds after the record before
//	duration    varint, nanoseconds
//	status      zigzag varint, less 200
//	bytes in    zigzag varint
//	bytes out   zigzag varint
//	upstream    varint, index into Journal.names
//	version     varint, the same
//	method      a string, when the code is 0
//	id          none; a string; the counter's step; or a prefix string
//	            and the counter's step (idNone ... idPrefix)
//	user key    a string, when present
//	path        a string
//
// A string is a varint x: an even x is a literal of x/2 bytes that follow;
// an odd x refers to the literal that starts at byte x/2 of the block.
// Every record's fields depend only on the records before it in the same
// block, so a block is read from its start, and dropped whole.

const (
	idNone    = 0 // no request id
	idString  = 1 // the id as a string
	idStep    = 2 // prefix as the id before it, counter a step from its
	idPrefix  = 3 // a new prefix (a string), counter a step from the last
	flagCut   = 1 << 2
	flagKey   = 1 << 3
	methodBit = 4
)

// methods are the request methods a header's code names, from 1.
var methods = [...]string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// maxRecord bounds one encoded record: the header, seven varints of 10
// bytes, and the method, id, key and path as literals with their lengths.
const maxRecord = 1 + 7*10 + (2 + MethodMax) + (2 + IDMax + 10) + (2 + KeyMax) + (2 + PathMax)

// dictSize is how many strings a block's writer remembers, by hash.
const dictSize = 4096

// encoder is the writer's state in the block being filled.
type encoder struct {
	time    int64  // of the record before, 0 at a block's start
	counter uint64 // the last counter of a made id
	prefix  int    // where the last made id's prefix is, -1 for none
	dict    [dictSize]int32
}

func (c *encoder) reset() {
	*c = encoder{prefix: -1}
	for i := range c.dict {
		c.dict[i] = -1
	}
}

// encode appends e's record to the block b, which has room for maxRecord
// more bytes, and returns it; nameUp and nameVer are the interned names.
func (c *encoder) encode(b []byte, e *Entry, nameUp, nameVer uint16) []byte {
	method := e.Method[:min(len(e.Method), MethodMax)]
	id := e.RequestID[:min(len(e.RequestID), IDMax)]
	key := e.UserKey[:min(len(e.UserKey), KeyMax)]
	path := e.Path[:min(len(e.Path), PathMax)]

	h := byte(0)
	prefix, counter, made := madeID(id)
	switch {
	case len(id) == 0:
		h = idNone
	case !made:
		h = idString
	case c.prefix >= 0 && bytes.Equal(literalAt(b, c.prefix), prefix):
		h = idStep
	default:
		h = idPrefix
	}
	if len(path) < len(e.Path) {
		h |= flagCut
	}
	if len(key) > 0 {
		h |= flagKey
	}
	code := methodCode(method)
	h |= code << methodBit
	b = append(b, h)

	t := e.Time.UnixNano()
	b = binary.AppendVarint(b, t-c.time)
	c.time = t
	b = binary.AppendUvarint(b, uint64(max(e.Duration, 0)))
	b = binary.AppendVarint(b, int64(e.Status)-200) // one byte for 2xx
	b = binary.AppendVarint(b, e.BytesIn)
	b = binary.AppendVarint(b, e.BytesOut)
	b = binary.AppendUvarint(b, uint64(nameUp))
	b = binary.AppendUvarint(b, uint64(nameVer))
	if code == 0 {
		b = c.appendString(b, method)
	}
	switch h & 3 {
	case idString:
		b = c.appendString(b, id)
	case idPrefix:
		b, c.prefix = c.appendStringAt(b, prefix)
		fallthrough
	case idStep:
		b = binary.AppendVarint(b, int64(counter-c.counter))
		c.counter = counter
	}
	if len(key) > 0 {
		b = c.appendString(b, key)
	}
	return c.appendString(b, path)
}

func (c *encoder) appendString(b, s []byte) []byte {
	b, _ = c.appendStringAt(b, s)
	return b
}

// appendStringAt appends s as a reference to the same string earlier in
// the block where there is one, as a literal otherwise, and returns where
// the literal it names starts.
func (c *encoder) appendStringAt(b, s []byte) ([]byte, int) {
	if len(s) < 3 { // a reference would be no shorter
		at := len(b)
		return appendLiteral(b, s), at
	}
	slot := &c.dict[hash(s)%dictSize]
	if *slot >= 0 && bytes.Equal(literalAt(b, int(*slot)), s) {
		return binary.AppendUvarint(b, uint64(*slot)<<1|1), int(*slot)
	}
	*slot = int32(len(b))
	at := len(b)
	return appendLiteral(b, s), at
}

func appendLiteral(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

// literalAt returns the literal that starts at byte at of b.
func literalAt(b []byte, at int) []byte {
	if at < 0 || at >= len(b) {
		return nil
	}
	x, n := binary.Uvarint(b[at:])
	if n <= 0 || x&1 != 0 || uint64(len(b)-at-n) < x>>1 {
		return nil
	}
	return b[at+n : at+n+int(x>>1)]
}

var seed = maphash.MakeSeed()

func hash(s []byte) uint64 { return maphash.Bytes(seed, s) }

func methodCode(m []byte) byte {
	for i, s := range methods {
		if string(m) == s {
			return byte(i + 1)
		}
	}
	return 0
}

// madeID splits an id of the form canaryd makes (see the proxy's ids: a
// prefix, a dash and a counter in base 36) into its prefix, dash included,
// and counter. An id that would not come back byte for byte from them,
// such as a counter with a leading zero, is not one.
func madeID(id []byte) (prefix []byte, counter uint64, ok bool) {
	dash := bytes.LastIndexByte(id, '-')
	digits := id[dash+1:]
	if dash < 0 || len(digits) == 0 || len(digits) > 12 || (digits[0] == '0' && len(digits) > 1) {
		return nil, 0, false
	}
	for _, c := range digits {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'z':
			d = c - 'a' + 10
		default:
			return nil, 0, false
		}
		counter = counter*36 + uint64(d)
	}
	return id[:dash+1], counter, true
}

// decoder reads a block's records from its start.
type decoder struct {
	b       []byte
	off     int
	time    int64
	counter uint64
	prefix  []byte
}

// next decodes the record at d.off into r (all but its Seq, and body) and
// reports whether there was one whole.
func (d *decoder) next(r *Record, names []string) bool {
	if d.off >= len(d.b) {
		return false
	}
	h := d.b[d.off]
	d.off++
	dt, ok1 := d.varint()
	dur, ok2 := d.uvarint()
	status, ok3 := d.varint()
	in, ok4 := d.varint()
	out, ok5 := d.varint()
	up, ok6 := d.uvarint()
	ver, ok7 := d.uvarint()
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return false
	}
	d.time += dt
	*r = Record{
		Time: time.Unix(0, d.time).UTC(), Status: int(status + 200), BytesIn: in, BytesOut: out,
		DurationMs: float64(dur) / float64(time.Millisecond),
		Upstream:   nameAt(names, up), Version: nameAt(names, ver), PathTruncated: h&flagCut != 0,
	}
	if code := int(h >> methodBit); code == 0 {
		m, ok := d.string()
		if !ok {
			return false
		}
		r.Method = string(m)
	} else if code <= len(methods) {
		r.Method = methods[code-1]
	}
	switch h & 3 {
	case idString:
		id, ok := d.string()
		if !ok {
			return false
		}
		r.RequestID = string(id)
	case idPrefix:
		p, ok := d.string()
		if !ok {
			return false
		}
		d.prefix = p
		fallthrough
	case idStep:
		step, ok := d.varint()
		if !ok {
			return false
		}
		d.counter += uint64(step)
		var buf [IDMax + 13]byte
		r.RequestID = string(strconv.AppendUint(append(buf[:0], d.prefix...), d.counter, 36))
	}
	if h&flagKey != 0 {
		k, ok := d.string()
		if !ok {
			return false
		}
		r.User = string(k)
	}
	p, ok := d.string()
	r.Path = string(p)
	return ok
}

func (d *decoder) uvarint() (uint64, bool) {
	x, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		return 0, false
	}
	d.off += n
	return x, true
}

func (d *decoder) varint() (int64, bool) {
	x, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		return 0, false
	}
	d.off += n
	return x, true
}

func (d *decoder) string() ([]byte, bool) {
	x, ok := d.uvarint()
	if !ok {
		return nil, false
	}
	if x&1 != 0 {
		s := literalAt(d.b, int(x>>1)) // references name strings of 3 bytes or more
		return s, len(s) > 0
	}
	n := x >> 1
	if uint64(len(d.b)-d.off) < n {
		return nil, false
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s, true
}

func nameAt(names []string, i uint64) string {
	if i < uint64(len(names)) {
		return names[i]
	}
	return ""
}
