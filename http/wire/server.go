package wire

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
)

// Headers of idempotent requests on the business routes.
const (
	// HeaderIdempotencyKey carries the client's key for one logical
	// operation: repeating the request with the same key returns the first
	// outcome instead of applying it again.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayed is "true" on an answer that repeats a kept outcome.
	HeaderReplayed = "Idempotent-Replayed"
)

// MsgRepeatedToken refuses (400 BAD_REQUEST) a request that carries the
// credential header more than once: which one would be the caller's is
// ambiguous, as with any repeated parameter.
const MsgRepeatedToken = "token given more than once"

// SingleHeader returns the first value of the request header name and how
// many times the request carries it. A header that names one thing (the
// credential, an Idempotency-Key) is ambiguous when n > 1: the caller
// refuses the request rather than pick one.
func SingleHeader(h *fasthttp.RequestHeader, name string) (value []byte, n int) {
	all := h.PeekAll(name)
	if len(all) == 0 {
		return nil, 0
	}
	return all[0], len(all)
}

// Token returns the request's credential (nil when none); ok is false
// when the header is repeated, which the caller answers 400 with
// MsgRepeatedToken before looking any value up.
func Token(h *fasthttp.RequestHeader) (token []byte, ok bool) {
	token, n := SingleHeader(h, HeaderToken)
	return token, n <= 1
}

// WriteJSON answers body as JSON.
func WriteJSON(ctx *fasthttp.RequestCtx, body []byte) {
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// WriteError answers {"error_code":code,"error":msg} with status.
func WriteError(ctx *fasthttp.RequestCtx, status int, code teller.Code, msg string) {
	ctx.SetStatusCode(status)
	var a [192]byte
	WriteJSON(ctx, AppendError(a[:0], code, msg))
	SetRefusal(ctx, code)
}

// refusalKey is the request's user value under which a handler reports the
// error_code it answered, for the metrics and traces wrapped around it.
type refusalKey struct{}

// SetRefusal reports that the answer to ctx carries error_code code
// (WriteError does so itself). The value stored is the code's sentinel, a
// pointer, so that reporting allocates nothing.
func SetRefusal(ctx *fasthttp.RequestCtx, code teller.Code) {
	e, _ := code.Err().(*teller.Error)
	if e == nil {
		e = &teller.Error{Code: code, Message: "unknown error code"}
	}
	ctx.SetUserValue(refusalKey{}, e)
}

// Refusal returns the error_code reported for the answer to ctx, and false
// when none was.
func Refusal(ctx *fasthttp.RequestCtx) (teller.Code, bool) {
	if e, ok := ctx.UserValue(refusalKey{}).(*teller.Error); ok {
		return e.Code, true
	}
	return 0, false
}

// NewRouter returns a router with the conventions both servers share:
// exact paths only (a client that does not follow redirects would take a
// 301 for an error, and Flask did not redirect either), 404 and 405 in
// JSON, and a panic answered 500 and logged instead of killing the
// process (fasthttp does not recover handlers' panics).
func NewRouter(logger *slog.Logger) *router.Router {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		WriteError(ctx, fasthttp.StatusNotFound, teller.BadRequest, "no such route")
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		WriteError(ctx, fasthttp.StatusMethodNotAllowed, teller.BadRequest, "use GET or POST")
	}
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, p any) {
		logger.Error("panic serving request", "path", string(ctx.Path()), "panic", p, "stack", string(debug.Stack()))
		WriteError(ctx, fasthttp.StatusInternalServerError, teller.Internal, "internal error")
	}
	return r
}

// NewServer returns a fasthttp server for handler with the limits both
// servers share: header blocks over 8 KiB are answered 431, bodies over
// maxBody 413, unparsable requests 400, all in JSON.
func NewServer(name string, handler fasthttp.RequestHandler, maxBody int, logger *slog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               handler,
		ErrorHandler:          errorHandler,
		Name:                  name,
		ReadBufferSize:        8 << 10,
		MaxRequestBodySize:    maxBody,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           time.Minute,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		// Defence in depth: fasthttp then leaves the request's bytes out
		// of its header errors. fasthttpLogger is what guarantees it.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{logger},
	}
}

// errorHandler answers requests fasthttp could not read.
func errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		WriteError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, teller.BadRequest, "request header block too large")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, teller.BadRequest, "request body too large")
	case errors.As(err, &ne) && ne.Timeout():
		WriteError(ctx, fasthttp.StatusRequestTimeout, teller.BadRequest, "request timeout")
	default:
		WriteError(ctx, fasthttp.StatusBadRequest, teller.BadRequest, "malformed request")
	}
}

// fasthttpLogger routes fasthttp's own messages (connection errors,
// requests it cannot parse) to slog without a byte of any request: the
// errors fasthttp passes it quote the raw request (its token header, an
// Idempotency-Key) and the messages of its request logger carry the URI,
// so no argument that may hold request content is ever formatted. Only
// fasthttp's constant format string, addresses, numbers and a fixed class
// of each error are written.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	safe := make([]any, len(args))
	for i, a := range args {
		safe[i] = redactArg(a)
	}
	f.l.Warn(fmt.Sprintf(format, safe...), "component", "fasthttp")
}

// redacted stands for an argument that may hold request content.
const redacted = "[redacted]"

// redactArg returns a, when it cannot carry request content, or what may
// be written instead: an address as text, an error's class.
func redactArg(a any) any {
	switch v := a.(type) {
	case net.Addr:
		return v.String()
	case error:
		return errorClass(v)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, bool, time.Duration:
		return v
	default: // strings, byte slices, Stringers (a RequestCtx): anything
		return redacted
	}
}

// errorClass names what went wrong reading or answering a request in a
// fixed phrase that holds nothing of the request, for logs.
func errorClass(err error) string {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case err == nil:
		return "no error"
	case errors.As(err, &small), errors.Is(err, fasthttp.ErrSmallReadBuffer):
		return "request header block too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "request body too large"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed mid-request"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "connection reset"
	case errors.Is(err, fasthttp.ErrBadTrailer):
		return "malformed trailer"
	default:
		return "malformed request or connection error"
	}
}
