package pisoc

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Monitor reads physical memory through a QEMU's QMP socket (-qmp
// unix:PATH,server=on,wait=off).
type Monitor struct {
	conn net.Conn
	in   *bufio.Reader
}

// DialMonitor connects to QMP and leaves its capabilities negotiation done.
func DialMonitor(network, addr string) (*Monitor, error) {
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	m := &Monitor{conn: conn, in: bufio.NewReader(conn)}
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := m.read(&greeting); err != nil || greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: no greeting from %s: %v", addr, err)
	}
	if _, err := m.execute("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

func (m *Monitor) Close() error { return m.conn.Close() }

// read takes the next message that is not an asynchronous event.
func (m *Monitor) read(v any) error {
	for {
		m.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := m.in.ReadBytes('\n')
		if err != nil {
			return err
		}
		var probe struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.Event != "" {
			continue
		}
		return json.Unmarshal(line, v)
	}
}

func (m *Monitor) execute(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := m.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := m.read(&resp); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("qmp %s: %s", cmd, resp.Error.Desc)
	}
	return resp.Return, nil
}

// xpWord is one word of the monitor's "xp /Nwx ADDR" output.
var xpWord = regexp.MustCompile(`0x([0-9a-fA-F]{8})\b`)

// HMP runs a human monitor command ("info registers") and returns its
// output.
func (m *Monitor) HMP(command string) (string, error) {
	ret, err := m.execute("human-monitor-command", map[string]string{"command-line": command})
	if err != nil {
		return "", err
	}
	var text string
	if err := json.Unmarshal(ret, &text); err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	return text, nil
}

// Words reads n 32-bit words of physical memory at addr.
func (m *Monitor) Words(addr uint64, n int) ([]uint32, error) {
	text, err := m.HMP(fmt.Sprintf("xp /%dwx %#x", n, addr))
	if err != nil {
		return nil, err
	}
	var words []uint32
	for _, line := range strings.Split(text, "\n") {
		_, values, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, w := range xpWord.FindAllStringSubmatch(values, -1) {
			v, _ := strconv.ParseUint(w[1], 16, 32)
			words = append(words, uint32(v))
		}
	}
	if len(words) != n {
		return nil, fmt.Errorf("xp %#x: want %d words, the monitor said %q", addr, n, text)
	}
	return words, nil
}

// Registers reads GPFSEL0-3 and GPLEV0 of the GPIO block at base.
func (m *Monitor) Registers(base uint64) (Registers, error) {
	var r Registers
	fsel, err := m.Words(base+gpfsel0, len(r.FSel))
	if err != nil {
		return r, err
	}
	lev, err := m.Words(base+gplev0, 1)
	if err != nil {
		return r, err
	}
	copy(r.FSel[:], fsel)
	r.Level = lev[0]
	return r, nil
}

// Cont lets a guest started with -S, or paused, run.
func (m *Monitor) Cont() error {
	_, err := m.execute("cont", nil)
	return err
}

// Stub writes physical memory through QEMU's gdbstub (-gdb
// unix:PATH,server=on,wait=off). Connecting pauses the guest; writes leave
// it paused until Resume or Close lets it run.
type Stub struct {
	conn net.Conn
	in   *bufio.Reader
}

// DialStub connects to the gdbstub, which pauses the guest, and switches it
// to physical addresses.
func DialStub(network, addr string) (*Stub, error) {
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("gdbstub: %w", err)
	}
	s := &Stub{conn: conn, in: bufio.NewReader(conn)}
	// The stub's stop reply to the attach, if it sends one, is taken by
	// the first exchange's reply reading.
	if err := s.exchange("Qqemu.PhyMemMode:1", "OK"); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// Close lets the guest run and disconnects.
func (s *Stub) Close() error {
	s.send("c") // no reply until the guest stops again
	return s.conn.Close()
}

func checksum(data string) string {
	var sum byte
	for i := 0; i < len(data); i++ {
		sum += data[i]
	}
	return fmt.Sprintf("%02x", sum)
}

func (s *Stub) send(data string) error {
	_, err := fmt.Fprintf(s.conn, "$%s#%s", data, checksum(data))
	return err
}

// exchange sends a packet and waits for the reply want, skipping acks and
// stop replies (T..., S...).
func (s *Stub) exchange(data, want string) error {
	if err := s.send(data); err != nil {
		return fmt.Errorf("gdbstub %s: %w", data, err)
	}
	for {
		reply, err := s.packet()
		if err != nil {
			return fmt.Errorf("gdbstub %s: %w", data, err)
		}
		if reply != "" && (reply[0] == 'T' || reply[0] == 'S') {
			continue
		}
		if reply != want {
			return fmt.Errorf("gdbstub %s: replied %q, want %q", data, reply, want)
		}
		return nil
	}
}

// packet reads one $...#cs packet, acking it.
func (s *Stub) packet() (string, error) {
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		b, err := s.in.ReadByte()
		if err != nil {
			return "", err
		}
		if b != '$' {
			continue // '+' acks, '-' naks of nothing we resend
		}
		data, err := s.in.ReadString('#')
		if err != nil {
			return "", err
		}
		if _, err := s.in.Discard(2); err != nil {
			return "", err
		}
		s.conn.Write([]byte{'+'})
		return strings.TrimSuffix(data, "#"), nil
	}
}

// interrupt pauses the running guest.
func (s *Stub) interrupt() error {
	if _, err := s.conn.Write([]byte{0x03}); err != nil {
		return err
	}
	for {
		reply, err := s.packet()
		if err != nil {
			return fmt.Errorf("gdbstub interrupt: %w", err)
		}
		if reply != "" && (reply[0] == 'T' || reply[0] == 'S') {
			return nil
		}
	}
}

// WriteWord writes a 32-bit word to physical memory, the guest paused.
func (s *Stub) WriteWord(addr uint64, v uint32) error {
	b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} // little-endian
	return s.exchange(fmt.Sprintf("M%x,4:%s", addr, hex.EncodeToString(b)), "OK")
}

// Resume lets the guest run after a write.
func (s *Stub) Resume() error { return s.send("c") }

// Pause stops the guest for the next writes.
func (s *Stub) Pause() error { return s.interrupt() }

// SetLevel moves GPIO n to level through GPSET0 or GPCLR0, which QEMU's
// model lets set an input's level as a wire to it would. The guest is
// paused on entry and left paused.
func (s *Stub) SetLevel(base uint64, n int, high bool) error {
	if n < 0 || n > 31 {
		return errors.New("gpio: only GPIO0 to GPIO31")
	}
	reg := uint64(gpclr0)
	if high {
		reg = gpset0
	}
	return s.WriteWord(base+reg, 1<<n)
}
