package nginxconf

import (
	"fmt"
	"strings"
)

// directive is one nginx directive: its name, its arguments and, for a
// block, the directives inside it.
type directive struct {
	name    string
	args    []string // quotes removed, escapes applied, as nginx reads them
	raw     []string // the name and the arguments as written
	line    int
	isBlock bool
	block   []*directive
}

// String is the directive as written, for comments: "server 10.0.0.2
// weight=5", "location /api/ { ... }".
func (d *directive) String() string {
	s := strings.Join(d.raw, " ")
	if d.isBlock {
		s += " { ... }"
	}
	return s
}

// arg is the i-th argument, or "" when there are fewer.
func (d *directive) arg(i int) string {
	if i < len(d.args) {
		return d.args[i]
	}
	return ""
}

// params are the arguments after the first: a server's or a listen's
// parameters.
func (d *directive) params() []string {
	if len(d.args) < 2 {
		return nil
	}
	return d.args[1:]
}

// Error is a problem with the nginx config at a line, or one it has no
// equivalent for that stops the conversion. Its text is one line:
// "nginx.conf:7: unexpected "}": end "proxy_pass http://backend" with ";"".
type Error struct {
	File string
	Line int // 0 when the problem is the config as a whole
	Msg  string
}

func (e *Error) Error() string {
	// A quoted argument the message shows may hold a newline.
	msg := printable(e.Msg)
	if e.Line == 0 {
		return e.File + ": " + msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
}

// maxDepth bounds the nesting of blocks: nginx's own configs go four
// deep (http, server, location, if); a deeper one is not a config.
const maxDepth = 64

// parser reads nginx's config syntax as ngx_conf_read_token does: words
// separated by white space, a directive ended by ";" or by a block in
// braces, "#" comments where a word could start, single or double quotes
// around a word, and backslash escapes.
type parser struct {
	file string
	src  []byte
	pos  int
	line int
}

// parse reads a whole config into its top-level directives.
func parse(file string, src []byte) ([]*directive, error) {
	p := &parser{file: file, src: src, line: 1}
	return p.directives(nil)
}

// directives reads directives up to the "}" that closes open, or to the
// end of the file when open is nil.
func (p *parser) directives(open []*directive) ([]*directive, error) {
	if len(open) > maxDepth {
		return nil, p.errorf(p.line, "blocks nested more than %d deep", maxDepth)
	}
	var ds []*directive
	var cur *directive
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case word:
			if cur == nil {
				cur = &directive{name: t.text, raw: []string{t.raw}, line: t.line}
			} else {
				cur.args = append(cur.args, t.text)
				cur.raw = append(cur.raw, t.raw)
			}
		case semicolon:
			if cur == nil {
				return nil, p.errorf(t.line, `unexpected ";": no directive before it to end`)
			}
			ds, cur = append(ds, cur), nil
		case openBrace:
			if cur == nil {
				return nil, p.errorf(t.line, `unexpected "{": a block needs a directive before it, e.g. "location / {"`)
			}
			cur.isBlock = true
			if cur.block, err = p.directives(append(open, cur)); err != nil {
				return nil, err
			}
			ds, cur = append(ds, cur), nil
		case closeBrace:
			switch {
			case cur != nil:
				return nil, p.errorf(t.line, `unexpected "}": end %q with ";"`, strings.Join(cur.raw, " "))
			case len(open) == 0:
				return nil, p.errorf(t.line, `unexpected "}": no block is open here (one "}" too many?)`)
			}
			return ds, nil
		case eof:
			switch {
			case cur != nil:
				return nil, p.errorf(t.line, `unexpected end of file, expecting ";" or "}": end %q with ";"`, strings.Join(cur.raw, " "))
			case len(open) > 0:
				b := open[len(open)-1]
				return nil, p.errorf(t.line, `unexpected end of file, expecting "}": close "%s {" of line %d`, strings.Join(b.raw, " "), b.line)
			}
			return ds, nil
		}
	}
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

type tokenKind int

const (
	word tokenKind = iota
	semicolon
	openBrace
	closeBrace
	eof
)

type token struct {
	kind tokenKind
	text string // a word's value
	raw  string // a word as written
	line int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// next reads the next token, skipping white space and comments.
func (p *parser) next() (token, error) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case isSpace(c):
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return p.token()
		}
	}
	return token{kind: eof, line: p.line}, nil
}

func (p *parser) token() (token, error) {
	line := p.line
	switch c := p.src[p.pos]; c {
	case ';':
		p.pos++
		return token{kind: semicolon, line: line}, nil
	case '{':
		p.pos++
		return token{kind: openBrace, line: line}, nil
	case '}':
		p.pos++
		return token{kind: closeBrace, line: line}, nil
	case '"', '\'':
		return p.quoted(c)
	}
	return p.word(), nil
}

// word reads an unquoted word. As in nginx, only white space, ";" and "{"
// end it: a "}" inside is part of it, and so is the brace of "${name}".
func (p *parser) word() token {
	line, start := p.line, p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if isSpace(c) || c == ';' || c == '{' {
			break
		}
		p.pos++
		switch c {
		case '\\':
			p.escaped()
		case '$':
			if p.pos < len(p.src) && p.src[p.pos] == '{' {
				p.pos++
			}
		}
	}
	raw := string(p.src[start:p.pos])
	return token{kind: word, text: unescape(raw), raw: raw, line: line}
}

// quoted reads a word in quotes q. After the closing quote nginx wants
// white space, ";" or "{".
func (p *parser) quoted(q byte) (token, error) {
	line, start := p.line, p.pos
	p.pos++
	for {
		if p.pos >= len(p.src) {
			return token{}, p.errorf(line, "unterminated quoted string: close the %c opened here", q)
		}
		c := p.src[p.pos]
		p.pos++
		if c == q {
			break
		}
		switch c {
		case '\\':
			p.escaped()
		case '\n':
			p.line++
		}
	}
	if p.pos < len(p.src) {
		if c := p.src[p.pos]; !isSpace(c) && c != ';' && c != '{' {
			return token{}, p.errorf(p.line, `unexpected "%c" after a quoted string: want a space, ";" or "{" after it`, c)
		}
	}
	raw := string(p.src[start:p.pos])
	return token{kind: word, text: unescape(raw[1 : len(raw)-1]), raw: raw, line: line}, nil
}

// escaped skips the character after a backslash, whatever it is.
func (p *parser) escaped() {
	if p.pos < len(p.src) {
		if p.src[p.pos] == '\n' {
			p.line++
		}
		p.pos++
	}
}

// unescape applies nginx's escapes: \" \' \\ stand for the character, \t
// \r \n for the control characters; any other backslash stays.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '"', '\'', '\\':
				i++
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
