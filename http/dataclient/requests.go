package dataclient

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/account"
	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// Authenticate asks the data server whether clientToken is a client token.
// It returns nil, an error wrapping teller.ErrUnauthorized when the token
// is refused, or one wrapping teller.ErrUnavailable.
func (c *Client) Authenticate(ctx context.Context, clientToken string) error {
	if clientToken == "" {
		return &DataError{Route: wire.RouteAutentica, Kind: teller.ErrUnauthorized, Reason: "missing token"}
	}
	_, err := c.call(ctx, wire.RouteAutentica, clientToken, 0, 0, false, 0, teller.LockOptions{})
	return err
}

// Lock takes the locks of ids for this business server, as
// teller.Accounts says, and fills grants with theirs: one account with the
// data server's /getLock, several (up to teller.MaxAccounts, distinct)
// with one /getLocks, which takes all of them or none; a refusal's
// DataError names the account that refused (DataError.Account), when the
// data server says which. With wait > 0 the data
// server queues the request (FIFO) for up to wait in all while another
// business server holds a lock; a data server that does not know the
// parameter (the original) fails fast. Either way a lock still held by
// another business server fails with teller.ErrLocked, whose DataError
// names the first account. Locking again a lock this business server
// holds succeeds (re-entrant). The grants' lease is the client's LockTTL,
// or the data server's default. The call's timeout is the client's
// Timeout plus wait.
//
// The original data server's grants are empty (Fence 0, no balance). A
// data server without /getLocks (the original, or an older one) answers
// several accounts with teller.ErrUnsupported, having taken nothing: lock
// each account alone. Any other teller.ErrUnavailable leaves unknown which
// locks were taken.
func (c *Client) Lock(ctx context.Context, ids []int64, opt teller.LockOptions, grants []teller.Grant) error {
	if len(ids) == 0 || len(ids) > teller.MaxAccounts || len(grants) != len(ids) || (opt.Versions != nil && len(opt.Versions) != len(ids)) {
		return &DataError{Route: wire.RouteGetLocks, Kind: teller.ErrBadRequest,
			Reason: "Lock: 1 to " + strconv.Itoa(teller.MaxAccounts) + " accounts, and a grant (and a version, if any) for each"}
	}
	if len(ids) > 1 || !opt.Plain() {
		// A transaction's lock, even of one account, is a /getLocks:
		// the seed's /getLock has no scheme.
		return c.lockMany(ctx, ids, opt, grants)
	}
	a, err := c.call(ctx, wire.RouteGetLock, "", ids[0], 0, false, 0, opt)
	if err != nil {
		return err
	}
	grants[0] = teller.Grant{Fence: a.fence, Saldo: a.saldo, HasSaldo: a.hasSaldo}
	return nil
}

