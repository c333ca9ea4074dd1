package pisoc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fsel puts function code f for GPIO n into the three GPFSEL registers.
func fsel(r *Registers, n int, f uint32) {
	r.FSel[n/10] &^= 7 << (3 * (n % 10))
	r.FSel[n/10] |= f << (3 * (n % 10))
}

func TestALitLEDIsAnOutputDrivenHigh(t *testing.T) {
	var r Registers
	fsel(&r, 17, 1)
	fsel(&r, 22, 1)
	fsel(&r, 27, 0) // released to an input, its last level kept by QEMU
	fsel(&r, 14, 4) // TXD0
	fsel(&r, 31, 1)
	r.Level = 1<<17 | 1<<27 | 1<<23 | 1<<31
	for _, c := range []struct {
		n    int
		want Line
		lit  bool
	}{
		{17, Line{Output, 1}, true},
		{22, Line{Output, 0}, false},
		{27, Line{Input, 1}, false},
		{14, Line{"alt0", 0}, false},
		{23, Line{Input, 1}, false},
		{31, Line{Output, 1}, true},
	} {
		got := r.Line(c.n)
		if got != c.want || got.Lit() != c.lit {
			t.Errorf("GPIO%d: %+v lit %v, want %+v lit %v", c.n, got, got.Lit(), c.want, c.lit)
		}
	}
	s := DefaultWiring.Decode(r, 0)
	if !s.CanaryRed || s.CanaryGreen || s.Status || s.ButtonDown {
		t.Errorf("panel %+v: want only the canary's red lit and the button up", s)
	}
}

// samples makes a panel of the default wiring over span, every step, with
// each LED's level a function of time.
func samples(span, step time.Duration, status, green, red func(time.Duration) bool) []Sample {
	var out []Sample
	for at := time.Duration(0); at <= span; at += step {
		out = append(out, Sample{At: at, Status: status(at), CanaryGreen: green(at), CanaryRed: red(at)})
	}
	return out
}

func TestReadNamesThePatternsAsTheStatusJSONDoes(t *testing.T) {
	on := func(time.Duration) bool { return true }
	off := func(time.Duration) bool { return false }
	blink := func(at time.Duration) bool { return (at/(250*time.Millisecond))%2 == 0 } // 250 ms lit, 250 dark
	for _, c := range []struct {
		name                string
		status, green, red  func(time.Duration) bool
		wantStatus, wantCan string
		wantPeriod          float64
	}{
		{"serving", on, on, off, "green", "green", 0},
		{"bad verdict", on, off, on, "green", "red", 0},
		{"rolled back", on, off, blink, "green", "red-blink", 500},
		{"bad config", blink, on, off, "green-blink", "green", 0},
		{"stopped", off, off, off, "off", "off", 0},
		{"both colours", on, on, on, "green", "amber", 0},
	} {
		r := Read(DefaultWiring, samples(2*time.Second, 10*time.Millisecond, c.status, c.green, c.red))
		if r.Status != c.wantStatus || r.Canary != c.wantCan {
			t.Errorf("%s: status %s canary %s, want %s %s", c.name, r.Status, r.Canary, c.wantStatus, c.wantCan)
		}
		period := r.CanaryPeriod
		if c.wantStatus == "green-blink" {
			period = r.StatusPeriod
			c.wantPeriod = 500
		}
		if period != c.wantPeriod {
			t.Errorf("%s: period %v ms, want %v", c.name, period, c.wantPeriod)
		}
	}
}

// fakeQMP answers QMP as QEMU does, xp from mem.
func fakeQMP(t *testing.T, mem map[uint64]uint32) string {
	sock := filepath.Join(t.TempDir(), "qmp")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintln(c, `{"QMP": {"version": {}, "capabilities": []}}`)
		in := bufio.NewScanner(c)
		for in.Scan() {
			var req struct {
				Execute   string            `json:"execute"`
				Arguments map[string]string `json:"arguments"`
			}
			json.Unmarshal(in.Bytes(), &req)
			fmt.Fprintln(c, `{"timestamp": {}, "event": "RTC_CHANGE", "data": {}}`)
			if req.Execute != "human-monitor-command" {
				fmt.Fprintln(c, `{"return": {}}`)
				continue
			}
			var n int
			var addr uint64
			fmt.Sscanf(req.Arguments["command-line"], "xp /%dwx %v", &n, &addr)
			var text strings.Builder
			for i := 0; i < n; i++ {
				a := addr + uint64(4*i)
				fmt.Fprintf(&text, "%016x: 0x%08x\r\n", a, mem[a])
			}
			b, _ := json.Marshal(map[string]string{"return": text.String()})
			c.Write(append(b, '\n'))
		}
	}()
	return sock
}

func TestTheMonitorReadsTheGPIORegisters(t *testing.T) {
	base := uint64(BaseBCM2837)
	mem := map[uint64]uint32{
		base + 4:      1 << 21,       // GPIO17 output
		base + 8:      1<<6 | 1<<21,  // GPIO22, GPIO27 output
		base + gplev0: 1<<22 | 1<<23, // status lit, button up
	}
	m, err := DialMonitor("unix", fakeQMP(t, mem))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := m.Registers(base)
	if err != nil {
		t.Fatal(err)
	}
	s := DefaultWiring.Decode(r, 0)
	if !s.Status || s.CanaryGreen || s.CanaryRed || s.ButtonDown {
		t.Errorf("panel %+v from %+v: want the status LED lit, the rest dark, the button up", s, r)
	}
}

// fakeStub is a gdbstub that records the packets it was sent.
func fakeStub(t *testing.T) (string, <-chan string) {
	sock := filepath.Join(t.TempDir(), "gdb")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 16)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		in := bufio.NewReader(c)
		reply := func(s string) { fmt.Fprintf(c, "+$%s#%s", s, checksum(s)) }
		for {
			b, err := in.ReadByte()
			if err != nil {
				close(got)
				return
			}
			switch b {
			case 0x03:
				got <- "^C"
				reply("T02thread:01;")
			case '$':
				data, _ := in.ReadString('#')
				sum := make([]byte, 2)
				in.Read(sum)
				data = strings.TrimSuffix(data, "#")
				if checksum(data) != string(sum) {
					t.Errorf("packet %q: checksum %s, want %s", data, sum, checksum(data))
				}
				got <- data
				if data != "c" {
					reply("OK")
				}
			}
		}
	}()
	return sock, got
}

func TestAPressIsTheButtonLineLowThenHigh(t *testing.T) {
	sock, got := fakeStub(t)
	s, err := DialStub("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetLevel(BaseBCM2837, 23, false); err != nil {
		t.Fatal(err)
	}
	s.Resume()
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLevel(BaseBCM2837, 23, true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var seen []string
	for p := range got {
		seen = append(seen, p)
	}
	want := []string{"Qqemu.PhyMemMode:1", "M3f200028,4:00008000", "c", "^C", "M3f20001c,4:00008000", "c"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("packets %q, want %q", seen, want)
	}
}
