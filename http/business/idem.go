package business

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// Idempotency, on the public routes deposito, saque and transferencia:
//
// A client that sends the header Idempotency-Key (1 to MaxKeyLength
// printable ASCII characters, space included) with a request can repeat
// the request, with the same key, as often as it likes — after a timeout,
// a broken connection, a 502/503/504, through another business server of
// the same data server — and the operation is applied at most once: every
// repetition is answered the status and body of the first outcome, with
// the header Idempotent-Replayed: true. The same key with another request
// (another route or other parameters) is refused with 422 KEY_REUSED, and
// nothing is applied.
//
// How: the business server looks the key up on the data server (GET
// /idem). Unknown, it runs the operation and keeps its outcome under the
// key: a success in the very /commit that writes the balances (same durable
// batch, so there is no instant at which the money moved but the outcome is
// not kept), a refusal (400, 404, 409: nothing changed) alone with POST
// /idem. Transient failures (401, 403 LOCKED_ACCOUNT after the lock wait,
// 5xx) are not kept: a repetition tries the operation again. When a
// duplicate running at the same time kept its outcome first, /commit
// applies nothing and answers that outcome, and so does POST /idem: every
// duplicate is answered the same.
//
// Keys are scoped per client token: the data server keeps the outcome
// under SHA-256("gobank idempotency key v1", SHA-256(token), key) in hex,
// never under the key itself, so that one client can neither read another
// client's outcomes nor collide with its keys, and so that a key of any
// accepted length fits the data server's 128-byte limit. Every business
// server derives the same stored key, so a retry may go to another one.
// The fingerprint kept with the outcome is the route and its parameters,
// e.g. "transferencia/1/2/100"; the token is not part of it.
//
// The data server forgets an outcome after its --idempotency-window (24 h
// by default): a key repeated later than that runs the operation again.
// A data server without /idem (the original) makes a request with a key
// fail with 501, having changed nothing.

// MaxKeyLength bounds an Idempotency-Key.
const MaxKeyLength = 128

// ErrOutcomeUnknown: the data server's answer to the commit of an
// operation was lost (timeout, broken connection, failure in the middle):
// the operation may or may not have been applied. The locks were released
// either way. Repeating the request with the same Idempotency-Key tells
// which.
var ErrOutcomeUnknown = errors.New("the operation may or may not have been applied")

var (
	// errBadKey refuses a malformed Idempotency-Key (400).
	errBadKey = errors.New("Idempotency-Key: want 1 to 128 printable ASCII characters, once")
	// errNoRecords refuses a request with a key when the data server keeps
	// no idempotency records (501).
	errNoRecords = errors.New("the data server keeps no idempotency records")
)

// outcomeUnknown wraps the failure of a commit whose outcome is unknown.
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string {
	return "commit outcome unknown: " + e.err.Error()
}

func (e *outcomeUnknown) Unwrap() []error { return []error{ErrOutcomeUnknown, e.err} }

// keyReusedError refuses a key kept for another request (422).
type keyReusedError struct{ fingerprint string }

func (e *keyReusedError) Error() string {
	return "Idempotency-Key already used for " + e.fingerprint
}

// refusalNotKept: a refusal whose outcome could not be kept under its key
// is answered 503, so that every outcome answered under a key is kept.
type refusalNotKept struct{ refusal, err error }

func (e *refusalNotKept) Error() string {
	return "keeping the refusal (" + e.refusal.Error() + "): " + e.err.Error()
}

func (e *refusalNotKept) Unwrap() []error { return []error{e.err} }

// keyed is the idempotency state of one request with a key.
type keyed struct {
	key         string // the key as stored: scoped to the client's token
	fingerprint string // route and parameters: "transferencia/1/2/100"
	// body is the success answer, set by the operation once it knows the
	// new balances, before its commit keeps it.
	body []byte
	// replay is the record the data server answered instead of applying
	// the commit (errReplayed).
	replay *teller.Record

	encode func(dst []byte, args [3]int64, a, b int64) []byte
	args   [3]int64
	dst    []byte
}

