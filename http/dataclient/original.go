package dataclient

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/http/wire"
)

// What exists only for the original data server (the Python one): it has
// no /getLocks, /commit or /idem (404: teller.ErrUnsupported, and the
// caller locks one account per /getLock and writes with setSaldo), its
// lock grants are empty ({}: no fence, no balance), it knows no wait or
// ttl parameter, and it accepts on its data routes only its own client
// tokens, never a generated credential. This file tells it apart.

// ErrOriginalCredential wraps ErrCredentialRefused when the data server
// that refused the credential (HTTP 401) is of the original
// implementation: it has no /getLocks, and accepts on its data routes only
// its own client tokens, never our generated credential.
var ErrOriginalCredential = fmt.Errorf("the data server is of the original implementation (it has no /getLocks), "+
	"which accepts only its own client tokens on its data routes: set BANK_SERVER_TOKEN to one of them: %w", ErrCredentialRefused)

// originalCredentialReason is the Reason of ErrOriginalCredential: what
// works instead (never the token itself).
const originalCredentialReason = "data server of the original implementation refused this business server's credential: " +
	"it accepts only its own client tokens on its data routes, so set BANK_SERVER_TOKEN to one of them"

// unsupportedReason is the Reason of a 404 on route, which only the
// original (or an older data server of ours) answers.
func unsupportedReason(route string) string {
	return "the data server has no " + route + " route (it is not gobank's data server, or an older one)"
}

// Data server implementations, as isOriginal tells them apart.
const (
	flavorUnknown int32 = iota
	flavorOurs
	flavorOriginal
)

// isOriginal reports whether ep is a data server of the original
// implementation, which has no /getLocks: it answers a bare GET of it 404,
// where ours answers 400 (no id_negoc) or 401. It asks once, before
// deadline, and remembers the answer; a failed probe says false and is
// tried again next time.
func (ep *endpoint) isOriginal(deadline time.Time) bool {
	switch ep.flavor.Load() {
	case flavorOurs:
		return false
	case flavorOriginal:
		return true
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(ep.prefix + wire.RouteGetLocks)
	req.Header.SetMethod(fasthttp.MethodGet)
	if err := ep.hc.DoDeadline(req, resp, deadline); err != nil {
		return false
	}
	flavor := flavorOurs
	if resp.StatusCode() == fasthttp.StatusNotFound {
		flavor = flavorOriginal
	}
	ep.flavor.Store(flavor)
	return flavor == flavorOriginal
}
