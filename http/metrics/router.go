package metrics

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
)

// Router is a router whose routes are instrumented as they are
// registered: a server builds its router with Instrument and registers
// its routes as usual, and each one counts its requests, statuses,
// latency and refusals under its path.
type Router struct {
	*router.Router
	http *HTTP
}

// Instrument returns r with its registrations, and its NotFound and
// MethodNotAllowed handlers (as route "unmatched"), instrumented by h.
func Instrument(r *router.Router, h *HTTP) Router {
	if r.NotFound != nil {
		r.NotFound = h.Route("unmatched").Wrap(r.NotFound)
	}
	if r.MethodNotAllowed != nil {
		r.MethodNotAllowed = h.Route("unmatched").Wrap(r.MethodNotAllowed)
	}
	return Router{Router: r, http: h}
}

// Handle registers handler for method and path, instrumented.
func (r Router) Handle(method, path string, handler fasthttp.RequestHandler) {
	r.Router.Handle(method, path, r.http.Route(path).Wrap(handler))
}

// GET registers handler for GET requests to path, instrumented.
func (r Router) GET(path string, handler fasthttp.RequestHandler) {
	r.Handle(fasthttp.MethodGet, path, handler)
}

// POST registers handler for POST requests to path, instrumented.
func (r Router) POST(path string, handler fasthttp.RequestHandler) {
	r.Handle(fasthttp.MethodPost, path, handler)
}
