package wire

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestFasthttpLoggerWritesNoRequestContent calls the logger as fasthttp
// does, with arguments that hold a secret in every form fasthttp passes
// (an error quoting the request, a string, a byte slice, a Stringer such
// as a RequestCtx): the secret is never written, the addresses and the
// error's class are.
func TestFasthttpLoggerWritesNoRequestContent(t *testing.T) {
	const secret = "S3cr3tTok"
	raddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
	laddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("token", secret)
	ctx.Request.SetRequestURI("/getSaldo?conta=1&id_negoc=" + secret)
	for _, tc := range []struct {
		name   string
		format string
		args   []any
		want   []string
	}{
		{"a header error", "error when serving connection %q<->%q: %v",
			[]any{laddr, raddr, fmt.Errorf("error when reading request headers: %w: contents: %q", errors.New("missing host"), "token: "+secret)},
			[]string{"127.0.0.1:5000", "127.0.0.1:4242", "malformed request"}},
		{"a body too large", "error when serving connection %q<->%q: %v",
			[]any{laddr, raddr, fmt.Errorf("%s: %w", secret, fasthttp.ErrBodyTooLarge)},
			[]string{"request body too large"}},
		{"the request logger", "%.3f %s - %s", []any{1.5, &ctx, "token " + secret}, []string{"1.500 [redacted] - [redacted]"}},
		{"bytes", "%s %d", []any{[]byte(secret), 7}, []string{"[redacted] 7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			fasthttpLogger{slog.New(slog.NewTextHandler(&buf, nil))}.Printf(tc.format, tc.args...)
			out := buf.String()
			if strings.Contains(out, secret) {
				t.Errorf("the secret is in the log: %s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the log does not say %q: %s", w, out)
				}
			}
		})
	}
}
