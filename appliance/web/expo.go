package web

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// expo writes metrics in Prometheus's text exposition format, version
// 0.0.4: a family's HELP and TYPE lines, then its samples, one per line.
// It is the whole of what canaryd needs of a Prometheus client library,
// which would bring 2.3 MB of binary (protobuf among it) and about 2 MiB of
// resident memory to a Pi Zero with 512 MiB; the tests read every scrape
// back with Prometheus's own parser.
type expo struct {
	b []byte
}

// family starts the family name, of typ counter, gauge, histogram, summary
// or untyped. Its samples must follow before the next family starts.
func (e *expo) family(name, typ, help string) {
	e.b = append(e.b, "# HELP "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = appendEscaped(e.b, help, false)
	e.b = append(e.b, "\n# TYPE "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = append(e.b, typ...)
	e.b = append(e.b, '\n')
}

// sample writes one sample of name, with labels as name, value pairs.
func (e *expo) sample(name string, v float64, labels ...string) {
	e.b = append(e.b, name...)
	if len(labels) > 0 {
		e.b = append(e.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, labels[i]...)
			e.b = append(e.b, `="`...)
			e.b = appendEscaped(e.b, labels[i+1], true)
			e.b = append(e.b, '"')
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
	e.b = appendFloat(e.b, v)
	e.b = append(e.b, '\n')
}

// comment writes a line Prometheus ignores, for whoever reads the scrape.
func (e *expo) comment(text string) {
	e.b = append(e.b, "# "...)
	e.b = appendEscaped(e.b, text, false)
	e.b = append(e.b, '\n')
}

// one is a single-sample family.
func (e *expo) one(name, typ, help string, v float64, labels ...string) {
	e.family(name, typ, help)
	e.sample(name, v, labels...)
}

// histogram writes the samples of one histogram: bounds and cumulative
// counts (a +Inf bound among them is left to the count), then sum and
// count.
func (e *expo) histogram(name string, bounds []float64, cumulative []uint64, count uint64, sum float64, labels ...string) {
	le := append(slices.Clip(labels), "le", "")
	for i, bound := range bounds {
		if math.IsInf(bound, +1) {
			continue
		}
		le[len(le)-1] = string(appendFloat(nil, bound))
		e.sample(name+"_bucket", float64(cumulative[i]), le...)
	}
	le[len(le)-1] = "+Inf"
	e.sample(name+"_bucket", float64(count), le...)
	e.sample(name+"_sum", sum, labels...)
	e.sample(name+"_count", float64(count), labels...)
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendEscaped appends s with backslashes and line feeds escaped, and
// double quotes too in a label value. Bytes that are not UTF-8 become
// U+FFFD: a scrape is never refused for one odd name.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
