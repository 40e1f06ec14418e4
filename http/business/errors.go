package business

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/wire"
)

// Errors of the business server: the project's domain errors (package
// teller) and the data client's, named here for this package's callers.
var (
	ErrLocked         = teller.ErrLocked         // another id_negoc holds the account's lock
	ErrInvalidAccount = teller.ErrInvalidAccount // the data server did not accept the account number
	ErrInvalidValue   = teller.ErrInvalidValue   // the data server did not accept the value, e.g. a negative balance
	ErrNotFound       = teller.ErrNotFound       // no such account
	// ErrStaleFence: the lock grant named by a write or unlock is no longer
	// in force (its lease ran out): the call was refused and the lock is lost.
	ErrStaleFence   = teller.ErrStaleFence
	ErrUnauthorized = teller.ErrUnauthorized // the data server refused the client's token at /autentica
	// ErrCredentialRefused: the data server refused this business server's
	// own credential (see dataclient.ErrCredentialRefused).
	ErrCredentialRefused = dataclient.ErrCredentialRefused
	// ErrOriginalCredential: the same, from the original data server, which
	// accepts only its own client tokens (see dataclient.ErrOriginalCredential).
	ErrOriginalCredential = dataclient.ErrOriginalCredential
	ErrUnavailable        = teller.ErrUnavailable // unreachable, no answer in time, 5xx, or an answer outside the contract
	// ErrUnsupported: the data server lacks /getLocks, /commit or /idem
	// (HTTP 404): it is the original implementation, or an older version
	// of ours. Nothing was applied.
	ErrUnsupported = teller.ErrUnsupported
	// ErrInsufficientFunds refuses a withdrawal or transfer that would leave
	// a negative balance. Nothing was changed.
	ErrInsufficientFunds = teller.ErrInsufficientFunds
	// ErrOverflow refuses a credit whose resulting balance would not fit in
	// int64. Nothing was changed.
	ErrOverflow = teller.ErrOverflow
	// ErrSameAccount refuses a transfer from an account to itself.
	ErrSameAccount = teller.ErrSameAccount
	// ErrLinkedFailed refuses a transfer of a batch whose linked chain has
	// another transfer refused. Nothing of the chain was changed.
	ErrLinkedFailed = teller.ErrLinkedFailed
	// ErrLinkedOpen refuses a batch's last transfer when it is linked to
	// a next one that is not there. Nothing of its chain was changed.
	ErrLinkedOpen = teller.ErrLinkedOpen
	// errPanic reports a recovered panic.
	errPanic = errors.New("internal error")
)

// failure is the answer to err (see classify), appended to dst.
func failure(err error, dst []byte) reply {
	st, code, msg := classify(err)
	return reply{status: st, code: code, body: wire.AppendError(dst[:0], code, msg), err: err}
}

// errRepeatedToken refuses (400) a request carrying the token header more
// than once, as a repeated Idempotency-Key is.
var errRepeatedToken = errors.New(wire.MsgRepeatedToken)

// classify maps an operation's error to the answer's status, code and
// message. Messages never name the data server's address or a credential.
func classify(err error) (status int, code teller.Code, msg string) {
	var reused *teller.KeyReusedError
	var unknown *teller.OutcomeUnknownError
	var notKept *teller.RefusalNotKeptError
	var badBatch *badBatchError
	switch {
	case errors.As(err, &reused):
		return fasthttp.StatusUnprocessableEntity, teller.KeyReused,
			"this Idempotency-Key was used for another request (" + reused.Fingerprint + "); use a new key for a new request"
	case errors.Is(err, errBadKey), errors.Is(err, errRepeatedToken):
		return fasthttp.StatusBadRequest, teller.BadRequest, err.Error()
	case errors.As(err, &badBatch):
		return fasthttp.StatusBadRequest, teller.BadRequest, badBatch.msg
	case errors.Is(err, teller.ErrNoRecords):
		return fasthttp.StatusNotImplemented, teller.Unavailable,
			"this bank's data server keeps no idempotency records (it is not gobank's data server): send the request without an Idempotency-Key"
	case errors.As(err, &unknown):
		return fasthttp.StatusServiceUnavailable, teller.Unavailable, unknownMessage(unknown.Err)
	case errors.As(err, &notKept):
		return fasthttp.StatusServiceUnavailable, teller.Unavailable,
			"the outcome could not be recorded under the Idempotency-Key; nothing changed, try again"
	}
	for _, a := range errAnswers {
		if errors.Is(err, a.err) {
			return a.status, a.code, a.msg
		}
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnsupported) {
		msg := "data server unavailable"
		var de *dataclient.DataError
		if errors.As(err, &de) && de.Reason != "" {
			msg = de.Reason
		}
		return fasthttp.StatusServiceUnavailable, teller.Unavailable, msg + "; the operation was not applied or was rolled back"
	}
	return fasthttp.StatusInternalServerError, teller.Internal,
		"internal error; the operation may not have completed: read the balance, or repeat the request with the same Idempotency-Key, before trying again"
}

