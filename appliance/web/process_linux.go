package web

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// userHZ is the unit of /proc's CPU times: 100 a second on every Linux
// canaryd runs on.
const userHZ = 100

// writeProcess writes the process_ families from /proc/self, under the
// names Prometheus's clients give them. A file that cannot be read costs
// its families only.
func writeProcess(e *expo) {
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The fields after the command, which is in parentheses and may
		// hold spaces: state is field 3, utime 14, stime 15, starttime
		// 22.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			f := bytes.Fields(stat[i+1:])
			field := func(n int) float64 {
				if n-3 >= len(f) {
					return 0
				}
				v, _ := strconv.ParseFloat(string(f[n-3]), 64)
				return v
			}
			e.one("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.",
				(field(14)+field(15))/userHZ)
			if boot, ok := bootTime(); ok {
				e.one("process_start_time_seconds", "gauge", "Start time of the process since the epoch, in seconds.",
					boot+field(22)/userHZ)
			}
		}
	}
	// The sizes from statm, in pages: what stat says too, and what an
	// emulator (qemu-user, in the tests for the Pi) passes through where
	// it fakes stat's.
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := bytes.Fields(statm); len(f) >= 2 {
			size, _ := strconv.ParseFloat(string(f[0]), 64)
			resident, _ := strconv.ParseFloat(string(f[1]), 64)
			page := float64(os.Getpagesize())
			e.one("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", size*page)
			e.one("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", resident*page)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		e.one("process_open_fds", "gauge", "Open file descriptors.", float64(len(fds)-1)) // less ReadDir's own
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		e.one("process_max_fds", "gauge", "The limit of open file descriptors.", float64(lim.Cur))
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil {
		e.one("process_virtual_memory_max_bytes", "gauge", "The limit of virtual memory, in bytes.", float64(lim.Cur))
	}
	if in, out, ok := ipOctets(); ok {
		e.one("process_network_receive_bytes_total", "counter", "Bytes received by the process's network namespace.", in)
		e.one("process_network_transmit_bytes_total", "counter", "Bytes sent by the process's network namespace.", out)
	}
}

// ipOctets reads the IP bytes in and out of the process's network
// namespace from /proc/self/net/netstat, whose IpExt lines are a header
// of names and a line of values.
func ipOctets() (in, out float64, ok bool) {
	data, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0, false
	}
	var names [][]byte
	for line := range bytes.Lines(data) {
		rest, found := bytes.CutPrefix(line, []byte("IpExt:"))
		if !found {
			continue
		}
		if names == nil {
			names = bytes.Fields(rest)
			continue
		}
		var got int
		for i, v := range bytes.Fields(rest) {
			if i >= len(names) {
				break
			}
			switch string(names[i]) {
			case "InOctets":
				in, _ = strconv.ParseFloat(string(v), 64)
				got++
			case "OutOctets":
				out, _ = strconv.ParseFloat(string(v), 64)
				got++
			}
		}
		return in, out, got == 2
	}
	return 0, 0, false
}

// bootTime is the time the system booted, in seconds since the epoch, from
// /proc/stat's btime.
func bootTime() (float64, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			t, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
			return t, err == nil
		}
	}
	return 0, false
}
