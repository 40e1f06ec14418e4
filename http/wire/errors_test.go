package wire

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
)

// TestCodesRoundTrip: every code of the contract has one sentinel, which
// carries the code back through wrapping, and travels unchanged through a
// body (AppendError, BodyCode) and a request's report (SetRefusal, Refusal).
func TestCodesRoundTrip(t *testing.T) {
	codes := teller.Codes()
	if len(codes) != 18 || codes[0] != teller.LockedAccount || codes[len(codes)-1] != teller.LinkedOpen {
		t.Fatalf("Codes() = %v, want -1 to -18", codes)
	}
	seen := map[error]teller.Code{}
	for _, c := range codes {
		err := c.Err()
		if err == nil {
			t.Fatalf("%v: no sentinel", c)
		}
		if other, dup := seen[err]; dup {
			t.Errorf("%v and %v share a sentinel", c, other)
		}
		seen[err] = c
		if c.String() == "UNKNOWN_ERROR" || err.Error() == "" {
			t.Errorf("%d: name %q, message %q", c, c, err)
		}
		if got, ok := teller.CodeOf(fmt.Errorf("context: %w", err)); !ok || got != c {
			t.Errorf("CodeOf(wrapped %v) = %v, %v; want %v", c, got, ok, c)
		}
		if got, ok := BodyCode(AppendError(nil, c, "msg")); !ok || got != c {
			t.Errorf("BodyCode(AppendError(%v)) = %v, %v", c, got, ok)
		}
		var ctx fasthttp.RequestCtx
		if _, ok := Refusal(&ctx); ok {
			t.Fatal("Refusal before any report")
		}
		SetRefusal(&ctx, c)
		if got, ok := Refusal(&ctx); !ok || got != c {
			t.Errorf("Refusal after SetRefusal(%v) = %v, %v", c, got, ok)
		}
	}
	for _, c := range []teller.Code{0, 1, -19, -1000} {
		if err := c.Err(); err != nil {
			t.Errorf("Code(%d).Err() = %v, want nil", c, err)
		}
		var ctx fasthttp.RequestCtx
		SetRefusal(&ctx, c) // a code the contract lacks is still reported
		if got, ok := Refusal(&ctx); !ok || got != c {
			t.Errorf("Refusal after SetRefusal(%d) = %v, %v", c, got, ok)
		}
	}
	if _, ok := teller.CodeOf(fmt.Errorf("plain")); ok {
		t.Error("CodeOf a plain error reports a code")
	}
}

func TestBodyCode(t *testing.T) {
	for _, tt := range []struct {
		body string
		code teller.Code
		ok   bool
	}{
		{`{"error_code":-4,"error":"no"}`, teller.NotFound, true},
		{`{"error_code":-13}`, teller.KeyReused, true},
		{`{"error_code":7}`, 7, true},
		{`{"saldo":5}`, 0, false},
		{`{"error_code":}`, 0, false},
		{`{"error_code":-}`, 0, false},
		{`{"error_code"`, 0, false},
		{` {"error_code":-1}`, 0, false}, // not as AppendError writes it
		{``, 0, false},
	} {
		if code, ok := BodyCode([]byte(tt.body)); code != tt.code || ok != tt.ok {
			t.Errorf("BodyCode(%s) = %v, %v; want %v, %v", tt.body, code, ok, tt.code, tt.ok)
		}
	}
}
