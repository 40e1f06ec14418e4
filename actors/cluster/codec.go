package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bank/gobank/actors"
	"github.com/bank/gobank/actors/account"
)

// Messages between members are protobuf BytesValues around a fixed binary
// layout: protoactor's remote needs protobuf messages, and a well-known
// wrapper spares the project a protoc step while keeping a call to one
// small allocation-light encoding.

// opRetire asks a grain to stop, so that the account's next request
// activates it afresh from the store: sent when a commit found the
// activation's version superseded.
const opRetire actors.Op = 0xff

// call is a request to one account grain.
type call struct {
	req actors.Request
	// timeout is how long the caller waits; the grain abandons a queued
	// lock request whose caller has given up. A duration, not a deadline,
	// so that members' clocks need not agree.
	timeout time.Duration
	// version: for OpCommit, the version the account reaches with this
	// commit (the pinned version + 1).
	version uint64
}

// reply is a grain's answer.
type reply struct {
	rep     actors.Reply
	err     error
	version uint64 // for OpPin: the version the pinned write is conditional on
}

// callSize is the fixed part of an encoded call: the op, six numbers, a
// byte of flags, the transaction's timestamp and version, and the scheme.
const callSize = 1 + 8*6 + 1 + 8*2 + 1

// Flags of a call.
const (
	flagUnlock = 1 << iota // Request.Unlock
	flagDetect             // Request.Detect
)

func encodeCall(c call) *wrapperspb.BytesValue {
	b := make([]byte, callSize, callSize+len(c.req.Holder))
	b[0] = byte(c.req.Op)
	binary.BigEndian.PutUint64(b[1:], c.req.Fence)
	binary.BigEndian.PutUint64(b[9:], uint64(c.req.Value))
	binary.BigEndian.PutUint64(b[17:], uint64(c.req.TTL))
	binary.BigEndian.PutUint64(b[25:], uint64(c.req.Wait))
	binary.BigEndian.PutUint64(b[33:], uint64(c.timeout))
	binary.BigEndian.PutUint64(b[41:], c.version)
	if c.req.Unlock {
		b[49] |= flagUnlock
	}
	if c.req.Detect {
		b[49] |= flagDetect
	}
	binary.BigEndian.PutUint64(b[50:], c.req.TS)
	binary.BigEndian.PutUint64(b[58:], c.req.Version)
	b[66] = byte(c.req.Scheme)
	return &wrapperspb.BytesValue{Value: append(b, c.req.Holder...)}
}

// errShort reports a message too short for its layout.
var errShort = errors.New("cluster: message too short")

func decodeCall(b []byte) (call, error) {
	if len(b) < callSize {
		return call{}, errShort
	}
	return call{
		req: actors.Request{
			Op:      actors.Op(b[0]),
			Fence:   binary.BigEndian.Uint64(b[1:]),
			Value:   int64(binary.BigEndian.Uint64(b[9:])),
			TTL:     time.Duration(binary.BigEndian.Uint64(b[17:])),
			Wait:    time.Duration(binary.BigEndian.Uint64(b[25:])),
			Unlock:  b[49]&flagUnlock != 0,
			Detect:  b[49]&flagDetect != 0,
			TS:      binary.BigEndian.Uint64(b[50:]),
			Version: binary.BigEndian.Uint64(b[58:]),
			Scheme:  account.Scheme(b[66]),
			Holder:  string(b[callSize:]),
		},
		timeout: time.Duration(binary.BigEndian.Uint64(b[33:])),
		version: binary.BigEndian.Uint64(b[41:]),
	}, nil
}

// errorCodes lists the errors a grain's answer carries by number, so that
// the caller's errors.Is sees the same sentinel the grain returned. Index
// 0 is no error; the order is part of the wire format between members.
var errorCodes = []error{
	nil,
	account.ErrLocked,
	account.ErrNegativeBalance,
	account.ErrNoHolder,
	account.ErrStaleFence,
	account.ErrBusy,
	actors.ErrNotFound,
	actors.ErrTimeout,
	actors.ErrInternal,
	actors.ErrClosed,
	actors.ErrStore,
	actors.ErrNoFence,
	account.ErrDied,
	account.ErrDeadlock,
	account.ErrChanged,
	account.ErrNoTimestamp,
	account.ErrWounded,
}

// codeOf returns err's number; an error outside the list travels as
// ErrInternal with its text.
func codeOf(err error) byte {
	for i, e := range errorCodes[1:] {
		if errors.Is(err, e) {
			return byte(i + 1)
		}
	}
	return 8 // ErrInternal
}

// replySize is the fixed part of an encoded reply.
const replySize = 1 + 8*6

func encodeReply(r reply) *wrapperspb.BytesValue {
	b := make([]byte, replySize, replySize+len(r.rep.Holder)+2)
	var msg string
	if r.err != nil {
		b[0] = codeOf(r.err)
		msg = r.err.Error()
	}
	binary.BigEndian.PutUint64(b[1:], uint64(r.rep.Balance))
	binary.BigEndian.PutUint64(b[9:], r.rep.Fence)
	var exp int64
	if !r.rep.Expires.IsZero() {
		exp = r.rep.Expires.UnixNano()
	}
	binary.BigEndian.PutUint64(b[17:], uint64(exp))
	binary.BigEndian.PutUint64(b[25:], uint64(r.rep.Waiting))
	binary.BigEndian.PutUint64(b[33:], r.version)
	binary.BigEndian.PutUint64(b[41:], r.rep.Version)
	b = binary.AppendUvarint(b, uint64(len(r.rep.Holder)))
	b = append(b, r.rep.Holder...)
	return &wrapperspb.BytesValue{Value: append(b, msg...)}
}

func decodeReply(b []byte) (reply, error) {
	if len(b) < replySize {
		return reply{}, errShort
	}
	var r reply
	r.rep.Balance = int64(binary.BigEndian.Uint64(b[1:]))
	r.rep.Fence = binary.BigEndian.Uint64(b[9:])
	if exp := int64(binary.BigEndian.Uint64(b[17:])); exp != 0 {
		r.rep.Expires = time.Unix(0, exp)
	}
	r.rep.Waiting = int(binary.BigEndian.Uint64(b[25:]))
	r.version = binary.BigEndian.Uint64(b[33:])
	r.rep.Version = binary.BigEndian.Uint64(b[41:])
	rest := b[replySize:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return reply{}, errShort
	}
	r.rep.Holder = string(rest[k : k+int(n)])
	msg := string(rest[k+int(n):])
	if code := int(b[0]); code != 0 {
		if code >= len(errorCodes) {
			return reply{}, fmt.Errorf("cluster: unknown error code %d", code)
		}
		// Keep the grain's text (it names the account and the store's
		// cause) while matching the sentinel with errors.Is.
		r.err = remoteError{sentinel: errorCodes[code], msg: msg}
	}
	return r, nil
}

// remoteError is an error a grain returned, rebuilt on the caller's side.
type remoteError struct {
	sentinel error
	msg      string
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.sentinel }
