package proxy

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"sync/atomic"

	"github.com/canary-pi/canary-pi/appliance/journal"
)

// Every proxied request carries an X-Request-Id to its upstream and back to
// its client, so that one request can be followed through the client's,
// canaryd's and the upstream's logs and into an incident report.
const requestIDHeader = "X-Request-Id"

var xRequestID = []byte(requestIDHeader)

// idBuf holds one request's id; ids are never longer than the journal
// keeps them.
type idBuf [journal.IDMax]byte

// ids makes request ids: a random prefix per process, so that ids stay
// unique across restarts and across canaryds, and a counter, so that a new
// id costs one atomic add and no allocation.
type ids struct {
	prefix [idPrefixLen]byte
	n      atomic.Uint64
}

// idPrefixLen is 60 random bits: with a million restarts, two share a
// prefix with odds of about one in a million million.
const idPrefixLen = 12

// crockford is base32 without the letters that read as digits.
var crockford = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

func newIDs() *ids {
	var random [8]byte
	rand.Read(random[:])
	var enc [13]byte
	crockford.Encode(enc[:], random[:])
	s := &ids{}
	copy(s.prefix[:], enc[:])
	return s
}

// next writes a new id into buf and returns it: the prefix, a dash and the
// counter in base 36.
func (s *ids) next(buf *idBuf) []byte {
	b := append(buf[:0], s.prefix[:]...)
	b = append(b, '-')
	return strconv.AppendUint(b, s.n.Add(1), 36)
}

// validID reports whether a client's X-Request-Id may be passed on: 1 to
// journal.IDMax bytes of printable ASCII, no spaces. Anything else could
// split a log line or be cut in the journal, and is replaced.
func validID(v []byte) bool {
	if len(v) == 0 || len(v) > journal.IDMax {
		return false
	}
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
