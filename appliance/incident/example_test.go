package incident_test

import (
	"fmt"
	"os"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/incident"
	"github.com/canary-pi/canary-pi/appliance/journal"
	"github.com/canary-pi/canary-pi/appliance/state"
)

// The daemon's part at a rollback, once the traffic has moved: read what
// the canary served for this version since it went live, build the report
// and write it, off the rollback's path.
func Example() {
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	j := journal.New(1000, 0)
	seqAtStart := j.Seq() // remembered when the version went live
	for i, m := range []string{"GET", "POST", "DELETE"} {
		j.Add(&journal.Entry{Time: started.Add(time.Duration(i) * time.Second), RequestID: []byte(fmt.Sprint("id-", i)),
			Method: []byte(m), Path: []byte("/orders"), Status: 200, Upstream: "w2", Version: "v2"})
	}

	records, lost := j.After(seqAtStart, func(r *journal.Record) bool { return r.Version == "v2" })
	r := incident.Build(incident.Input{
		Version: "v2", Cause: state.CauseButton, Started: started, RolledBack: started.Add(15 * time.Minute),
		Verdict: analysis.Verdict{State: analysis.Good}, Records: records, Lost: lost,
	})

	dir, _ := os.MkdirTemp("", "state")
	defer os.RemoveAll(dir)
	store, _ := incident.Open(dir)
	done := make(chan error, 1)
	go func() { _, err := store.Write(r, 100, 64<<20); done <- err }()
	if err := <-done; err != nil {
		fmt.Println(err)
	}

	sums, _ := store.List()
	fmt.Println(sums[0].ID, sums[0].Requests, "writes")
	_ = incident.WriteCSV(os.Stdout, r)
	// Output:
	// 20261201T101500Z-v2 2 writes
	// time,request_id,method,path,status,bytes_in,bytes_out,duration_ms,upstream,user
	// 2026-12-01T10:00:01Z,id-1,POST,/orders,200,0,0,0,w2,
	// 2026-12-01T10:00:02Z,id-2,DELETE,/orders,200,0,0,0,w2,
}
