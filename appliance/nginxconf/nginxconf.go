// Package nginxconf converts an nginx config's upstream, server and location
// into an equivalent canaryd.toml, for users who come from nginx. What has no
// equivalent in canaryd becomes a comment in the output that says why.
package nginxconf

// Options say what an nginx config cannot: which servers are the canary.
type Options struct {
	// Canary names the canary servers, by their address as written in
	// their server line or as host:port (port 80 when left out).
	Canary []string
	// Upstream names the upstream block to convert; "" takes the one a
	// "location /" proxies to, or the only one.
	Upstream string
}

// Result is a converted config.
type Result struct {
	TOML string // a complete canaryd.toml, commented
	// Notes are what did not carry over as it was, one line each, as the
	// comments in TOML say it.
	Notes []string
}

// Convert reads the nginx config src, a whole nginx.conf or a snippet with
// bare upstream and server blocks; file names it in messages and in the
// output's header. An error is one line naming the file and line to fix.
func Convert(file string, src []byte, opts Options) (*Result, error) {
	top, err := parse(file, src)
	if err != nil {
		return nil, err
	}
	c := &conversion{file: file, opts: opts}
	if err := c.convert(top); err != nil {
		return nil, err
	}
	return c.result(), nil
}
