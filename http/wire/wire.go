// Package wire is the data server's wire contract, shared by the server and
// by the business servers that call it: route names, parameter names, the
// credential header and the domain error codes of the original bank.
package wire

// HeaderToken carries the credential on every route but /status.
const HeaderToken = "token"

// Routes of the data server. The original served the unlock route as
// /unLock although its documentation says /setLock; both are served.
const (
	RouteStatus    = "/status"
	RouteAutentica = "/autentica"
	RouteGetSaldo  = "/getSaldo"
	RouteSetSaldo  = "/setSaldo"
	RouteGetLock   = "/getLock"
	RouteSetLock   = "/setLock"
	RouteUnLock    = "/unLock"
	// RouteGetLocks takes the locks of several accounts in one request, in
	// the order given (conta repeated), and answers every grant's fence and
	// balance; it takes all of them or none.
	RouteGetLocks = "/getLocks"
	// RouteCommit sets several balances atomically and durably under the
	// caller's current lock grants, optionally releasing them, and keeps
	// an idempotency record with them.
	RouteCommit = "/commit"
	// RouteIdem reads (GET) or keeps (POST) an idempotency record alone.
	RouteIdem = "/idem"
	// RouteSnapshot answers every balance as of one instant (server
	// credential): see package dataserver's snapshot.go.
	RouteSnapshot = "/snapshot"
)

// Query parameters of the data server's routes.
const (
	ParamIDNegoc = "id_negoc"
	ParamConta   = "conta"
	ParamValor   = "valor"
	// ParamWait (a Go duration, e.g. 500ms) makes getLock queue, FIFO, for
	// that long instead of failing fast.
	ParamWait = "wait"
	// ParamTTL (a Go duration) sets the lease of a getLock grant.
	ParamTTL = "ttl"
	// ParamFence names the grant a getLock (renewal), setSaldo or unlock
	// acts under; older grants are refused with StaleFence.
	ParamFence = "fence"
	// ParamUnlock ("1" or "true") makes /commit release the locks.
	ParamUnlock = "unlock"
	// ParamKey, ParamFingerprint and ParamStatus describe an idempotency
	// record: the client's key, what request it was for, and the outcome's
	// HTTP status (the outcome's body travels as the POST body).
	ParamKey         = "key"
	ParamFingerprint = "fingerprint"
	ParamStatus      = "status"
)

// Code is a domain error code, answered as HTTP 200 with {"error_code": N}:
// the original business server reads only error_code and treats any
// non-2xx answer as a crash.
type Code int

// The original's error codes.
const (
	// LockedAccount: another id_negoc holds the account's lock.
	LockedAccount Code = -1
	// InvalidAccount: no conta in the request, or not a number.
	InvalidAccount Code = -2
	// InvalidValue: no valor, or not an integer (or a negative balance).
	InvalidValue Code = -3
	// NotFound: no such account.
	NotFound Code = -4
	// StaleFence: the request names a lock grant that is no longer in force
	// (its lease ran out, or it was released and granted again).
	StaleFence Code = -5
)

// String returns the code's name in the contract.
func (c Code) String() string {
	switch c {
	case LockedAccount:
		return "LOCKED_ACCOUNT"
	case InvalidAccount:
		return "INVALID_ACCOUNT"
	case InvalidValue:
		return "INVALID_VALUE"
	case NotFound:
		return "NOT_FOUND"
	case StaleFence:
		return "STALE_FENCE"
	case InsufficientFunds:
		return "INSUFFICIENT_FUNDS"
	case SameAccount:
		return "SAME_ACCOUNT"
	case Unauthorized:
		return "UNAUTHORIZED"
	case Unavailable:
		return "UNAVAILABLE"
	case Overflow:
		return "OVERFLOW"
	case Internal:
		return "INTERNAL"
	case BadRequest:
		return "BAD_REQUEST"
	case KeyReused:
		return "KEY_REUSED"
	}
	return "UNKNOWN_ERROR"
}

// Codes that business servers answer beside the data server's own, with a
// non-2xx status (see the README's table).
const (
	// InsufficientFunds: a withdrawal or transfer would make a balance negative.
	InsufficientFunds Code = -6
	// SameAccount: a transfer names the same account twice.
	SameAccount Code = -7
	// Unauthorized: the credential is missing, unknown or not allowed here.
	Unauthorized Code = -8
	// Unavailable: the data server is down, did not answer in time, or refused
	// the business server's own credential.
	Unavailable Code = -9
	// Overflow: the result would not fit in a signed 64-bit integer.
	Overflow Code = -10
	// Internal: a bug; the operation was not applied.
	Internal Code = -11
	// BadRequest: malformed request (a repeated or oversized parameter, a missing id_negoc).
	BadRequest Code = -12
	// KeyReused: an Idempotency-Key already used for a different request.
	KeyReused Code = -13
)
