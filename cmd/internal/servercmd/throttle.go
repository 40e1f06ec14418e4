package servercmd

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// throttled passes on at most one record per message text per period, and
// says how many it held back. protoactor logs some conditions on every
// attempt: with a cluster member down, every other member logs the failed
// health check twice a second for as long as it stays down.
type throttled struct {
	slog.Handler
	period time.Duration
	state  *throttleState // shared by the handlers WithAttrs and WithGroup derive
}

type throttleState struct {
	mu   sync.Mutex
	seen map[string]*seenMsg
}

type seenMsg struct {
	last time.Time
	held int
}

func newThrottled(h slog.Handler, period time.Duration) slog.Handler {
	return throttled{Handler: h, period: period, state: &throttleState{seen: map[string]*seenMsg{}}}
}

// Handle implements slog.Handler.
func (t throttled) Handle(ctx context.Context, r slog.Record) error {
	t.state.mu.Lock()
	s := t.state.seen[r.Message]
	if s == nil {
		if len(t.state.seen) > 1000 { // messages are a fixed set; bound it anyway
			clear(t.state.seen)
		}
		s = &seenMsg{}
		t.state.seen[r.Message] = s
	} else if r.Time.Sub(s.last) < t.period {
		s.held++
		t.state.mu.Unlock()
		return nil
	}
	held := s.held
	s.last, s.held = r.Time, 0
	t.state.mu.Unlock()
	if held > 0 {
		r.AddAttrs(slog.Int("repeats_held_back", held))
	}
	return t.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (t throttled) WithAttrs(as []slog.Attr) slog.Handler {
	return throttled{Handler: t.Handler.WithAttrs(as), period: t.period, state: t.state}
}

// WithGroup implements slog.Handler.
func (t throttled) WithGroup(name string) slog.Handler {
	return throttled{Handler: t.Handler.WithGroup(name), period: t.period, state: t.state}
}
