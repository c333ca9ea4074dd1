package nginxconf

import (
	"fmt"
	"strings"
	"testing"
)

// dump writes directives compactly, arguments quoted, a block's line
// after its name: `http@1 { server@2 { listen "80"; } }`.
func dump(ds []*directive) string {
	var parts []string
	for _, d := range ds {
		s := fmt.Sprintf("%s@%d", d.name, d.line)
		for _, a := range d.args {
			s += fmt.Sprintf(" %q", a)
		}
		if d.isBlock {
			s += " { " + dump(d.block) + "}"
		} else {
			s += ";"
		}
		parts = append(parts, s+" ")
	}
	return strings.Join(parts, "")
}

func TestParseReadsNginxSyntax(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"comments", "# a comment\nworker_processes 1; # after\n#last", `worker_processes@2 "1"; `},
		{"a # inside a word is no comment", "add_header X a#b;", `add_header@1 "X" "a#b"; `},
		{"double quotes and their escapes", `add_header X "a \"b\" c\td\\e";`, `add_header@1 "X" "a \"b\" c\td\\e"; `},
		{"single quotes", `return 200 'say "hi"';`, `return@1 "200" "say \"hi\""; `},
		{"; { and } inside quotes", `return 200 "a;b{c}";`, `return@1 "200" "a;b{c}"; `},
		{"an unknown escape keeps its backslash", `set $a "x\qy";`, `set@1 "$a" "x\\qy"; `},
		{"an escaped space joins a word", `a b\ c;`, `a@1 "b\\ c"; `},
		{"${name} is a word, not a block", `set $a ${host}x;`, `set@1 "$a" "${host}x"; `},
		{"a } inside a word is part of it", `return 200 a}b;`, `return@1 "200" "a}b"; `},
		{"newlines anywhere", "server\n{\nlisten\n80\n;\n}", `server@1 { listen@3 "80"; }`},
		{"no space before ; or {", "events{}http{a 1;}", `events@1 { } http@1 { a@1 "1"; }`},
		{"nested blocks", "http { server { location / { proxy_pass http://b; } } }",
			`http@1 { server@1 { location@1 "/" { proxy_pass@1 "http://b"; } } } `},
		{"a quoted newline counts as a line", "a \"x\ny\";\nb;", `a@1 "x\ny"; b@3; `},
		{"CRLF line ends", "a 1;\r\nb 2;\r\n", `a@1 "1"; b@2 "2"; `},
		{"empty", "", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := parse("nginx.conf", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(dump(ds)); got != strings.TrimSpace(tt.want) {
				t.Errorf("parse(%q):\n got %s\nwant %s", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseErrorsNameTheLineAndTheFix(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"missing ;", "server {\n    listen 80\n}\n", `nginx.conf:3: unexpected "}": end "listen 80" with ";"`},
		{"one } too many", "events {}\n}\n", `nginx.conf:2: unexpected "}": no block is open here (one "}" too many?)`},
		{"; alone", "a;\n;", `nginx.conf:2: unexpected ";": no directive before it to end`},
		{"{ alone", "{ }", `nginx.conf:1: unexpected "{": a block needs a directive before it, e.g. "location / {"`},
		{"unclosed block", "http {\n    server {\n    }\n", `nginx.conf:4: unexpected end of file, expecting "}": close "http {" of line 1`},
		{"unended directive", "worker_processes 1", `nginx.conf:1: unexpected end of file, expecting ";" or "}": end "worker_processes 1" with ";"`},
		{"unterminated quote", "a;\nb \"c;\n\n", `nginx.conf:2: unterminated quoted string: close the " opened here`},
		{"a word glued to a quote", `a "b"c;`, `nginx.conf:1: unexpected "c" after a quoted string: want a space, ";" or "{" after it`},
		{"} glued to a quote", "a {\nb \"c\"}", `nginx.conf:2: unexpected "}" after a quoted string: want a space, ";" or "{" after it`},
		{"too deep", strings.Repeat("a {", 100), `nginx.conf:1: blocks nested more than 64 deep`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("nginx.conf", []byte(tt.src))
			if err == nil || err.Error() != tt.want {
				t.Errorf("parse(%q) = %v\nwant %s", tt.src, err, tt.want)
			}
		})
	}
}

// debianNginxConf is Debian's nginx.conf, as the package installs it.
const debianNginxConf = `user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
include /etc/nginx/modules-enabled/*.conf;

events {
	worker_connections 768;
	# multi_accept on;
}

http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	# server_tokens off;

	include /etc/nginx/mime.types;
	default_type application/octet-stream;

	ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
	ssl_prefer_server_ciphers on;

	access_log /var/log/nginx/access.log;

	gzip on;

	include /etc/nginx/conf.d/*.conf;
	include /etc/nginx/sites-enabled/*;
}
`

func TestParseAWholeNginxConf(t *testing.T) {
	ds, err := parse("nginx.conf", []byte(debianNginxConf))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.name)
	}
	if got := strings.Join(names, " "); got != "user worker_processes pid error_log include events http" {
		t.Errorf("top level: %s", got)
	}
	http := ds[len(ds)-1]
	if len(http.block) != 11 || http.block[10].String() != "include /etc/nginx/sites-enabled/*" || http.block[10].line != 29 {
		t.Errorf("http block: %s", dump(http.block))
	}
}

func TestParseASnippet(t *testing.T) {
	ds, err := parse("backend.conf", []byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	want := `upstream@1 "backend" { server@2 "127.0.0.1:8001" "weight=10"; server@3 "127.0.0.1:8002" "weight=5"; } ` +
		`server@6 { listen@7 "80"; location@8 "/" { proxy_pass@9 "http://backend"; } }`
	if got := strings.TrimSpace(dump(ds)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
