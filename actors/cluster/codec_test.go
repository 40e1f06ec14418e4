package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
)

func TestCallRoundTrip(t *testing.T) {
	tests := []call{
		{},
		{req: actors.Request{Op: actors.OpLock, Holder: "biz-1", Fence: 1<<40 + 7, TTL: 5 * time.Second, Wait: time.Second}, timeout: 2 * time.Second},
		{req: actors.Request{Op: actors.OpCommit, Holder: "h", Fence: 9, Value: 1}, version: 42},
		{req: actors.Request{Op: actors.OpLock, Holder: "biz-2", TS: 1<<62 + 3, Version: 1<<40 + 1, Scheme: account.WoundWait, Wait: time.Second, Detect: true}},
		{req: actors.Request{Op: actors.OpCommit, Holder: "h", Fence: 9, Unlock: true}, version: 43},
		{req: actors.Request{Op: actors.OpWrite, Holder: string(make([]byte, 300)), Value: 1<<63 - 1}},
		{req: actors.Request{Op: opRetire}},
	}
	for i, c := range tests {
		got, err := decodeCall(encodeCall(c).Value)
		if err != nil || got != c {
			t.Errorf("%d: round trip of %+v = %+v, %v", i, c, got, err)
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	exp := time.Unix(1700000000, 123456789)
	tests := []reply{
		{},
		{rep: actors.Reply{Balance: 1000, Holder: "biz", Fence: 3 << 32, Expires: exp, Waiting: 2}, version: 7},
		{rep: actors.Reply{Balance: 5}, err: account.ErrLocked},
		{rep: actors.Reply{Balance: 5, Version: 1<<33 + 9}, err: account.ErrDied},
		{rep: actors.Reply{}, err: account.ErrDeadlock},
		{err: fmt.Errorf("%w: store: account 3: superseded", actors.ErrStore)},
		{err: errors.New("something else")},
	}
	for i, r := range tests {
		got, err := decodeReply(encodeReply(r).Value)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got.rep.Balance != r.rep.Balance || got.rep.Holder != r.rep.Holder || got.rep.Fence != r.rep.Fence ||
			!got.rep.Expires.Equal(r.rep.Expires) || got.rep.Waiting != r.rep.Waiting || got.version != r.version {
			t.Errorf("%d: round trip of %+v = %+v", i, r, got)
		}
		switch {
		case r.err == nil && got.err != nil:
			t.Errorf("%d: error %v out of nothing", i, got.err)
		case r.err != nil && (got.err == nil || got.err.Error() != r.err.Error()):
			t.Errorf("%d: error %v came back as %v", i, r.err, got.err)
		}
	}
	// The sentinel survives the trip, so that the HTTP layer maps it.
	for _, sentinel := range errorCodes[1:] {
		got, err := decodeReply(encodeReply(reply{err: fmt.Errorf("wrapped: %w", sentinel)}).Value)
		if err != nil || !errors.Is(got.err, sentinel) {
			t.Errorf("%v came back as %v (%v)", sentinel, got.err, err)
		}
	}
	// An error outside the list is internal: never mistaken for a refusal.
	got, _ := decodeReply(encodeReply(reply{err: errors.New("boom")}).Value)
	if !errors.Is(got.err, actors.ErrInternal) {
		t.Errorf("an unlisted error came back as %v, want ErrInternal", got.err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeCall(call{req: actors.Request{Op: actors.OpLock, Holder: "x"}}).Value)
	f.Add(encodeReply(reply{rep: actors.Reply{Holder: "y"}, err: account.ErrBusy}).Value)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeCall(b); err == nil {
			if again, err := decodeCall(encodeCall(c).Value); err != nil || again != c {
				t.Fatalf("call %+v does not round trip: %+v, %v", c, again, err)
			}
		}
		_, _ = decodeReply(b) // must not panic on any input
	})
}
