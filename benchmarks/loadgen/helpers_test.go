package loadgen

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/business/businesstest"
	"github.com/bank/gobank/http/dataserver/dataservertest"
	"github.com/bank/gobank/http/wire"
)

// serve runs handler on a loopback port until the test ends and returns
// its URL.
func serve(t *testing.T, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: handler, CloseOnShutdown: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// startBank starts a real data server and two business servers in front
// of it. The short lock retry deadline keeps contended requests short.
func startBank(t *testing.T) (data *dataservertest.Server, urls []string) {
	t.Helper()
	data = dataservertest.Start(t, dataservertest.Options{})
	for range 2 {
		b := businesstest.Start(t, data, businesstest.Options{LockWait: 200 * time.Millisecond})
		urls = append(urls, b.URL)
	}
	return data, urls
}

// fakeBank serves the business routes from a map, with configurable bugs,
// so the conservation check can be shown to catch them.
type fakeBank struct {
	mu  sync.Mutex
	bal map[int64]int64

	depositFactor int64 // how many times a deposit is credited (1: correct)
	depositStatus int   // status answered after applying a deposit (0: 200)
	depositBody   bool  // with depositStatus: answer the bank's error body
	transferMints bool  // credit the destination without debiting the source
	allowNegative bool  // let withdrawals overdraw
}

func newFakeBank(accounts int, balance int64) *fakeBank {
	f := &fakeBank{bal: map[int64]int64{}, depositFactor: 1}
	for a := int64(1); a <= int64(accounts); a++ {
		f.bal[a] = balance
	}
	return f
}

func (f *fakeBank) sum() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s int64
	for _, v := range f.bal {
		s += v
	}
	return s
}

func (f *fakeBank) handle(ctx *fasthttp.RequestCtx) {
	parts := strings.Split(strings.Trim(string(ctx.Path()), "/"), "/")
	var n []int64
	for _, p := range parts[1:] {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			refuse(ctx, 404, teller.InvalidValue)
			return
		}
		n = append(n, v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.bal[n[0]]; !ok {
		refuse(ctx, 404, teller.NotFound)
		return
	}
	ctx.SetContentType("application/json")
	switch parts[0] {
	case "saldo":
		ctx.SetBodyString(`{"conta":` + strconv.FormatInt(n[0], 10) + `,"saldo":` + strconv.FormatInt(f.bal[n[0]], 10) + `}`)
	case "deposito":
		f.bal[n[0]] += f.depositFactor * n[1]
		if f.depositStatus != 0 {
			ctx.SetStatusCode(f.depositStatus)
			if f.depositBody {
				ctx.SetBody(wire.AppendError(nil, teller.Unavailable, "not applied"))
			} else {
				ctx.SetBody(nil)
			}
			return
		}
		ctx.SetBodyString(`{}`)
	case "saque":
		if !f.allowNegative && f.bal[n[0]] < n[1] {
			refuse(ctx, 409, teller.InsufficientFunds)
			return
		}
		f.bal[n[0]] -= n[1]
		ctx.SetBodyString(`{}`)
	case "transferencia":
		if f.bal[n[0]] < n[2] {
			refuse(ctx, 409, teller.InsufficientFunds)
			return
		}
		if !f.transferMints {
			f.bal[n[0]] -= n[2]
		}
		f.bal[n[1]] += n[2]
		ctx.SetBodyString(`{}`)
	default:
		refuse(ctx, 404, teller.BadRequest)
	}
}

func refuse(ctx *fasthttp.RequestCtx, status int, code teller.Code) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(wire.AppendError(nil, code, code.String()))
}
