package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/wire"
)

// target is one server, reached through its own HostClient so that
// connections are kept alive and reused across the whole run.
type target struct {
	base string // scheme://host[:port][/prefix], no trailing slash
	hc   *fasthttp.HostClient
}

func newTarget(raw string, maxConns int, timeout time.Duration) (*target, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, errors.New("server: empty URL")
	}
	addr, tls, base, err := dataclient.ParseURL(s)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return &target{
		base: base,
		hc: &fasthttp.HostClient{
			Addr:     addr,
			IsTLS:    tls,
			Name:     "gobank-loadgen",
			MaxConns: maxConns,
			// MaxConns covers the run's concurrency, so waiting for a
			// connection should not happen; if it does, it is bounded.
			MaxConnWaitTimeout:  timeout,
			MaxIdleConnDuration: 30 * time.Second,
			ReadTimeout:         timeout,
			WriteTimeout:        timeout,
			MaxResponseBodySize: 64 << 10,
			// The bank's writes are GETs but not idempotent: fasthttp's
			// default retry of a GET on a broken keep-alive connection could
			// apply a deposit twice while we count it once, and the
			// conservation check would blame the bank.
			MaxIdemponentCallAttempts: 1,
			RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		},
	}, nil
}

// outcomeKind classifies how a request ended.
type outcomeKind uint8

const (
	kindOK         outcomeKind = iota
	kindHTTP                   // an answer that is not success: status, maybe error_code
	kindTimeout                // sent, no answer in time: unknown outcome
	kindConnError              // connection broke after sending began: unknown outcome
	kindDialError              // could not connect: surely not applied
	kindNoFreeConn             // no connection free in time: never sent
)

// outcome is a comparable key for the outcome counters.
type outcome struct {
	kind    outcomeKind
	hasCode bool
	// notApplied: a 5xx whose body says the bank knows it did not apply
	// the request ("not applied", "nothing changed"); a 5xx saying it may
	// have (a lost answer, a lease that ran out mid-operation) does not.
	notApplied bool
	status     int32
	code       int32
}

var okOutcome = outcome{kind: kindOK}

// label names the outcome as the report shows it: "ok", "403
// LOCKED_ACCOUNT", "502", "timeout", ...
func (o outcome) label() string {
	switch o.kind {
	case kindOK:
		return "ok"
	case kindTimeout:
		return "timeout"
	case kindConnError:
		return "conn_error"
	case kindDialError:
		return "dial_error"
	case kindNoFreeConn:
		return "no_free_conn"
	}
	s := strconv.Itoa(int(o.status))
	if !o.hasCode {
		return s
	}
	name := teller.Code(o.code).String()
	if name == "UNKNOWN_ERROR" {
		return s + " error_code " + strconv.Itoa(int(o.code))
	}
	return s + " " + name
}

// unknown reports whether the server may or may not have applied the
// request. A 5xx is surely not applied only when it carries the bank's
// error_code and says so; one without is a proxy or a crash, and one that
// says "may or may not have been applied" is a lost answer.
func (o outcome) unknown(unknown5xx bool) bool {
	switch o.kind {
	case kindTimeout, kindConnError:
		return true
	case kindHTTP:
		return o.status >= 500 && (!o.hasCode || !o.notApplied || unknown5xx)
	}
	return false
}

// httpOutcome classifies an answer that is not a success.
func httpOutcome(status int, body []byte) outcome {
	code, hasCode := errorCode(body)
	return outcome{kind: kindHTTP, status: int32(status), code: int32(code), hasCode: hasCode,
		notApplied: bytes.Contains(body, []byte("not applied")) || bytes.Contains(body, []byte("nothing changed"))}
}

// classifyErr classifies a transport failure as the data client does
// (dataclient.Transport).
func classifyErr(err error) outcome {
	switch k := dataclient.Transport(err); {
	case k == dataclient.TransportNoFreeConn:
		return outcome{kind: kindNoFreeConn}
	case k.Dial():
		return outcome{kind: kindDialError}
	case k == dataclient.TransportTimeout:
		return outcome{kind: kindTimeout}
	}
	return outcome{kind: kindConnError}
}

