package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// ErrUnreachable is wrapped by every Client error that means no daemon
// answered: no socket, nothing listening, no permission, or the connection
// died before an answer came.
var ErrUnreachable = errors.New("cannot reach canaryd")

// Error is the daemon's answer when it did not do what was asked: a
// refusal (409, such as a promote while rolled back), or a bad request.
type Error struct {
	StatusCode int    // the HTTP status
	Reason     string // one line, for the operator
}

func (e *Error) Error() string { return e.Reason }

// Client talks to canaryd over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening at socketPath.
// It connects only when a method is called.
func NewClient(socketPath string) *Client {
	var d net.Dialer
	return &Client{
		socket: socketPath,
		http: &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return d.DialContext(ctx, "unix", socketPath)
				},
				// canaryctl makes one or two requests and exits.
				DisableKeepAlives: true,
			},
		},
	}
}

// Status returns the daemon's current status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return c.decode(c.Get(ctx, "/v1/status"))
}

// Rollback sends all new requests to the stable upstreams and latches.
func (c *Client) Rollback(ctx context.Context) (Status, error) {
	return c.decode(c.post(ctx, "/v1/rollback"))
}

// Resume clears a rollback or a pause.
func (c *Client) Resume(ctx context.Context) (Status, error) {
	return c.decode(c.post(ctx, "/v1/resume"))
}

// Promote gives the canary all traffic.
func (c *Client) Promote(ctx context.Context) (Status, error) {
	return c.decode(c.post(ctx, "/v1/promote"))
}

// Pause holds a progressive rollout at its step.
func (c *Client) Pause(ctx context.Context) (Status, error) {
	return c.decode(c.post(ctx, "/v1/pause"))
}

// Reload makes the daemon re-read its config directory now.
func (c *Client) Reload(ctx context.Context) (Status, error) {
	return c.decode(c.post(ctx, "/v1/reload"))
}

// Button presses the button; long is a press of 3 s or more.
func (c *Client) Button(ctx context.Context, long bool) (Status, error) {
	path := "/v1/button"
	if long {
		path += "?long=1"
	}
	return c.decode(c.post(ctx, path))
}

// Get returns the body of GET path (such as "/v1/status") as the daemon
// sent it, for callers that pass it on untouched or read endpoints this
// client has no method for.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, path)
}

func (c *Client) post(ctx context.Context, path string) ([]byte, error) {
	return c.do(ctx, http.MethodPost, path)
}

func (c *Client) do(ctx context.Context, method, path string) ([]byte, error) {
	// The host is never dialed; it only names the daemon in the Host header.
	req, err := http.NewRequestWithContext(ctx, method, "http://canaryd"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &unreachableError{socket: c.socket, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, &unreachableError{socket: c.socket, err: err}
	}
	if resp.StatusCode/100 != 2 {
		return nil, &Error{StatusCode: resp.StatusCode, Reason: reason(resp, body)}
	}
	return body, nil
}

func (c *Client) decode(body []byte, err error) (Status, error) {
	var s Status
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("unexpected answer from %s (is it canaryd?): %w", c.socket, err)
	}
	return s, nil
}

// reason is the one line to show for an error response. Something other
// than canaryd may be listening, so a body that is not ours is shown as
// its first line, or the bare status.
func reason(resp *http.Response, body []byte) string {
	var e errorBody
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(body), []byte("\n"))
	if len(line) > 0 {
		return fmt.Sprintf("%s: %s", resp.Status, line)
	}
	return resp.Status
}

type unreachableError struct {
	socket string
	err    error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach canaryd at %s: %s", e.socket, cause(e.err))
}

func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }

func (e *unreachableError) Unwrap() error { return e.err }

// cause trims a transport error down to its reason: the operator knows the
// path already, and "Get \"http://canaryd/v1/status\": dial unix ...:" is
// noise to them.
func cause(err error) string {
	var se *os.SyscallError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.As(err, &se):
		return se.Err.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed before an answer came"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return strings.TrimSpace(err.Error())
}
