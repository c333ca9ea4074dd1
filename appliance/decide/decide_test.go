package decide

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canary-pi/canary-pi/appliance/analysis"
	"github.com/canary-pi/canary-pi/appliance/config"
	"github.com/canary-pi/canary-pi/appliance/state"
	"github.com/canary-pi/canary-pi/gpio/led"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

var (
	armed      = state.Latch{}
	rolledBack = state.Latch{Mode: state.RolledBack, Version: "v2", Cause: "button", At: t0}
	promoted   = state.Latch{Mode: state.Promoted, Version: "v2", Cause: "command", At: t0}
)

func TestActMovesTrafficAndLatchInTheSafeOrder(t *testing.T) {
	tests := []struct {
		name  string
		latch state.Latch
		op    Op
		mode  state.Mode
		steps []Step
	}{
		// Traffic leaves the canary before the SD card is written.
		{"rollback", armed, Rollback, state.RolledBack, []Step{Publish, Save}},
		{"rollback of a promotion", promoted, Rollback, state.RolledBack, []Step{Publish, Save}},
		// Toward the canary only once the latch is on disk; a re-arm starts clean.
		{"resume after a rollback", rolledBack, Resume, state.Canary, []Step{Save, ResetCanary, Publish}},
		{"resume after a promotion", promoted, Resume, state.Canary, []Step{Save, ResetCanary, Publish}},
		{"promote", armed, Promote, state.Promoted, []Step{Save, Publish}},
		// Nothing to do.
		{"rollback while rolled back", rolledBack, Rollback, state.RolledBack, nil},
		{"promote while promoted", promoted, Promote, state.Promoted, nil},
		{"resume while armed", armed, Resume, state.Canary, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Act(tt.latch, true, "v2", tt.op, "command", t0)
			if err != nil {
				t.Fatal(err)
			}
			if d.Mode != tt.mode || !slices.Equal(d.Steps, tt.steps) {
				t.Fatalf("Act = mode %s, steps %v; want %s, %v", d.Mode, d.Steps, tt.mode, tt.steps)
			}
			if tt.steps == nil && d.Latch != tt.latch {
				t.Errorf("a decision without steps changed the latch: %+v", d.Latch)
			}
		})
	}
}

func TestActRecordsWhoAndWhen(t *testing.T) {
	d, err := Act(armed, true, "v2", Rollback, "button", t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := (state.Latch{Mode: state.RolledBack, Version: "v2", Cause: "button", At: t0}); d.Latch != want {
		t.Errorf("latch %+v, want %+v", d.Latch, want)
	}
}

func TestActRefusals(t *testing.T) {
	for _, tt := range []struct {
		name      string
		latch     state.Latch
		hasCanary bool
		op        Op
		want      string
	}{
		{"rollback without a canary", armed, false, Rollback, "no canary"},
		{"promote while rolled back", rolledBack, true, Promote, "resume first"},
		{"an unknown action", armed, true, Op("pause"), "unknown action"},
	} {
		d, err := Act(tt.latch, tt.hasCanary, "v2", tt.op, "command", t0)
		if err == nil || !strings.Contains(err.Error(), tt.want) || d.Steps != nil || d.Latch != tt.latch {
			t.Errorf("%s: %+v, %v; want the latch unchanged, no steps and an error with %q", tt.name, d, err, tt.want)
		}
	}
}

func TestPressShortRollsBackLongResumes(t *testing.T) {
	if Press(false) != Rollback || Press(true) != Resume {
		t.Fatalf("Press(short) = %s, Press(long) = %s; want rollback, resume", Press(false), Press(true))
	}
}

func canaryConfig(version string) *config.Config {
	u, _ := url.Parse("http://127.0.0.1:8002")
	return &config.Config{
		Upstreams: []config.Upstream{{Name: "v2", URL: u, Weight: 5, Role: config.Canary}},
		Canary:    config.CanaryPolicy{Version: version},
	}
}

func TestConfiguredKeepsOrRearmsTheLatch(t *testing.T) {
	tests := []struct {
		name        string
		latch       state.Latch
		cfg         *config.Config
		prevVersion string
		want        state.Latch
		mode        state.Mode
		steps       []Step
	}{
		{"same version keeps the rollback", rolledBack, canaryConfig("v2"), "v2", rolledBack, state.RolledBack, nil},
		{"a new version re-arms", rolledBack, canaryConfig("v3"), "v2", armed, state.Canary, []Step{Save, ResetCanary}},
		{"a new version while armed starts a clean window", armed, canaryConfig("v3"), "v2", armed, state.Canary, []Step{ResetCanary}},
		{"no canary: the latch waits", rolledBack, &config.Config{}, "v2", rolledBack, state.NoCanary, []Step{ResetCanary}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Configured(tt.latch, tt.cfg, tt.prevVersion)
			if d.Latch != tt.want || d.Mode != tt.mode || !slices.Equal(d.Steps, tt.steps) {
				t.Fatalf("Configured = %+v; want latch %+v, mode %s, steps %v", d, tt.want, tt.mode, tt.steps)
			}
			if got, want := Rearmed(tt.latch, d), tt.latch.Latched() && !tt.want.Latched(); got != want {
				t.Errorf("Rearmed = %v, want %v", got, want)
			}
		})
	}
}

