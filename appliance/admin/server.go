package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// HandlerOptions says which listener a Handler serves.
type HandlerOptions struct {
	// Cause is recorded with rollbacks, resumes and promotions made through
	// this handler: CauseCommand on the unix socket, CauseAPI on the TCP
	// listener.
	Cause state.Cause
	// Token, when set, must come as "Authorization: Bearer <token>" with
	// every request that changes something, and with every read unless
	// PublicRead. The unix socket leaves it empty: its file permissions
	// decide who may connect.
	Token string
	// PublicRead leaves reads open when there is a Token: only changes
	// need it then.
	PublicRead bool
	// Hosts, when set, are the only names requests may carry in their Host
	// header, and changes in their Origin. The unix socket leaves it nil:
	// no browser reaches it.
	Hosts *Hosts
}

// Handler serves the admin API. More routes (the status page, /metrics)
// are mounted with Handle and HandleFunc and get the same protection: any
// request that is not GET, HEAD or OPTIONS must pass the token and the
// cross-origin checks, and reads the token unless PublicRead.
type Handler struct {
	mux        *http.ServeMux
	ctl        Controller
	csrf       *http.CrossOriginProtection
	token      []byte // SHA-256 of "Bearer <token>", or nil when open
	publicRead bool
	hosts      *Hosts
	open       map[string]bool // patterns read without the token: see HandleOpen
}

// NewHandler returns the admin API driving c.
func NewHandler(c Controller, opts HandlerOptions) *Handler {
	h := &Handler{
		mux:  http.NewServeMux(),
		ctl:  c,
		csrf: http.NewCrossOriginProtection(),

		publicRead: opts.PublicRead,
		hosts:      opts.Hosts,
		open:       map[string]bool{},
	}
	if opts.Token != "" {
		sum := sha256.Sum256([]byte("Bearer " + opts.Token))
		h.token = sum[:]
	}
	h.mux.HandleFunc("GET /v1/status", h.status)
	h.mux.HandleFunc("GET /v1/history", h.history)
	h.mux.HandleFunc("GET /v1/incidents", h.incidents)
	h.mux.HandleFunc("GET /v1/fleet", h.fleet)
	h.mux.HandleFunc("GET /v1/incidents/{id}", h.incident)
	h.mux.HandleFunc("POST /v1/rollback", h.command(func(ctx context.Context) error {
		return c.Rollback(ctx, opts.Cause)
	}))
	h.mux.HandleFunc("POST /v1/resume", h.command(func(ctx context.Context) error {
		return c.Resume(ctx, opts.Cause)
	}))
	h.mux.HandleFunc("POST /v1/promote", h.command(func(ctx context.Context) error {
		return c.Promote(ctx, opts.Cause)
	}))
	h.mux.HandleFunc("POST /v1/pause", h.command(c.Pause))
	h.mux.HandleFunc("POST /v1/reload", h.command(c.Reload))
	h.mux.HandleFunc("POST /v1/button", h.button)
	return h
}

// Handle mounts another route, with http.ServeMux patterns. A page at the
// root should use "GET /{$}" so that unknown paths keep answering 404.
func (h *Handler) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

// HandleFunc mounts another route, like Handle.
func (h *Handler) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	h.mux.HandleFunc(pattern, handler)
}

// HandleOpen mounts a route that reads without the token even when reads
// need it: the status page's HTML, which shows no data of its own and asks
// for the token when the API answers 401. It must be a GET route.
func (h *Handler) HandleOpen(pattern string, handler http.Handler) {
	h.mux.Handle(pattern, handler)
	h.open[pattern] = true
}

