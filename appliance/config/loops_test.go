package config

import "testing"

func TestSameListener(t *testing.T) {
	for _, tt := range []struct {
		upstream, listen string
		same             bool
	}{
		{"127.0.0.1:9090", "127.0.0.1:9090", true},
		{"localhost:9090", "127.0.0.1:9090", true},
		{"127.0.0.1:9090", ":9090", true},
		{"[::1]:9090", "0.0.0.0:9090", true},
		{"127.0.0.2:9090", "127.0.0.1:9090", false}, // another loopback address, another socket
		{"127.0.0.1:9091", "127.0.0.1:9090", false},
		{"10.0.0.5:9090", ":9090", false}, // may be another machine
		{"app.internal:9090", "127.0.0.1:9090", false},
		{"app.internal:9090", "app.internal:9090", true},
	} {
		if got := sameListener(tt.upstream, tt.listen); got != tt.same {
			t.Errorf("sameListener(%q, %q) = %v, want %v", tt.upstream, tt.listen, got, tt.same)
		}
	}
}
