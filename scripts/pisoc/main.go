// Command pisoc is make e2e-pi's hand on an emulated Pi's header: it reads
// the front panel out of the SoC's GPIO registers and presses the button,
// through the QEMU's QMP and gdbstub sockets (package internal/pisoc).
//
//	pisoc -qmp SOCK watch [-for 2s]          the panel over a while, as JSON
//	pisoc -qmp SOCK until -status P -canary P [-for 60s]
//	                                         watches until the panel shows that
//	pisoc -qmp SOCK held [-for 120s]         until the LED lines are outputs
//	pisoc -gdb SOCK level GPIO23 high|low    drives a line as a wire would
//	pisoc -gdb SOCK press 800ms              the button down that long, then up
//	pisoc -qmp SOCK cont                     lets a QEMU started with -S run
//	pisoc -qmp SOCK hmp COMMAND...           a human monitor command's output
//
// Exit status 0, 1 when the panel did not show what was asked in time, 2
// for a usage error.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/canary-pi/canary-pi/internal/pisoc"
)

func main() {
	qmp := flag.String("qmp", "", "QEMU's QMP unix socket")
	gdb := flag.String("gdb", "", "QEMU's gdbstub unix socket")
	base := flag.Uint64("base", pisoc.BaseBCM2837, "physical address of the GPIO block (0x20200000 on a Pi 1 or Zero)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pisoc -qmp SOCK watch|until|held ... | -gdb SOCK level|press ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	w := pisoc.DefaultWiring
	var err error
	switch cmd, args := flag.Arg(0), flag.Args()[1:]; cmd {
	case "watch", "until", "held":
		err = read(*qmp, *base, w, cmd, args)
	case "level", "press":
		err = drive(*gdb, *base, w, cmd, args)
	case "cont", "hmp":
		err = monitor(*qmp, cmd, args)
	default:
		err = usage("unknown command %q", cmd)
	}
	var u usageError
	switch {
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, "pisoc:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "pisoc:", err)
		os.Exit(1)
	}
}

type usageError string

func (u usageError) Error() string { return string(u) }

func usage(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

func read(sock string, base uint64, w pisoc.Wiring, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	span := fs.Duration("for", 2*time.Second, "how long to watch (until, held: how long to wait at most)")
	every := fs.Duration("every", 10*time.Millisecond, "time between samples")
	status := fs.String("status", "", "until: the status LED's pattern to wait for")
	canary := fs.String("canary", "", "until: the canary light's pattern to wait for")
	if err := fs.Parse(args); err != nil {
		return usage("%s: %v", cmd, err)
	}
	if sock == "" {
		return usage("%s needs -qmp", cmd)
	}
	m, err := pisoc.DialMonitor("unix", sock)
	if err != nil {
		return err
	}
	defer m.Close()
	watch := func(d time.Duration) (pisoc.Reading, error) {
		var samples []pisoc.Sample
		start := time.Now()
		for t := start; time.Since(start) <= d; t = t.Add(*every) {
			r, err := m.Registers(base)
			if err != nil {
				return pisoc.Reading{}, err
			}
			samples = append(samples, w.Decode(r, time.Since(start)))
			time.Sleep(time.Until(t.Add(*every)))
		}
		return pisoc.Read(w, samples), nil
	}
	deadline := time.Now().Add(*span)
	switch cmd {
	case "watch":
		r, err := watch(*span)
		if err != nil {
			return err
		}
		return emit(r)
	case "held":
		for {
			r, err := m.Registers(base)
			if err != nil {
				return err
			}
			s := w.Decode(r, 0)
			if s.Lines[w.StatusLED].Function == pisoc.Output && s.Lines[w.CanaryGreen].Function == pisoc.Output &&
				s.Lines[w.CanaryRed].Function == pisoc.Output {
				return emit(pisoc.Read(w, []pisoc.Sample{s}))
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("held: the LED lines are not outputs after %s: %+v", *span, s.Lines)
			}
			time.Sleep(20 * time.Millisecond)
		}
	default: // until
		if *status == "" && *canary == "" {
			return usage("until needs -status or -canary")
		}
		for {
			// Two blink cycles and a little: enough to tell steady from blinking.
			r, err := watch(1200 * time.Millisecond)
			if err != nil {
				return err
			}
			if (*status == "" || r.Status == *status) && (*canary == "" || r.Canary == *canary) {
				return emit(r)
			}
			if time.Now().After(deadline) {
				emit(r)
				return fmt.Errorf("until: the panel shows status %s, canary %s after %s; want status %q, canary %q",
					r.Status, r.Canary, *span, *status, *canary)
			}
		}
	}
}

func monitor(sock, cmd string, args []string) error {
	if sock == "" {
		return usage("%s needs -qmp", cmd)
	}
	if cmd == "hmp" && len(args) == 0 {
		return usage("hmp COMMAND")
	}
	m, err := pisoc.DialMonitor("unix", sock)
	if err != nil {
		return err
	}
	defer m.Close()
	if cmd == "cont" {
		return m.Cont()
	}
	out, err := m.HMP(strings.Join(args, " "))
	fmt.Print(out)
	return err
}

func emit(r pisoc.Reading) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(b))
	return err
}

func drive(sock string, base uint64, w pisoc.Wiring, cmd string, args []string) error {
	if sock == "" {
		return usage("%s needs -gdb", cmd)
	}
	var line int
	var high bool
	var hold time.Duration
	switch cmd {
	case "level":
		if len(args) != 2 {
			return usage("level GPIO<n> high|low")
		}
		n, err := strconv.Atoi(strings.TrimPrefix(args[0], "GPIO"))
		if err != nil || n < 0 || n > 31 {
			return usage("level: %q is not GPIO0 to GPIO31", args[0])
		}
		if args[1] != "high" && args[1] != "low" {
			return usage("level: %q: want high or low", args[1])
		}
		line, high = n, args[1] == "high"
	case "press":
		if len(args) != 1 {
			return usage("press DURATION")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d <= 0 {
			return usage("press: %q is not a duration", args[0])
		}
		line, hold = w.Button, d
	}
	s, err := pisoc.DialStub("unix", sock)
	if err != nil {
		return err
	}
	defer s.Close()
	if cmd == "level" {
		return s.SetLevel(base, line, high)
	}
	// The button is active low: down is low, up is high.
	if err := s.SetLevel(base, line, false); err != nil {
		return err
	}
	down := time.Now()
	if err := s.Resume(); err != nil {
		return err
	}
	time.Sleep(hold)
	if err := s.Pause(); err != nil {
		return err
	}
	if err := s.SetLevel(base, line, true); err != nil {
		return err
	}
	fmt.Printf("pressed GPIO%d for %s\n", line, time.Since(down).Round(time.Millisecond))
	return nil
}
