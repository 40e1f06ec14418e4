package business

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// The batch route, POST /transferencias: up to MaxBatch transfers in one
// request, applied by teller.Transfers as one transaction (one lock of
// every account named, one commit), each with a result of its own, after
// TigerBeetle's create_transfers.
//
// The body is a JSON array of 1 to MaxBatch objects
//
//	[{"conta_orig":A,"conta_dest":B,"valor":V,"linked":true}, ...]
//
// where "linked" is optional (false): a linked transfer is chained to the
// next one, and a chain is applied whole or not at all. The body is
// decoded strictly: a field other than these four, a field given twice,
// a number that is not an integer within int64, "linked" other than true
// or false, a missing field, anything after the array, or a body that is
// not an array of objects is refused 400 BAD_REQUEST, the message naming
// the element (transfers[i], from 0) and what is wrong with it; so are an
// empty array and one of more than MaxBatch transfers. A transfer that
// breaks a rule (an account or valor not positive, the same account twice)
// is not: it is refused in its own result.
//
// The answer (200) has one result per transfer, in order:
//
//	{"applied":N,"results":[{"saldo_orig":X,"saldo_dest":Y},{"error_code":C,"error":"msg"},...]}
//
// the balances right after an applied transfer, or the refusal of one
// that changed nothing (the codes and messages of errAnswers:
// INVALID_ACCOUNT, INVALID_VALUE, SAME_ACCOUNT, NOT_FOUND,
// INSUFFICIENT_FUNDS, OVERFLOW, LINKED_EVENT_FAILED, LINKED_CHAIN_OPEN).
// A failure of the whole batch (401, 403 LOCKED_ACCOUNT, 503, ...) is
// answered as the single routes answer it, and then no result is given: a
// 503 whose commit's answer was lost means the whole batch may or may not
// have been applied.
//
// An Idempotency-Key is refused (400): a batch's answer is larger than
// the data server keeps under a key, so a batch is not kept, and a client
// must not repeat one whose outcome is unknown without reading the
// balances first.

// MaxBatch bounds the transfers of one POST /transferencias.
const MaxBatch = teller.MaxBatch

// MaxBody bounds a request's body (413 above it): a batch of MaxBatch
// transfers of the largest numbers, linked, pretty-printed with 4-space
// indents (1.3 MB) fits with room to spare. The other routes take every
// parameter in the path and ignore the body.
const MaxBody = 2 << 20

// batchName is the batch route's name in the operation log, spans and
// the error log.
const batchName = "transferencias"

// RouteBatch is the batch route's path.
const RouteBatch = "/" + batchName

// badBatchError refuses (400 BAD_REQUEST) a batch request that is
// malformed: a body that is not a batch of transfers, or an
// Idempotency-Key. Its message says what is wrong, and where.
type badBatchError struct{ msg string }

func (e *badBatchError) Error() string { return e.msg }

// errBatchKey refuses an Idempotency-Key on the batch route.
var errBatchKey = &badBatchError{"Idempotency-Key is not accepted on " + RouteBatch + ": a batch's outcome is not kept " +
	"under a key (its answer is larger than a record holds); send the batch without one, and after an unknown " +
	"outcome read the balances before sending it again"}

// serveBatch runs the batch route. It logs one line whatever the outcome:
// "transferencias, N" with the number of transfers (for a malformed body,
// those decoded before the error; 0 for a request refused before its body
// is read: a token, an Idempotency-Key), and on a refusal of the whole
// batch the error's name.
func (s *Server) serveBatch(rc *fasthttp.RequestCtx) {
	entry := s.cfg.Log.Entry(clientIP(rc), batchName)
	parent := context.Background()
	var span trace.Span
	if s.tracer != nil {
		parent, span = s.startBatchSpan(rc)
	}
	var buf [256]byte
	r, n := s.runBatch(parent, rc, buf[:0])
	if span != nil {
		span.SetAttributes(attribute.Int("gobank.transfers", n))
	}
	s.answer(rc, batchName, entry.Int(int64(n)), span, &r)
}