// executor sends the operations of one worker (or one open-loop sender)
// over the shared targets, reusing one request, one response and one URI
// buffer, so the hot path does not allocate.
type executor struct {
	targets []*target
	token   string
	timeout time.Duration
	id      string // id_negoc on the data target
	req     *fasthttp.Request
	resp    *fasthttp.Response
	uri     []byte
	body    []byte // a batch's request body
}

func newExecutor(targets []*target, token string, timeout time.Duration, id string) *executor {
	return &executor{
		targets: targets,
		token:   token,
		timeout: timeout,
		id:      id,
		req:     fasthttp.AcquireRequest(),
		resp:    fasthttp.AcquireResponse(),
		uri:     make([]byte, 0, 256),
	}
}

func (e *executor) release() {
	fasthttp.ReleaseRequest(e.req)
	fasthttp.ReleaseResponse(e.resp)
	e.req, e.resp = nil, nil
}

// do runs one operation and returns its outcome.
func (e *executor) do(p planned) outcome {
	t := e.targets[p.server]
	switch p.op {
	case opDeposito, opSaque:
		u := append(e.uri[:0], t.base...)
		if p.op == opDeposito {
			u = append(u, "/deposito/"...)
		} else {
			u = append(u, "/saque/"...)
		}
		u = strconv.AppendInt(u, p.a, 10)
		u = append(u, '/')
		u = strconv.AppendInt(u, p.amount, 10)
		return e.call(t, u)
	case opSaldo:
		u := append(e.uri[:0], t.base...)
		u = append(u, "/saldo/"...)
		u = strconv.AppendInt(u, p.a, 10)
		return e.call(t, u)
	case opTransferencia:
		if p.batch != nil {
			return e.transfers(t, p.batch)
		}
		u := append(e.uri[:0], t.base...)
		u = append(u, "/transferencia/"...)
		u = strconv.AppendInt(u, p.a, 10)
		u = append(u, '/')
		u = strconv.AppendInt(u, p.b, 10)
		u = append(u, '/')
		u = strconv.AppendInt(u, p.amount, 10)
		return e.call(t, u)
	case opGetSaldo:
		return e.call(t, e.dataURI(t, wire.RouteGetSaldo, p.a, -1, 0))
	case opLock:
		if o := e.call(t, e.dataURI(t, wire.RouteGetLock, p.a, -1, 0)); o != okOutcome {
			return o
		}
		fence := fieldInt(e.resp.Body(), `"fence"`, 0)
		return e.call(t, e.dataURI(t, wire.RouteUnLock, p.a, -1, fence))
	case opSetSaldo:
		return e.setSaldoCycle(t, p.a)
	case opStatus:
		u := append(e.uri[:0], t.base...)
		return e.call(t, append(u, wire.RouteStatus...))
	}
	panic("loadgen: unknown op " + p.op.String())
}

// setSaldoCycle is what a business server does to one account: lock,
// read, write, unlock. It writes back the balance it read, so it loads the
// write path without changing any balance.
func (e *executor) setSaldoCycle(t *target, conta int64) outcome {
	if o := e.call(t, e.dataURI(t, wire.RouteGetLock, conta, -1, 0)); o != okOutcome {
		return o
	}
	body := e.resp.Body()
	fence := fieldInt(body, `"fence"`, 0)
	saldo := fieldInt(body, `"saldo"`, -1)
	res := okOutcome
	if saldo < 0 { // a data server that does not return the balance with the grant
		if res = e.call(t, e.dataURI(t, wire.RouteGetSaldo, conta, -1, 0)); res == okOutcome {
			if saldo = fieldInt(e.resp.Body(), `"saldo"`, -1); saldo < 0 {
				res = outcome{kind: kindHTTP, status: 200}
			}
		}
	}
	if res == okOutcome {
		res = e.call(t, e.dataURI(t, wire.RouteSetSaldo, conta, saldo, fence))
	}
	if o := e.call(t, e.dataURI(t, wire.RouteUnLock, conta, -1, fence)); res == okOutcome {
		res = o
	}
	return res
}

