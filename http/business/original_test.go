package business_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/oplog"
	"github.com/bank/gobank/http/wire"
)

// original makes our data server answer like the original's on the wire:
// client tokens on the data routes (started with AllowClientTokens), lock
// grants without fences, and no /getLocks, /commit or /idem (404).
var original = compose(legacy, on(wire.RouteCommit, notFound), on(wire.RouteIdem, notFound))

// TestOriginalDataServerRefusesOurCredential: a business server whose
// credential the original's data server refuses (our generated secret)
// says, in every answer and once in its log, that BANK_SERVER_TOKEN must be
// one of the original's client tokens, without ever showing a token; with
// one of them, it works.
func TestOriginalDataServerRefusesOurCredential(t *testing.T) {
	const generated = "generated-secret-not-a-client-token"
	data := dataservertest.Start(t, dataservertest.Options{AllowClientTokens: true, Wrap: original})
	var logBuf oplog.Buffer
	bs := startBusiness(t, data, businesstest.Options{ServerToken: generated, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	for _, path := range []string{"/deposito/1/10", "/saque/2/10", "/transferencia/1/2/10", "/saldo/3", "/deposito/4/1"} {
		r := get(t, bs.URL+path)
		wantError(t, r, 503, int64(teller.Unavailable))
		if !strings.Contains(r.ans.Error, "original implementation") || !strings.Contains(r.ans.Error, "BANK_SERVER_TOKEN") {
			t.Errorf("%s: message %q does not say to set BANK_SERVER_TOKEN to one of the original's client tokens", path, r.ans.Error)
		}
		if strings.Contains(r.body, generated) || strings.Contains(r.body, token) {
			t.Errorf("%s: a token in the answer: %s", path, r.body)
		}
	}
	checkBank(t, data, uniform(10, 1000))
	logs := logBuf.String()
	var hints int
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "BANK_SERVER_TOKEN") && strings.Contains(line, "original") {
			hints++
		}
	}
	if hints != 1 {
		t.Errorf("%d log lines tell the operator to set BANK_SERVER_TOKEN, want exactly 1:\n%s", hints, logs)
	}
	if strings.Contains(logs, generated) || strings.Contains(logs, token) {
		t.Errorf("a token reached the log:\n%s", logs)
	}

	// With one of the original's client tokens as its credential, it works.
	ok := startBusiness(t, data, businesstest.Options{ServerToken: "8d69"})
	if r := get(t, ok.URL+"/transferencia/1/2/10"); r.status != 200 {
		t.Fatalf("with a client token as BANK_SERVER_TOKEN: %d %s", r.status, r.body)
	}
	if r := get(t, ok.URL+"/deposito/3/5"); r.status != 200 {
		t.Fatalf("with a client token as BANK_SERVER_TOKEN: %d %s", r.status, r.body)
	}
	checkBank(t, data, with(uniform(10, 1000), 1, 990, 2, 1010, 3, 1005))
}

// TestOurDataServerRefusesOurCredential: a wrong credential against our own
// data server (it has /getLocks) keeps the plain message: nothing about the
// original's client tokens.
func TestOurDataServerRefusesOurCredential(t *testing.T) {
	data := dataservertest.Start(t, dataservertest.Options{})
	bs := startBusiness(t, data, businesstest.Options{ServerToken: "not-the-data-servers-credential"})
	for _, path := range []string{"/deposito/1/10", "/transferencia/1/2/10"} {
		r := get(t, bs.URL+path)
		wantError(t, r, 503, int64(teller.Unavailable))
		if !strings.Contains(r.ans.Error, "refused this business server's credential") || strings.Contains(r.ans.Error, "original") {
			t.Errorf("%s: message %q, want the plain credential refusal", path, r.ans.Error)
		}
	}
}