func newKeyed(token, key []byte, rt *route, args [3]int64, dst []byte) *keyed {
	return &keyed{
		key:         scopedKey(token, key),
		fingerprint: fingerprint(rt, args),
		encode:      rt.encode,
		args:        args,
		dst:         dst,
	}
}

// success returns the success answer made of the operation's results.
func (k *keyed) success(a, b int64) []byte { return k.encode(k.dst[:0], k.args, a, b) }

// runKeyed runs an operation with an Idempotency-Key: answers the kept
// outcome if there is one, and otherwise runs it, keeping its outcome.
func (s *Server) runKeyed(ctx context.Context, rt *route, args [3]int64, k *keyed, dst []byte) reply {
	rec, found, err := s.data.Outcome(ctx, k.key)
	switch {
	case errors.Is(err, ErrUnsupported):
		return failure(errNoRecords, dst)
	case err != nil:
		return failure(err, dst)
	case found:
		return replay(k, rec, dst)
	}
	_, _, err = rt.op(s, ctx, args, k)
	switch {
	case errors.Is(err, errReplayed):
		return replay(k, *k.replay, dst)
	case err == nil:
		return reply{status: fasthttp.StatusOK, body: k.body}
	}
	r := failure(err, dst)
	if !keepable(r.status) {
		return r
	}
	kept, err := s.data.Keep(ctx, teller.Record{Key: k.key, Fingerprint: k.fingerprint, Status: r.status, Body: r.body})
	switch {
	case err != nil:
		return failure(&refusalNotKept{refusal: r.err, err: err}, dst)
	case kept != nil:
		return replay(k, *kept, dst) // a duplicate kept its outcome first
	}
	return r
}

// replay answers a kept outcome, or 422 when it was kept for another
// request.
func replay(k *keyed, rec teller.Record, dst []byte) reply {
	if rec.Fingerprint != k.fingerprint {
		return failure(&keyReusedError{fingerprint: rec.Fingerprint}, dst)
	}
	return reply{status: rec.Status, body: rec.Body, replayed: true}
}

// keepable reports whether an answer with this status is kept under its
// key: a refusal that the same request would get again (400, 404, 409),
// not a transient failure (401, 403 after the lock wait, 5xx).
func keepable(status int) bool {
	return status >= 400 && status < 500 &&
		status != fasthttp.StatusUnauthorized && status != fasthttp.StatusForbidden &&
		status != fasthttp.StatusRequestTimeout && status != fasthttp.StatusTooManyRequests
}

// idempotencyKey returns the request's Idempotency-Key (nil when none), or
// errBadKey when it is repeated, empty, longer than MaxKeyLength, or not
// printable ASCII.
func idempotencyKey(h *fasthttp.RequestHeader) ([]byte, error) {
	key, n := wire.SingleHeader(h, wire.HeaderIdempotencyKey)
	switch {
	case n == 0:
		return nil, nil
	case n > 1:
		return nil, errBadKey
	}
	if len(key) == 0 || len(key) > MaxKeyLength {
		return nil, errBadKey
	}
	for _, c := range key {
		if c < 0x20 || c > 0x7e {
			return nil, errBadKey
		}
	}
	return key, nil
}

// keyDomain separates the stored keys of this scheme from any other use of
// SHA-256.
const keyDomain = "gobank idempotency key v1\x00"

// scopedKey is the key under which the data server keeps the outcome of
// the client's key: hex(SHA-256(keyDomain, SHA-256(token), key)), 64
// bytes. The token's digest has a fixed length, so no two (token, key)
// pairs hash the same input.
func scopedKey(token, key []byte) string {
	td := sha256.Sum256(token)
	h := sha256.New()
	h.Write([]byte(keyDomain))
	h.Write(td[:])
	h.Write(key)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// fingerprint names a request by its route and parameters:
// "transferencia/1/2/100".
func fingerprint(rt *route, args [3]int64) string {
	var buf [80]byte
	b := append(buf[:0], rt.name...)
	for i := range rt.params {
		b = append(b, '/')
		b = strconv.AppendInt(b, args[i], 10)
	}
	return string(b)
}
