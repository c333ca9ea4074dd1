package incident

import (
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// textUsers is how many users the text names; the JSON has them all.
const textUsers = 20

// WriteText writes r for a person: what was rolled back, when and why,
// the numbers, then the counts, the users and the requests to look at.
func WriteText(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "incident\t%s\n", r.ID)
	fmt.Fprintf(tw, "version\t%s, rolled back by %s\n", r.Version, r.Cause.Who())
	if r.Started.IsZero() {
		fmt.Fprintf(tw, "live\tuntil %s (since when is not known)\n", stamp(r.RolledBack))
	} else {
		fmt.Fprintf(tw, "live\tfrom %s to %s (%s)\n", stamp(r.Started), stamp(r.RolledBack), r.RolledBack.Sub(r.Started).Round(time.Second))
	}
	if r.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", r.Reason)
	}
	fmt.Fprintf(tw, "verdict\t%s", r.Verdict.State)
	if r.Verdict.Reason != "" {
		fmt.Fprintf(tw, ": %s", r.Verdict.Reason)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "canary\t%s\n", sideLine(r.Canary))
	fmt.Fprintf(tw, "stable\t%s\n", sideLine(r.Stable))
	fmt.Fprintf(tw, "served\t%d canary requests, %d of them POST, PUT, PATCH or DELETE\n", r.Served, len(r.Requests))
	fmt.Fprintf(tw, "statuses\t%s\n", countsLine(r.ByStatus))
	fmt.Fprintf(tw, "methods\t%s\n", countsLine(r.ByMethod))
	fmt.Fprintf(tw, "users\t%s\n", usersLine(r.Users))
	if r.Note != "" {
		fmt.Fprintf(tw, "NOTE\t%s\n", r.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Requests) == 0 {
		_, err := fmt.Fprintln(w, "\nno non-idempotent requests reached the canary")
		return err
	}
	fmt.Fprintf(w, "\nnon-idempotent requests the canary served, in order (%d):\n", len(r.Requests))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "time\trequest_id\tmethod\tpath\tstatus\tms\tupstream\tuser")
	for _, q := range r.Requests {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", q.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
			q.RequestID, q.Method, oneLine(q.Path), q.Status, strconv.FormatFloat(q.DurationMs, 'f', 1, 64),
			q.Upstream, oneLine(q.User))
	}
	return tw.Flush()
}

// CSVHeader is the first row WriteCSV writes.
var CSVHeader = []string{"time", "request_id", "method", "path", "status", "bytes_in", "bytes_out", "duration_ms", "upstream", "user"}

// WriteCSV writes r's non-idempotent requests as CSV, a row each under
// CSVHeader, for a spreadsheet.
func WriteCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(CSVHeader)
	for _, q := range r.Requests {
		_ = cw.Write([]string{
			q.Time.UTC().Format(time.RFC3339Nano), q.RequestID, q.Method, q.Path, strconv.Itoa(q.Status),
			strconv.FormatInt(q.BytesIn, 10), strconv.FormatInt(q.BytesOut, 10),
			strconv.FormatFloat(q.DurationMs, 'f', -1, 64), q.Upstream, q.User,
		})
	}
	cw.Flush()
	return cw.Error()
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func sideLine(s Side) string {
	return fmt.Sprintf("%d requests, %d errors (%.1f%%), p50 %s ms, p99 %s ms over the window",
		s.Requests, s.Errors, 100*s.ErrorRate, num(s.P50Ms), num(s.P99Ms))
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', 3, 64) }

// countsLine is "200: 7, 502: 2", in key order.
func countsLine(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func usersLine(u Users) string {
	if u.Count == 0 {
		return "none identified (no sticky key)"
	}
	shown := u.IDs[:min(len(u.IDs), textUsers)]
	line := fmt.Sprintf("%d: %s", u.Count, oneLine(strings.Join(shown, ", ")))
	if more := u.Count - len(shown); more > 0 {
		line += fmt.Sprintf(" and %d more (--json lists up to %d)", more, MaxUsers)
	}
	return line
}

// oneLine keeps a value a client chose from breaking the table's lines.
func oneLine(s string) string {
	return strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return '?'
		}
		return c
	}, s)
}
