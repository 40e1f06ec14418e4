package wire

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
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

// WriteJSON answers body as JSON.
func WriteJSON(ctx *fasthttp.RequestCtx, body []byte) {
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// WriteError answers {"error_code":code,"error":msg} with status.
func WriteError(ctx *fasthttp.RequestCtx, status int, code Code, msg string) {
	ctx.SetStatusCode(status)
	var a [192]byte
	WriteJSON(ctx, AppendError(a[:0], code, msg))
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
		WriteError(ctx, fasthttp.StatusNotFound, BadRequest, "no such route")
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		WriteError(ctx, fasthttp.StatusMethodNotAllowed, BadRequest, "use GET or POST")
	}
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, p any) {
		logger.Error("panic serving request", "path", string(ctx.Path()), "panic", p, "stack", string(debug.Stack()))
		WriteError(ctx, fasthttp.StatusInternalServerError, Internal, "internal error")
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
		Logger:                fasthttpLogger{logger},
	}
}

// errorHandler answers requests fasthttp could not read.
func errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		WriteError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, BadRequest, "request header block too large")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, BadRequest, "request body too large")
	case errors.As(err, &ne) && ne.Timeout():
		WriteError(ctx, fasthttp.StatusRequestTimeout, BadRequest, "request timeout")
	default:
		WriteError(ctx, fasthttp.StatusBadRequest, BadRequest, "malformed request")
	}
}

// fasthttpLogger routes fasthttp's own messages (connection errors) to slog.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...))
}