// ServeHTTP routes r after the checks that guard every change.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.hosts != nil && !h.hosts.Allows(r.Host) {
		// Before anything else, 404s included: a page that rebound its
		// own name to this address learns nothing.
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not a name of this canaryd: use its address or host name, or add the name to [admin] hosts", r.Host))
		return
	}
	_, pattern := h.mux.Handler(r)
	if pattern == "" {
		// No route: the mux knows whether that is 404 or 405 (and the Allow
		// header); only its plain-text body is replaced, so that clients
		// always get {"error": ...}.
		h.mux.ServeHTTP(&jsonError{ResponseWriter: w, req: r}, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		// Cross-origin first: a page elsewhere that a logged-in browser
		// visits must not change anything, token or not.
		if origin := r.Header.Get("Origin"); h.hosts != nil && origin != "" && !h.allowsOrigin(origin) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("cross-origin request refused: Origin %q is not this canaryd; changes come from canaryctl or the status page itself", origin))
			return
		}
		if err := h.csrf.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "cross-origin request refused: changes come from canaryctl or the status page itself")
			return
		}
		if !h.authorized(r) {
			h.unauthorized(w, "for changes")
			return
		}
	} else if !h.publicRead && !h.open[pattern] && !h.authorized(r) {
		h.unauthorized(w, "for reads too ([admin] public_read = false)")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the token, or none is needed. The
// comparison takes as long whatever r carries: digests, because
// ConstantTimeCompare returns at once on a length that differs, which
// would tell the token's length.
func (h *Handler) authorized(r *http.Request) bool {
	if h.token == nil {
		return true
	}
	got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	return subtle.ConstantTimeCompare(got[:], h.token) == 1
}

func (h *Handler) unauthorized(w http.ResponseWriter, what string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="canaryd"`)
	writeError(w, http.StatusUnauthorized, "this admin listener needs \"Authorization: Bearer <token>\" (the token in [admin] token_file) "+what)
}

// allowsOrigin reports whether a browser's Origin names this listener.
func (h *Handler) allowsOrigin(origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && h.hosts.Allows(u.Host)
}

func (h *Handler) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.ctl.Status())
}

// history answers compactly: it is 180 samples a page asks for every few
// seconds, and nobody reads it by eye.
func (h *Handler) history(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(h.ctl.History())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "history: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// A failed write means the client is gone.
	_, _ = w.Write(append(b, '\n'))
}

// NoFleet is the answer of a canaryd without a [fleet] section.
const NoFleet = "this canaryd is in no fleet: its config has no [fleet] section"

func (h *Handler) fleet(w http.ResponseWriter, _ *http.Request) {
	src, ok := h.ctl.(FleetMembers)
	var list []FleetMember
	if ok {
		list = src.Members()
	}
	if list == nil {
		writeError(w, http.StatusNotFound, NoFleet)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// fleetIncidents answers every member's incident reports.
func (h *Handler) fleetIncidents(w http.ResponseWriter, r *http.Request) {
	src, ok := h.ctl.(FleetIncidents)
	var list []FleetIncident
	var err error
	if ok {
		list, err = src.FleetIncidents(r.Context())
	}
	switch {
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, oneLine(err.Error()))
	case list == nil:
		writeError(w, http.StatusNotFound, NoFleet)
	default:
		writeJSON(w, http.StatusOK, list)
	}
}

// notRecorded is the answer of a daemon without incident reports.
const notRecorded = "incidents are not recorded by this canaryd yet"

func (h *Handler) incidents(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("fleet") != "" {
		h.fleetIncidents(w, r)
		return
	}
	src, ok := h.ctl.(Incidents)
	if !ok {
		writeError(w, http.StatusNotFound, notRecorded)
		return
	}
	list, err := src.Incidents()
	if err != nil && !errors.Is(err, incident.ErrUnreadable) {
		writeError(w, http.StatusInternalServerError, oneLine(err.Error()))
		return
	}
	if list == nil {
		list = []incident.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
}

// incident answers one report as JSON, or with ?format=csv its requests
// for a spreadsheet, or with ?format=text the text canaryctl prints, for
// a browser.
func (h *Handler) incident(w http.ResponseWriter, r *http.Request) {
	src, ok := h.ctl.(Incidents)
	if !ok {
		writeError(w, http.StatusNotFound, notRecorded)
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" && format != "text" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format=%q: want json, csv or text", format))
		return
	}
	rep, err := src.Incident(r.PathValue("id"))
	switch {
	case errors.Is(err, incident.ErrNotFound):
		writeError(w, http.StatusNotFound, oneLine(err.Error()))
		return
	case errors.Is(err, incident.ErrInvalidID):
		writeError(w, http.StatusBadRequest, oneLine(err.Error()))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, oneLine(err.Error()))
		return
	}
	var render func(io.Writer, incident.Report) error
	hd := w.Header()
	switch format {
	case "", "json":
		writeJSON(w, http.StatusOK, rep)
		return
	case "csv":
		render = incident.WriteCSV
		hd.Set("Content-Type", "text/csv; charset=utf-8")
		hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "incident-"+rep.ID+".csv"))
	case "text":
		render = incident.WriteText
		hd.Set("Content-Type", "text/plain; charset=utf-8")
	}
	// Paths and users come from clients: a browser must show them as
	// text, never run them.
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	hd.Set("Cache-Control", "no-store")
	var b bytes.Buffer
	if err := render(&b, rep); err != nil {
		writeError(w, http.StatusInternalServerError, oneLine(err.Error()))
		return
	}
	// A failed write means the client is gone.
	_, _ = b.WriteTo(w)
}

// command wraps a mutation: the request body, if any, is ignored (every
// command is fully named by its path), and the answer is the status after
// the change so that the caller sees its effect without a second request.
func (h *Handler) command(do func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := do(r.Context()); err != nil {
			writeError(w, http.StatusConflict, oneLine(err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, h.ctl.Status())
	}
}

func (h *Handler) button(w http.ResponseWriter, r *http.Request) {
	long := false
	if v := r.URL.Query().Get("long"); v != "" {
		var err error
		if long, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("long=%q: want 1 or 0", v))
			return
		}
	}
	h.command(func(ctx context.Context) error {
		return h.ctl.Button(ctx, long)
	})(w, r)
}

// errorBody is every error answer: one line the operator can act on.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// The status changes from one moment to the next; a cached copy is a
	// wrong copy.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// A failed write means the client is gone; there is no one to tell.
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, reason string) {
	writeJSON(w, code, errorBody{Error: reason})
}

// oneLine folds a multi-line refusal (several config errors, say) into the
// single line canaryctl prints.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

// jsonError turns the ServeMux's own 404 and 405 answers into errorBody.
type jsonError struct {
	http.ResponseWriter
	req   *http.Request
	wrote bool
}

func (w *jsonError) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	reason := http.StatusText(code)
	switch code {
	case http.StatusNotFound:
		reason = fmt.Sprintf("no such endpoint: %s %s", w.req.Method, w.req.URL.Path)
	case http.StatusMethodNotAllowed:
		reason = fmt.Sprintf("%s %s: method not allowed (allowed: %s)", w.req.Method, w.req.URL.Path, w.Header().Get("Allow"))
	}
	writeError(w.ResponseWriter, code, reason)
}

// Write drops the mux's plain-text message: WriteHeader wrote the JSON one.
func (w *jsonError) Write(p []byte) (int, error) { return len(p), nil }

// Serve answers requests on ln with h until ctx is done, then lets the
// requests in progress finish (for up to five seconds) and returns nil. An
// error means the listener failed.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler: h,
		// The admin API is small and local; anything slower than these is
		// a stuck or hostile client holding a connection open.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// Generous: a command answers only once the daemon has acted, and a
		// reload reads the config directory first.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		// Stragglers past the grace period are cut off; that is the point
		// of having one.
		_ = srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
