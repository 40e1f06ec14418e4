//go:build !race

// Allocation counts are meaningless under the race detector, where
// sync.Pool drops items at random: this file is left out of -race builds
// and CI runs it in a separate pass without -race.

package oplog

import (
	"io"
	"testing"
	"time"
)

func TestZeroAllocs(t *testing.T) {
	tick := fixed
	tests := []struct {
		name string
		now  func() time.Time
	}{
		{"fixed clock", fixedClock},
		// A new second on every line forces the timestamp to be re-rendered.
		{"clock advancing each line", func() time.Time { tick = tick.Add(time.Second); return tick }},
		{"real clock", time.Now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t, io.Discard, tt.now)
			allocs := testing.AllocsPerRun(1000, func() {
				l.Entry("10.0.0.7:5000", "getSaldo").Int(5).Str("saldo, insuficiente").Bool(true).Done()
			})
			if allocs != 0 {
				t.Errorf("got %v allocs per entry, want 0", allocs)
			}
		})
	}
}