// runBatch authenticates, decodes and applies a batch, turning a panic
// into errPanic; n is the number of transfers decoded. The checks come in
// the single routes' order: a repeated token, the token, the
// Idempotency-Key, then the body, which a client without a token cannot
// make the server parse.
func (s *Server) runBatch(parent context.Context, rc *fasthttp.RequestCtx, dst []byte) (r reply, n int) {
	defer s.recoverOp(batchName, dst, &r)
	ctx, cancel := context.WithTimeout(parent, s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.admit(ctx, rc); err != nil {
		return failure(err, dst), 0
	}
	if _, keys := wire.SingleHeader(&rc.Request.Header, wire.HeaderIdempotencyKey); keys > 0 {
		return failure(errBatchKey, dst), 0
	}
	batch, bad := decodeBatch(rc.PostBody())
	n = len(batch)
	if bad != nil {
		return failure(bad, dst), n
	}
	results := make([]teller.BatchResult, n)
	if err := s.teller.Transfers(ctx, batch, results); err != nil {
		return failure(err, dst), n
	}
	return reply{status: fasthttp.StatusOK, body: appendBatchAnswer(make([]byte, 0, 32+72*n), results)}, n
}

// appendBatchAnswer appends {"applied":N,"results":[...]}: per transfer,
// {"saldo_orig":X,"saldo_dest":Y} when it was applied, or its refusal as
// errAnswers says ({"error_code":C,"error":"msg"}).
func appendBatchAnswer(dst []byte, results []teller.BatchResult) []byte {
	applied := 0
	for _, r := range results {
		if r.Err == nil {
			applied++
		}
	}
	dst = append(dst, `{"applied":`...)
	dst = strconv.AppendInt(dst, int64(applied), 10)
	dst = append(dst, `,"results":[`...)
	for i, r := range results {
		if i > 0 {
			dst = append(dst, ',')
		}
		if r.Err != nil {
			_, code, msg := classify(r.Err)
			dst = wire.AppendError(dst, code, msg)
			continue
		}
		dst = append(dst, `{"saldo_orig":`...)
		dst = strconv.AppendInt(dst, r.FromSaldo, 10)
		dst = append(dst, `,"saldo_dest":`...)
		dst = strconv.AppendInt(dst, r.ToSaldo, 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// The fields of a transfer, as bits of what an element has given.
const (
	fContaOrig = 1 << iota
	fContaDest
	fValor
	fLinked
	fRequired = fContaOrig | fContaDest | fValor
)

// batchParser reads a batch's body: JSON (RFC 8259), but only the shape of
// a batch, so that a hostile body is refused at its first byte out of
// place, with no recursion and nothing skipped unread. encoding/json
// would accept duplicate fields.
type batchParser struct {
	b []byte
	i int
}

// decodeBatch decodes body, a JSON array of 1 to MaxBatch transfers. For
// a body that is not one it returns a *badBatchError saying what is wrong
// and where (the element, from 0, and the offset in the body, from 0),
// with the transfers decoded before the error.
func decodeBatch(body []byte) ([]teller.BatchTransfer, error) {
	p := batchParser{b: body}
	p.ws()
	if !p.eat('[') {
		return nil, &badBatchError{`the body must be a JSON array of transfers, [{"conta_orig":A,"conta_dest":B,"valor":V}, ...]`}
	}
	p.ws()
	if p.eat(']') {
		return nil, &badBatchError{"an empty array: a batch has 1 to " + strconv.Itoa(MaxBatch) + " transfers"}
	}
	// Every element takes at least 40 bytes ({"conta_orig":1,"conta_dest":2,"valor":3}).
	batch := make([]teller.BatchTransfer, 0, min(MaxBatch, len(body)/40+1))
	for {
		if len(batch) == MaxBatch {
			return batch, &badBatchError{"more than " + strconv.Itoa(MaxBatch) + " transfers: send them in several batches"}
		}
		tr, err := p.transfer(len(batch))
		if err != nil {
			return batch, err
		}
		batch = append(batch, tr)
		p.ws()
		if p.eat(',') {
			p.ws()
			continue
		}
		if p.eat(']') {
			break
		}
		return batch, p.errorf(len(batch)-1, "want ',' or ']' after it")
	}
	p.ws()
	if p.i < len(p.b) {
		return batch, &badBatchError{"data after the array, at offset " + strconv.Itoa(p.i)}
	}
	return batch, nil
}

// transfer reads element i, an object of the fields of a transfer.
func (p *batchParser) transfer(i int) (teller.BatchTransfer, error) {
	var tr teller.BatchTransfer
	if !p.eat('{') {
		return tr, p.errorf(i, `want an object {"conta_orig":A,"conta_dest":B,"valor":V}`)
	}
	seen := 0
	p.ws()
	if !p.eat('}') {
		for {
			p.ws()
			at := p.i
			name, ok := p.key()
			if !ok {
				p.i = at
				return tr, p.errorf(i, "want a field name in double quotes")
			}
			f := 0
			switch name {
			case "conta_orig":
				f = fContaOrig
			case "conta_dest":
				f = fContaDest
			case "valor":
				f = fValor
			case "linked":
				f = fLinked
			default:
				return tr, p.errorf(i, "unknown field "+quote(name)+` (want "conta_orig", "conta_dest", "valor" and optionally "linked")`)
			}
			if seen&f != 0 {
				return tr, p.errorf(i, quote(name)+" given twice")
			}
			seen |= f
			p.ws()
			if !p.eat(':') {
				return tr, p.errorf(i, "want ':' after "+quote(name))
			}
			p.ws()
			at = p.i
			if f == fLinked {
				if tr.Linked, ok = p.boolean(); !ok {
					p.i = at
					return tr, p.errorf(i, `"linked" must be true or false`)
				}
			} else {
				n, ok := p.integer()
				if !ok {
					p.i = at
					return tr, p.errorf(i, quote(name)+" must be an integer from -9223372036854775808 to 9223372036854775807")
				}
				switch f {
				case fContaOrig:
					tr.From = n
				case fContaDest:
					tr.To = n
				default:
					tr.Amount = n
				}
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			if p.eat('}') {
				break
			}
			return tr, p.errorf(i, "want ',' or '}' after "+quote(name))
		}
	}
	for _, m := range []struct {
		f    int
		name string
	}{{fContaOrig, "conta_orig"}, {fContaDest, "conta_dest"}, {fValor, "valor"}} {
		if seen&m.f == 0 {
			return tr, &badBatchError{"transfers[" + strconv.Itoa(i) + `]: no "` + m.name + `"`}
		}
	}
	return tr, nil
}

// errorf refuses element i at the current byte.
func (p *batchParser) errorf(i int, what string) error {
	return &badBatchError{"transfers[" + strconv.Itoa(i) + "]: " + what + ", at offset " + strconv.Itoa(p.i)}
}

// ws skips JSON whitespace.
func (p *batchParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// eat consumes c if it comes next.
func (p *batchParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// key reads a JSON string. One with escapes (rare in a field name) is
// unquoted by encoding/json, which knows every escape of the grammar.
func (p *batchParser) key() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start, escaped := p.i, false
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			raw := p.b[start:p.i]
			p.i++
			if !escaped {
				return string(raw), true
			}
			var s string
			if json.Unmarshal(p.b[start-1:p.i], &s) != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			escaped = true
			p.i++ // the escaped byte is never the end of the string
		case c < 0x20:
			return "", false
		}
	}
	return "", false
}

// integer reads a JSON number that is an integer within int64: '-'?, then
// 0 or digits not starting with 0, and no fraction or exponent.
func (p *batchParser) integer() (int64, bool) {
	start := p.i
	p.eat('-')
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	switch {
	case p.i == digits, p.b[digits] == '0' && p.i-digits > 1:
		return 0, false
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		return 0, false
	}
	return wire.ParseInt(p.b[start:p.i])
}

// boolean reads true or false.
func (p *batchParser) boolean() (bool, bool) {
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// quote quotes a field name for a message, clipped to 32 bytes.
func quote(name string) string {
	if len(name) > 32 {
		return strconv.Quote(name[:32]) + "..."
	}
	return strconv.Quote(name)
}