// errAnswer is how the business server answers a domain error.
type errAnswer struct {
	err    error
	status int
	code   teller.Code
	msg    string
}

// errAnswers is the business server's one table from its errors to its
// answers' status, error_code and message (classify handles the errors
// whose message depends on the error's details first). The Go client's
// side of the same boundary is package client's codes table. The first
// row that matches wins (ErrOriginalCredential wraps ErrCredentialRefused),
// and ErrUnavailable, whose message is the DataError's reason, comes last.
var errAnswers = []errAnswer{
	{ErrUnauthorized, fasthttp.StatusUnauthorized, teller.Unauthorized, "missing or unknown token"},
	{ErrOriginalCredential, fasthttp.StatusServiceUnavailable, teller.Unavailable,
		"the data server is of the original implementation and refused this business server's credential: " +
			"it accepts only its own client tokens, so the operator must start this business server with " +
			"BANK_SERVER_TOKEN set to one of them; nothing was applied"},
	{ErrCredentialRefused, fasthttp.StatusServiceUnavailable, teller.Unavailable,
		"the data server refused this business server's credential; the operator must fix its configuration"},
	{ErrStaleFence, fasthttp.StatusServiceUnavailable, teller.Unavailable,
		"the account's lock lease ran out before the operation finished; try again"},
	{ErrLocked, fasthttp.StatusForbidden, teller.LockedAccount, "account locked by another operation; nothing changed, try again"},
	{ErrNotFound, fasthttp.StatusNotFound, teller.NotFound, "no such account"},
	{ErrInvalidAccount, fasthttp.StatusNotFound, teller.InvalidAccount, "an account must be a positive integer"},
	{ErrInvalidValue, fasthttp.StatusNotFound, teller.InvalidValue, "valor must be a positive integer of at most 9223372036854775807"},
	{ErrOverflow, fasthttp.StatusNotFound, teller.Overflow, "the balance would exceed 9223372036854775807; nothing changed"},
	{ErrInsufficientFunds, fasthttp.StatusConflict, teller.InsufficientFunds, "insufficient funds; nothing changed"},
	{ErrSameAccount, fasthttp.StatusBadRequest, teller.SameAccount, "conta_orig and conta_dest must differ"},
	// A batch's transfers only (POST /transferencias answers them in its
	// results, with 200); the statuses say what they would be alone.
	{ErrLinkedFailed, fasthttp.StatusConflict, teller.LinkedFailed,
		"another transfer of its linked chain was refused; nothing changed"},
	{ErrLinkedOpen, fasthttp.StatusBadRequest, teller.LinkedOpen,
		"the batch's last transfer is linked, and no transfer follows it; its chain was not applied"},
}

// unknownMessage explains a commit whose answer was lost.
func unknownMessage(err error) string {
	reason := "the data server's answer was lost"
	var de *dataclient.DataError
	if errors.As(err, &de) && de.Reason != "" {
		reason = de.Reason
	}
	return reason + " while it was applying the operation, which may or may not have been applied: " +
		"repeat the request with the same Idempotency-Key to learn which (without one, read the balance before trying again)"
}