func (e *executor) dataURI(t *target, route string, conta, valor int64, fence int64) []byte {
	u := append(e.uri[:0], t.base...)
	u = append(u, route...)
	u = append(u, "?"+wire.ParamIDNegoc+"="...)
	u = append(u, e.id...)
	u = append(u, "&"+wire.ParamConta+"="...)
	u = strconv.AppendInt(u, conta, 10)
	if valor >= 0 {
		u = append(u, "&"+wire.ParamValor+"="...)
		u = strconv.AppendInt(u, valor, 10)
	}
	if fence > 0 {
		u = append(u, "&"+wire.ParamFence+"="...)
		u = strconv.AppendInt(u, fence, 10)
	}
	return u
}

// call sends one GET and classifies the answer. The response body stays in
// e.resp until the next call: callers read what they need at once.
func (e *executor) call(t *target, uri []byte) outcome {
	e.uri = uri[:0] // keep the grown buffer
	req := e.req
	req.Reset()
	req.SetRequestURIBytes(uri)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.Set(wire.HeaderToken, e.token)
	if err := t.hc.DoTimeout(req, e.resp, e.timeout); err != nil {
		return classifyErr(err)
	}
	status := e.resp.StatusCode()
	if _, hasCode := errorCode(e.resp.Body()); status >= 200 && status < 300 && !hasCode {
		return okOutcome
	}
	return httpOutcome(status, e.resp.Body())
}

// transfers sends batch as one POST /transferencias. It succeeds when the
// answer is a batch's (200, {"applied":...), whatever its transfers'
// results; those the caller reads from the answer (see batchTally).
func (e *executor) transfers(t *target, batch []xfer) outcome {
	u := append(e.uri[:0], t.base...)
	u = append(u, "/transferencias"...)
	e.uri = u[:0]
	e.body = wire.AppendTransfers(e.body[:0], len(batch), func(i int) teller.BatchTransfer {
		return teller.BatchTransfer{From: batch[i].a, To: batch[i].b, Amount: batch[i].amount}
	})
	req := e.req
	req.Reset()
	req.SetRequestURIBytes(u)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set(wire.HeaderToken, e.token)
	req.SetBodyRaw(e.body) // e.body is not touched again before the answer
	if err := t.hc.DoTimeout(req, e.resp, e.timeout); err != nil {
		return classifyErr(err)
	}
	status := e.resp.StatusCode()
	if status == fasthttp.StatusOK && bytes.HasPrefix(e.resp.Body(), batchAnswerPrefix) {
		return okOutcome
	}
	return httpOutcome(status, e.resp.Body())
}

// batchAnswerPrefix starts every answer of POST /transferencias that has
// results.
var batchAnswerPrefix = []byte(`{"applied":`)

// batchTally reads a batch's answer: how many of its transfers were
// applied, and each refusal's error_code, passed to refused.
func batchTally(body []byte, refused func(code int32)) (applied int64) {
	applied = fieldInt(body, `"applied"`, 0)
	const key = `"error_code"`
	for {
		i := bytes.Index(body, []byte(key))
		if i < 0 {
			return applied
		}
		body = body[i+len(key):]
		if code, ok := parseIntAfterColon(body); ok {
			refused(int32(code))
		}
	}
}

// batchAnswerMax bounds the answer to a batch of n transfers: a result is
// at most ~100 bytes.
func batchAnswerMax(n int) int { return 256 + 128*n }

// errorCode finds "error_code": N in a JSON body. The bank's bodies are a
// few flat fields, so a scan is enough and avoids decoding every answer.
func errorCode(body []byte) (int64, bool) {
	const key = `"error_code"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0, false
	}
	return parseIntAfterColon(body[i+len(key):])
}

// fieldInt returns the integer value of a top-level key such as `"saldo"`,
// or def when it is absent or not an integer.
func fieldInt(body []byte, key string, def int64) int64 {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return def
	}
	if n, ok := parseIntAfterColon(body[i+len(key):]); ok {
		return n
	}
	return def
}

func parseIntAfterColon(b []byte) (int64, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return 0, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	end := 0
	if end < len(b) && b[end] == '-' {
		end++
	}
	for end < len(b) && b[end] >= '0' && b[end] <= '9' {
		end++
	}
	return wire.ParseInt(b[:end])
}
