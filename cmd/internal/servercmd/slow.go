package servercmd

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// envSlow names a test-only fault of the data server: set to a Go duration
// (e.g. 20ms), every tenth request waits that long before it is served, as
// an overloaded or distant data server would, so that tests can check the
// bank under slow answers. Never set it in production; it is deliberately
// left out of --help.
const envSlow = "GOBANK_TEST_SLOW"

// slowWrap returns the handler wrapper of envSlow, or nil when it is unset.
func slowWrap() (func(fasthttp.RequestHandler) fasthttp.RequestHandler, error) {
	v := os.Getenv(envSlow)
	if v == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("%s=%q: want a positive Go duration", envSlow, v)
	}
	return func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
		var n atomic.Uint64
		return func(ctx *fasthttp.RequestCtx) {
			if n.Add(1)%10 == 0 {
				time.Sleep(d)
			}
			h(ctx)
		}
	}, nil
}