func TestAutoRollbackOnlyOnABadVerdictWhileServing(t *testing.T) {
	bad := analysis.Verdict{State: analysis.Bad, Reason: "5xx"}
	for _, tt := range []struct {
		enabled bool
		mode    state.Mode
		v       analysis.Verdict
		want    bool
	}{
		{true, state.Canary, bad, true},
		{false, state.Canary, bad, false},
		{true, state.Promoted, bad, false},
		{true, state.RolledBack, bad, false},
		{true, state.Canary, analysis.Verdict{State: analysis.Shared}, false},
		{true, state.Canary, analysis.Verdict{State: analysis.Good}, false},
	} {
		if got := AutoRollback(tt.enabled, tt.mode, tt.v); got != tt.want {
			t.Errorf("AutoRollback(%v, %s, %s) = %v, want %v", tt.enabled, tt.mode, tt.v.State, got, tt.want)
		}
	}
}

func TestLights(t *testing.T) {
	tests := []struct {
		mode           state.Mode
		cfgErr         string
		verdict        analysis.State
		cutOff         bool
		status, canary led.Pattern
	}{
		{state.Canary, "", analysis.Good, false, led.Green, led.Green},
		{state.Canary, "", analysis.NotEnough, false, led.Green, led.Green},
		{state.Canary, "", analysis.Shared, false, led.Green, led.Green},
		{state.Canary, "", analysis.Bad, false, led.Green, led.Red},
		{state.RolledBack, "", analysis.Bad, false, led.Green, led.RedBlink},
		{state.RolledBack, "", analysis.Good, false, led.Green, led.RedBlink},
		{state.Promoted, "", analysis.Bad, false, led.Green, led.Off},
		{state.NoCanary, "", analysis.NotEnough, false, led.Green, led.Off},
		{state.Canary, "a.toml:3: bad", analysis.Good, false, led.GreenBlink, led.Green},
		{state.Canary, "", analysis.Good, true, led.GreenWink, led.Green},
		{state.RolledBack, "", analysis.Good, true, led.GreenWink, led.RedBlink},
		{state.Canary, "a.toml:3: bad", analysis.Good, true, led.GreenBlink, led.Green},
	}
	for _, tt := range tests {
		status, canary := Lights(tt.mode, tt.cfgErr, tt.verdict, tt.cutOff)
		if status != tt.status || canary != tt.canary {
			t.Errorf("Lights(%s, %q, %s, %t) = %s, %s; want %s, %s", tt.mode, tt.cfgErr, tt.verdict, tt.cutOff,
				status, canary, tt.status, tt.canary)
		}
	}
}

func TestMessageSaysWhoRolledBack(t *testing.T) {
	if got := Message(state.RolledBack, rolledBack, analysis.Verdict{}); !strings.Contains(got, "by the button") || !strings.Contains(got, "v2") {
		t.Errorf("Message after a button rollback = %q", got)
	}
	if got := Message(state.Canary, armed, analysis.Verdict{State: analysis.Good}); got != "" {
		t.Errorf("Message for a healthy canary = %q, want none", got)
	}
}
