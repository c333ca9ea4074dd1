package nginxconf

import "strings"

// Why a directive does not carry over, for those canaryd knows something
// about. The same reason for several directives makes one comment line.
const (
	processWhy  = "nginx's own process: canaryd is one process, run by systemd"
	filesWhy    = "for files nginx serves itself: canaryd only proxies"
	tlsWhy      = "TLS: canaryd serves plain HTTP for now; terminate TLS in front of it (nginx, a load balancer) until its TLS support comes"
	streamWhy   = "canaryd streams request and response bodies without buffering them to memory or disk"
	retryWhy    = "canaryd retries once on another upstream: after a refused connection, and after a reset or a timeout for an idempotent request without a body; a 5xx goes to the client as it is"
	idleWhy     = "canaryd's proxy.idle_timeout bounds this wait too"
	resolveWhy  = "canaryd resolves an upstream's name at each new connection, with the system's resolver"
	locationWhy = "one service per canaryd, and every path goes to its upstreams: run one canaryd per service, or keep nginx in front for path routing"
	headersWhy  = "canaryd sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host itself (no X-Real-IP: the client is the last address in X-Forwarded-For)"
	hostWhy     = "canaryd passes the client's Host to the upstream as it came"
	upgradeWhy  = "canaryd keeps upstream connections alive and passes WebSocket upgrades through by itself"
	stickyWhy   = "canaryd has no server affinity; to keep one user on one version, set canary.sticky_header or canary.sticky_cookie to a header or cookie that names the user"
)

// whys are the reasons by directive name, at any level.
var whys = map[string]string{
	"user": processWhy, "worker_processes": processWhy, "worker_rlimit_nofile": processWhy,
	"worker_cpu_affinity": processWhy, "worker_priority": processWhy, "worker_shutdown_timeout": processWhy,
	"pid": processWhy, "events": processWhy, "load_module": processWhy, "daemon": processWhy,
	"master_process": processWhy, "pcre_jit": processWhy, "thread_pool": processWhy, "env": processWhy,
	"timer_resolution": processWhy, "lock_file": processWhy, "working_directory": processWhy,

	"error_log":  "canaryd logs to journald: journalctl -u canaryd",
	"log_format": "canaryd's access log entries have fixed fields in journald: CLIENT, METHOD, PATH, STATUS, UPSTREAM, REQUEST_ID, DURATION_MS",

	"sendfile": filesWhy, "tcp_nopush": filesWhy, "types_hash_max_size": filesWhy,
	"types_hash_bucket_size": filesWhy, "server_names_hash_bucket_size": filesWhy,
	"server_names_hash_max_size": filesWhy, "default_type": filesWhy, "types": filesWhy,
	"root": filesWhy, "index": filesWhy, "try_files": filesWhy, "autoindex": filesWhy,
	"open_file_cache": filesWhy, "aio": filesWhy, "directio": filesWhy, "output_buffers": filesWhy,

	"http2": tlsWhy, "http3": tlsWhy, "quic_retry": tlsWhy,

	"proxy_buffering": streamWhy, "proxy_request_buffering": streamWhy, "proxy_buffers": streamWhy,
	"proxy_buffer_size": streamWhy, "proxy_busy_buffers_size": streamWhy,
	"proxy_max_temp_file_size": streamWhy, "proxy_temp_path": streamWhy,
	"client_body_buffer_size": streamWhy, "client_body_temp_path": streamWhy,
	"fastcgi_temp_path": streamWhy, "uwsgi_temp_path": streamWhy, "scgi_temp_path": streamWhy,

	"proxy_next_upstream": retryWhy, "proxy_next_upstream_tries": retryWhy, "proxy_next_upstream_timeout": retryWhy,

	"client_body_timeout": idleWhy, "send_timeout": idleWhy,

	"resolver": resolveWhy, "resolver_timeout": resolveWhy,

	"server_name":          "canaryd answers every Host on proxy.listen: one service per canaryd (admin.hosts names the admin side only)",
	"proxy_http_version":   "canaryd speaks HTTP/1.1 with keep-alive to upstreams always",
	"client_max_body_size": "canaryd sets no limit on request bodies, which it streams: enforce one in the service",
	"proxy_redirect":       "canaryd does not rewrite the upstream's Location headers; the upstream sees the client's Host to build them",
	"split_clients":        "canaryd splits traffic by the upstreams' weights, or by canary.steps; canary.sticky_header or sticky_cookie keep a user on one version",
	"keepalive_requests":   "canaryd keeps a client connection until it idles out (proxy.idle_timeout)",
	"proxy_cache_path":     "canaryd caches nothing: keep nginx in front for caching",
	"proxy_cache":          "canaryd caches nothing: keep nginx in front for caching",
}

// why says why d does not carry over.
func why(d *directive) string {
	switch {
	case d.name == "include":
		return includeWhy(d.arg(0))
	case strings.HasPrefix(d.name, "ssl"):
		return tlsWhy
	case strings.HasPrefix(d.name, "proxy_cache"):
		return whys["proxy_cache"]
	}
	if w, ok := whys[d.name]; ok {
		return w
	}
	return noEquivalent
}

// includeWhy says why an include was not followed: the converter reads one
// file, and what it includes may matter.
func includeWhy(path string) string {
	switch {
	case strings.HasSuffix(path, "mime.types"):
		return filesWhy
	case strings.Contains(path, "modules-enabled"):
		return processWhy
	case strings.HasSuffix(path, "proxy_params"):
		return "not read; Debian's proxy_params sets Host, X-Real-IP, X-Forwarded-For and X-Forwarded-Proto, which canaryd sets itself"
	}
	return includeOther
}

// includeOther is why an include that may hold the service was not read.
const includeOther = "not read: canaryctl from-nginx reads one file; convert the one that holds the upstream and server blocks, or check what this one sets"

// headerWhy says why a proxy_set_header does not carry over.
func headerWhy(name string) string {
	switch strings.ToLower(name) {
	case "x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port":
		return headersWhy
	case "host":
		return hostWhy
	case "upgrade", "connection":
		return upgradeWhy
	}
	return noEquivalent
}