// lockMany is Lock of several accounts: one /getLocks.
func (c *Client) lockMany(ctx context.Context, contas []int64, opt teller.LockOptions, grants []teller.Grant) error {
	route := wire.RouteGetLocks
	wait := opt.Wait
	conta := contas[0]
	if err := gaveUp(ctx, route, conta); err != nil {
		return err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var buf [256]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	start := len(uri)
	for _, id := range contas {
		uri = append(uri, "&"+wire.ParamConta+"="...)
		uri = strconv.AppendInt(uri, id, 10)
	}
	uri = c.appendLockParams(uri, wait, opt.BeforeDurable)
	uri = appendTxnParams(uri, opt)
	uri = inForm(req, uri, start, len(contas), fasthttp.MethodGet)
	req.Header.Set(wire.HeaderToken, c.token)
	if _, err := c.roundTrip(ctx, req, resp, uri, c.timeout+max(wait, 0), route, conta, wait > 0 || c.ttl > 0); err != nil {
		return err
	}
	var small [teller.MaxLegs]teller.Grant
	got := small[:0]
	if len(contas) > len(small) {
		got = make([]teller.Grant, len(contas))
	}
	got = got[:len(contas)]
	if !parseGrants(resp.Body(), contas, got) {
		return &DataError{Route: route, Conta: conta, Kind: teller.ErrUnavailable, Status: fasthttp.StatusOK,
			Reason: "data server sent a malformed answer (grants)"}
	}
	copy(grants, got)
	return nil
}

// inForm sets req's method and returns its URI, uri, for a /getLocks or
// /commit of n accounts whose parameters are uri[start:] ("&k=v..."):
// up to teller.MaxLegs accounts they stay in the query, with method; a
// batch's many go in a form body of a POST instead (wire.FormType), which
// the data server's 8 KiB request line could not hold. A POST is never
// repeated automatically: a lock repeated is re-entrant, a commit
// repeated would be refused as stale.
func inForm(req *fasthttp.Request, uri []byte, start, n int, method string) []byte {
	if n <= teller.MaxLegs {
		req.Header.SetMethod(method)
		return uri
	}
	req.SetBody(uri[start+1:]) // without the leading '&'
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType(wire.FormType)
	return uri[:start]
}

// appendTxnParams appends a transaction's scheme, timestamp, detection
// and versions, those that are set.
func appendTxnParams(uri []byte, opt teller.LockOptions) []byte {
	if opt.Scheme != account.NoWait {
		uri = append(uri, "&"+wire.ParamScheme+"="...)
		uri = append(uri, opt.Scheme.String()...)
	}
	if opt.TS != 0 {
		uri = append(uri, "&"+wire.ParamTS+"="...)
		uri = strconv.AppendUint(uri, opt.TS, 10)
	}
	if opt.Detect {
		uri = append(uri, "&"+wire.ParamDetect+"=1"...)
	}
	for _, v := range opt.Versions {
		uri = append(uri, "&"+wire.ParamVersion+"="...)
		uri = strconv.AppendUint(uri, v, 10)
	}
	return uri
}

// appendLockParams appends a lock's wait, when not zero, the client's
// lease, when set, and that a grant not yet durable will do, if it will:
// the original data server ignores that parameter, and its grants carry
// no balance anyway.
func (c *Client) appendLockParams(uri []byte, wait time.Duration, beforeDurable bool) []byte {
	if beforeDurable {
		uri = append(uri, "&"+wire.ParamUnsynced+"=1"...)
	}
	if wait > 0 {
		uri = appendMillis(uri, wire.ParamWait, wait)
	}
	if c.ttl > 0 {
		uri = appendMillis(uri, wire.ParamTTL, c.ttl)
	}
	return uri
}

// appendMillis appends "&param=<d in ms, at least 1>ms".
func appendMillis(uri []byte, param string, d time.Duration) []byte {
	uri = append(uri, '&')
	uri = append(uri, param...)
	uri = append(uri, '=')
	uri = strconv.AppendInt(uri, max(d.Milliseconds(), 1), 10)
	return append(uri, "ms"...)
}

// Unlock releases the lock of account conta; fence, when not 0, names the
// grant being released. Unlocking a free account succeeds; unlocking
// another holder's lock fails with teller.ErrLocked, and a grant whose
// lease ran out with teller.ErrStaleFence.
func (c *Client) Unlock(ctx context.Context, conta int64, fence uint64) error {
	_, err := c.call(ctx, wire.RouteUnLock, "", conta, 0, false, fence, teller.LockOptions{})
	return err
}

// Read returns the balance of account conta. Reading needs no lock.
func (c *Client) Read(ctx context.Context, conta int64) (int64, error) {
	a, err := c.call(ctx, wire.RouteGetSaldo, "", conta, 0, false, 0, teller.LockOptions{})
	if err != nil {
		return 0, err
	}
	if !a.hasSaldo {
		return 0, &DataError{Route: wire.RouteGetSaldo, Conta: conta, Kind: teller.ErrUnavailable, Status: 200,
			Reason: "data server sent a malformed answer (no saldo)"}
	}
	return a.saldo, nil
}

// ReadVersion returns account conta's balance and its version
// (teller.VersionReader), for optimistic transactions. A data server
// whose reads carry no version (the original) answers
// teller.ErrUnsupported.
func (c *Client) ReadVersion(ctx context.Context, conta int64) (int64, uint64, error) {
	a, err := c.call(ctx, wire.RouteGetSaldo, "", conta, 0, false, 0, teller.LockOptions{})
	switch {
	case err != nil:
		return 0, 0, err
	case !a.hasSaldo:
		return 0, 0, &DataError{Route: wire.RouteGetSaldo, Conta: conta, Kind: teller.ErrUnavailable, Status: 200,
			Reason: "data server sent a malformed answer (no saldo)"}
	case a.version == 0:
		return 0, 0, &DataError{Route: wire.RouteGetSaldo, Conta: conta, Kind: teller.ErrUnsupported, Status: 200,
			Reason: "data server's reads carry no version (the original's): optimistic transactions need this project's"}
	}
	return a.saldo, a.version, nil
}

// Write sets the balance of account conta to valor under the lock grant
// fence (0: none): the data server's setSaldo (teller.Writer). It is
// refused with teller.ErrLocked while another business server holds the
// lock, and with teller.ErrStaleFence once the grant is over.
func (c *Client) Write(ctx context.Context, conta, valor int64, fence uint64) error {
	_, err := c.call(ctx, wire.RouteSetSaldo, "", conta, valor, true, fence, teller.LockOptions{})
	return err
}

// call performs one GET and classifies its outcome. clientToken is sent
// instead of the server credential when not empty (for /autentica); fence
// and wait are sent when not zero.
func (c *Client) call(ctx context.Context, route, clientToken string, conta, valor int64, withValor bool,
	fence uint64, lock teller.LockOptions) (answer, error) {
	wait := lock.Wait
	if err := gaveUp(ctx, route, conta); err != nil {
		return answer{}, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var buf [256]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	if route != wire.RouteAutentica {
		uri = append(uri, "&"+wire.ParamConta+"="...)
		uri = strconv.AppendInt(uri, conta, 10)
		if withValor {
			uri = append(uri, "&"+wire.ParamValor+"="...)
			uri = strconv.AppendInt(uri, valor, 10)
		}
		if fence != 0 {
			uri = append(uri, "&"+wire.ParamFence+"="...)
			uri = strconv.AppendUint(uri, fence, 10)
		}
		if route == wire.RouteGetSaldo {
			// Read and ReadVersion are one request; the original data
			// server ignores the parameter and answers no version.
			uri = append(uri, "&"+wire.ParamWithVersion+"=1"...)
		}
		if route == wire.RouteGetLock {
			uri = c.appendLockParams(uri, wait, lock.BeforeDurable)
		} else if wait > 0 {
			uri = appendMillis(uri, wire.ParamWait, wait)
		}
	}
	req.Header.SetMethod(fasthttp.MethodGet)
	if clientToken != "" {
		req.Header.Set(wire.HeaderToken, clientToken)
	} else {
		req.Header.Set(wire.HeaderToken, c.token)
	}
	lockParams := route == wire.RouteGetLock && (wait > 0 || c.ttl > 0)
	return c.roundTrip(ctx, req, resp, uri, c.timeout+max(wait, 0), route, conta, lockParams)
}

// Commit sets the balances of changes atomically and durably, each under
// the grant of its fence (the data server's /commit), releasing the locks
// when unlock is set, and keeps rec, when not nil, in the same durable
// batch. It returns (nil, nil) once applied.
//
// When rec's key has a record already, nothing is applied, the locks are
// not released, and that record is returned (with a nil error): a
// concurrent or earlier duplicate of the request won.
//
// A refusal changes nothing: teller.ErrStaleFence (a grant is no longer
// in force), teller.ErrNotFound, teller.ErrInvalidValue (a negative
// balance), teller.ErrLocked (another commit on the account is in
// progress), ErrCredentialRefused, teller.ErrUnsupported (a data server
// without /commit: use Write), and teller.ErrUnavailable with Code
// UNAVAILABLE and Status 503, which wraps teller.ErrNotApplied (see
// NotApplied). Any other teller.ErrUnavailable (timeout, connection lost,
// garbled answer) leaves the outcome unknown: the commit may have been
// applied and the locks released, or not.
//
// Commit is sent as a POST, which is never repeated automatically: a
// repeated commit that had been applied would be refused as stale, which
// would hide that it was applied.
func (c *Client) Commit(ctx context.Context, changes []teller.Change, unlock bool, rec *teller.Record) (*teller.Record, error) {
	route := wire.RouteCommit
	var conta int64
	if len(changes) > 0 {
		conta = changes[0].Conta
	}
	if err := gaveUp(ctx, route, conta); err != nil {
		return nil, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	if rec != nil && len(changes) > teller.MaxLegs {
		return nil, &DataError{Route: route, Conta: conta, Kind: teller.ErrBadRequest,
			Reason: "Commit: a record goes with at most " + strconv.Itoa(teller.MaxLegs) + " changes (a batch's form body has no room for its outcome)"}
	}
	var buf [512]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	start := len(uri)
	for _, ch := range changes {
		uri = append(uri, "&"+wire.ParamConta+"="...)
		uri = strconv.AppendInt(uri, ch.Conta, 10)
		uri = append(uri, "&"+wire.ParamValor+"="...)
		uri = strconv.AppendInt(uri, ch.Saldo, 10)
		uri = append(uri, "&"+wire.ParamFence+"="...)
		uri = strconv.AppendUint(uri, ch.Fence, 10)
	}
	if unlock {
		uri = append(uri, "&"+wire.ParamUnlock+"=1"...)
	}
	if rec != nil {
		uri = appendRecordParams(uri, rec)
		req.SetBody(rec.Body)
	}
	req.Header.SetContentType("application/json")
	uri = inForm(req, uri, start, len(changes), fasthttp.MethodPost)
	req.Header.Set(wire.HeaderToken, c.token)
	if _, err := c.roundTrip(ctx, req, resp, uri, c.timeout, route, conta, false); err != nil {
		return nil, err
	}
	r, err := parseRecord(resp.Body(), route)
	if err != nil {
		return nil, err
	}
	if r.found {
		return &r.rec, nil
	}
	return nil, nil
}

// Outcome returns the record kept under key (GET /idem), and whether there
// is one. A data server that keeps no records fails with
// teller.ErrUnsupported.
func (c *Client) Outcome(ctx context.Context, key string) (teller.Record, bool, error) {
	r, err := c.idem(ctx, fasthttp.MethodGet, &teller.Record{Key: key})
	return r.rec, r.found, err
}

// Keep keeps rec alone (POST /idem), for an outcome that changed no
// balance, such as a refusal, unless its key has a record already: that
// record is then returned instead, and rec is not kept.
func (c *Client) Keep(ctx context.Context, rec teller.Record) (*teller.Record, error) {
	r, err := c.idem(ctx, fasthttp.MethodPost, &rec)
	if err != nil || !r.found {
		return nil, err
	}
	return &r.rec, nil
}

func (c *Client) idem(ctx context.Context, method string, rec *teller.Record) (recordAnswer, error) {
	route := wire.RouteIdem
	if err := gaveUp(ctx, route, 0); err != nil {
		return recordAnswer{}, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var buf [512]byte
	uri := append(buf[:0], route...)
	uri = append(uri, c.query...)
	if method == fasthttp.MethodPost {
		uri = appendRecordParams(uri, rec)
		req.SetBody(rec.Body)
		req.Header.SetContentType("application/json")
	} else {
		uri = append(uri, "&"+wire.ParamKey+"="...)
		uri = append(uri, url.QueryEscape(rec.Key)...)
	}
	req.Header.SetMethod(method)
	req.Header.Set(wire.HeaderToken, c.token)
	if _, err := c.roundTrip(ctx, req, resp, uri, c.timeout, route, 0, false); err != nil {
		return recordAnswer{}, err
	}
	return parseRecord(resp.Body(), route)
}

// appendRecordParams appends a record's key, fingerprint and status to a
// query string.
func appendRecordParams(uri []byte, rec *teller.Record) []byte {
	uri = append(uri, "&"+wire.ParamKey+"="...)
	uri = append(uri, url.QueryEscape(rec.Key)...)
	uri = append(uri, "&"+wire.ParamFingerprint+"="...)
	uri = append(uri, url.QueryEscape(rec.Fingerprint)...)
	uri = append(uri, "&"+wire.ParamStatus+"="...)
	return strconv.AppendInt(uri, int64(rec.Status), 10)
}
