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
	// ParamScheme (an account.Scheme's name: no-wait, wait, wait-die,
	// wound-wait), ParamTS (a transaction's timestamp), ParamDetect ("1":
	// break a cycle of waits at once) and ParamVersion (one per conta, in
	// its order: validate what was read) make a /getLocks a transaction's.
	ParamScheme  = "scheme"
	ParamTS      = "ts"
	ParamDetect  = "detect"
	ParamVersion = "version"
	// ParamWithVersion (any value) makes getSaldo answer the balance's
	// version beside it: {"saldo":N,"version":V}.
	ParamWithVersion = "with_version"
	// ParamUnsynced ("1" or "true") lets a getLock or getLocks grant carry
	// a balance whose write is not yet durable (a data server releasing
	// locks early): for a caller that shows it to no one until its commit
	// or unlock of the account has answered, which wait until it is.
	ParamUnsynced = "unsynced"
	// ParamFence names the grant a getLock (renewal), setSaldo or unlock
	// acts under; older grants are refused with teller.StaleFence.
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

// FormType is the content type of a form body. A POST to /getLocks or
// /commit may carry its parameters in one, all but id_negoc, instead of
// the query: a batch's lists of accounts are too long for a request line.
const FormType = "application/x-www-form-urlencoded"

// MaxDataBody bounds a data server request's body: a form of
// teller.MaxAccounts accounts, each with a valor and a fence of up to 20
// digits, or an idempotency record's outcome.
const MaxDataBody = 2 << 20
