// Package docgen writes canary-pi's generated documentation from the
// declarations it describes: the configuration reference and the manual
// pages in docs/. The tests beside those declarations compare the files on
// disk with what docgen makes of them; `make docs` rewrites them.
//
// It is for tests only: it registers the -update flag, and production code
// never imports it.
package docgen

import (
	"fmt"
	"regexp"
	"strings"
)

// Page is one manual page, in the sections man-pages(7) orders.
type Page struct {
	Name     string // "canaryd"
	Section  string // "8"
	Summary  string // the NAME line's description, what whatis(1) shows
	Manual   string // the header's middle: "System Administration", "File Formats"
	Synopsis []string
	// Sections follow SYNOPSIS: DESCRIPTION, OPTIONS and so on.
	Sections []Section
}

// Section is one section of a page.
type Section struct {
	Title  string // "DESCRIPTION"
	Blocks []Block
}

// Block is a paragraph, a list item or an example of a page. Its text is
// one line of inline markup: `literal` is set bold (a name to type as it
// is), {word} italic (a word to replace); everything else, other braces
// too, is plain text, escaped as roff needs.
type Block struct {
	kind blockKind
	tag  string
	text string
}

type blockKind int

const (
	paragraph blockKind = iota
	bullet
	item
	subsection
	code
)

// P is a paragraph.
func P(text string) Block { return Block{kind: paragraph, text: text} }

// Bullet is an item of a bulleted list.
func Bullet(text string) Block { return Block{kind: bullet, text: text} }

// Item is a tagged paragraph: an option, a command, a key, a file.
func Item(tag, text string) Block { return Block{kind: item, tag: tag, text: text} }

// Sub is a subsection's heading.
func Sub(title string) Block { return Block{kind: subsection, text: title} }

// Code is an example, shown as it is: lines of literal text.
func Code(text string) Block { return Block{kind: code, text: text} }

// Roff returns the page in the man(7) macros, with a first comment saying
// where it comes from.
func (p Page) Roff(source string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, ".\\\" Generated from %s: do not edit; run make docs.\n", source)
	fmt.Fprintf(&b, ".TH %s %s \"\" \"canary-pi\" \"%s\"\n", roffText(strings.ToUpper(p.Name)), p.Section, p.Manual)
	// Neither hyphenated nor justified: names and options stay whole.
	b.WriteString(".nh\n.ad l\n")
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", roffText(p.Name), roffText(p.Summary))
	b.WriteString(".SH SYNOPSIS\n")
	for i, line := range p.Synopsis {
		if i > 0 {
			b.WriteString(".br\n")
		}
		b.WriteString(textLine(inline(line)))
	}
	for _, s := range p.Sections {
		fmt.Fprintf(&b, ".SH %s\n", s.Title)
		for i, bl := range s.Blocks {
			bl.roff(&b, i == 0)
		}
	}
	return []byte(b.String())
}

// roff writes one block; first says it opens its section, where a new
// paragraph needs no macro.
func (bl Block) roff(b *strings.Builder, first bool) {
	switch bl.kind {
	case paragraph:
		if !first {
			b.WriteString(".PP\n")
		}
		b.WriteString(textLine(inline(bl.text)))
	case bullet:
		b.WriteString(".IP \\(bu 2\n")
		b.WriteString(textLine(inline(bl.text)))
	case item:
		b.WriteString(".TP\n")
		b.WriteString(textLine(inline(bl.tag)))
		b.WriteString(textLine(inline(bl.text)))
	case subsection:
		fmt.Fprintf(b, ".SS %s\n", roffText(bl.text))
	case code:
		b.WriteString(".PP\n.RS 4\n.nf\n")
		for line := range strings.Lines(strings.TrimSuffix(bl.text, "\n")) {
			line = strings.TrimSuffix(line, "\n")
			// Quotes as typed, not typographic ones: the lines are
			// there to be copied.
			line = strings.NewReplacer("'", `\(aq`, "`", `\(ga`).Replace(roffText(line))
			b.WriteString(textLine(line))
		}
		b.WriteString(".fi\n.RE\n")
	}
}

// Markdown returns blocks as Markdown, for a page of docs/.
func Markdown(blocks []Block) string {
	var b strings.Builder
	for i, bl := range blocks {
		// A list ends with a blank line.
		if i > 0 && blocks[i-1].kind == bullet && bl.kind != bullet {
			b.WriteString("\n")
		}
		switch bl.kind {
		case paragraph:
			b.WriteString(markdownInline(bl.text) + "\n\n")
		case bullet:
			b.WriteString("- " + markdownInline(bl.text) + "\n")
		case item:
			b.WriteString("- " + markdownInline(bl.tag) + ": " + markdownInline(bl.text) + "\n")
		case subsection:
			b.WriteString("### " + bl.text + "\n\n")
		case code:
			b.WriteString("```\n" + strings.TrimSuffix(bl.text, "\n") + "\n```\n\n")
		}
	}
	if len(blocks) > 0 && blocks[len(blocks)-1].kind == bullet {
		b.WriteString("\n")
	}
	return b.String()
}

// roffText escapes plain text for roff: a backslash is printed with \e,
// and a hyphen-minus is \-, so that an option or a path typed after the
// page is what the program takes (a bare - may print as a hyphen).
func roffText(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// textLine makes s a line of text: a line that starts with a dot or an
// apostrophe would be a request.
func textLine(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s + "\n"
}

// inline turns the inline markup into roff: `literal` bold, {word}
// italic.
func inline(s string) string {
	return markup(s, roffText, func(lit string) string { return `\fB` + roffText(lit) + `\fR` },
		func(word string) string { return `\fI` + roffText(word) + `\fR` })
}

// markdownInline turns the inline markup into Markdown: `literal` stays,
// {word} is emphasized.
func markdownInline(s string) string {
	return markup(s, func(s string) string { return s }, func(lit string) string { return "`" + lit + "`" },
		func(word string) string { return "*" + word + "*" })
}

// placeholder is what braces hold to mark a word to replace; other braces
// ({"message":"pong"}) are text.
var placeholder = regexp.MustCompile(`^\{([A-Za-z][A-Za-z0-9_.-]*)\}`)

// markup splits s into text, literals and placeholders and writes each
// with its function. A backquote without its pair is text.
func markup(s string, text, literal, word func(string) string) string {
	var b strings.Builder
	for s != "" {
		i := strings.IndexAny(s, "`{")
		if i < 0 {
			b.WriteString(text(s))
			break
		}
		b.WriteString(text(s[:i]))
		s = s[i:]
		if m := placeholder.FindStringSubmatch(s); m != nil {
			b.WriteString(word(m[1]))
			s = s[len(m[0]):]
			continue
		}
		j := strings.IndexByte(s[1:], '`')
		if s[0] == '{' || j < 0 {
			b.WriteString(text(s[:1]))
			s = s[1:]
			continue
		}
		b.WriteString(literal(s[1 : 1+j]))
		s = s[1+j+1:]
	}
	return b.String()
}
