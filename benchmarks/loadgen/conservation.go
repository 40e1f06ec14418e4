package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// Conservation is the result of the conservation check. Money enters the
// bank only by deposits and leaves only by withdrawals, so
//
//	After == Before + Deposited - Withdrawn
//
// must hold exactly when every write's outcome is known. A write whose
// outcome is unknown may or may not have been applied, which allows After
// anywhere in [MinAfter, MaxAfter]:
//
//	MinAfter = Before + Deposited - Withdrawn - UnknownWithdraw
//	MaxAfter = Before + Deposited - Withdrawn + UnknownDeposit
//
// JSON field names are in the tags.
type Conservation struct {
	Before    int64 `json:"before"`    // sum of the balances before the run
	After     int64 `json:"after"`     // sum of the balances after the run
	Deposited int64 `json:"deposited"` // amounts of acknowledged (200) deposits
	Withdrawn int64 `json:"withdrawn"` // amounts of acknowledged (200) withdrawals
	// Amounts of deposits and withdrawals with unknown outcomes.
	UnknownDeposit  int64 `json:"unknown_deposit"`
	UnknownWithdraw int64 `json:"unknown_withdraw"`
	// UnknownTransfers counts transfers with unknown outcomes: they do not
	// move the bounds (a transfer keeps the sum), but a bank that applies
	// half a transfer shows up here first.
	UnknownTransfers int64 `json:"unknown_transfers"`
	MinAfter         int64 `json:"min_after"`
	MaxAfter         int64 `json:"max_after"`
	// NegativeAccounts lists the accounts whose balance is below zero
	// after the run (each fails the check).
	NegativeAccounts []int64 `json:"negative_accounts"`
	OK               bool    `json:"ok"`
	Reason           string  `json:"reason"`
}

// judge fills the bounds, OK and Reason from the other fields.
func (c *Conservation) judge() {
	base := c.Before + c.Deposited - c.Withdrawn
	c.MinAfter = base - c.UnknownWithdraw
	c.MaxAfter = base + c.UnknownDeposit
	exact := c.UnknownDeposit == 0 && c.UnknownWithdraw == 0
	var problems []string
	switch {
	case c.After > c.MaxAfter:
		problems = append(problems, fmt.Sprintf("money created: the balances sum to %d more than the acknowledged%s operations allow",
			c.After-c.MaxAfter, map[bool]string{true: "", false: " and unknown"}[exact]))
	case c.After < c.MinAfter:
		problems = append(problems, fmt.Sprintf("money destroyed: the balances sum to %d less than the acknowledged%s operations allow",
			c.MinAfter-c.After, map[bool]string{true: "", false: " and unknown"}[exact]))
	}
	if len(c.NegativeAccounts) > 0 {
		ids := make([]string, 0, min(len(c.NegativeAccounts), 10))
		for _, a := range c.NegativeAccounts[:min(len(c.NegativeAccounts), 10)] {
			ids = append(ids, strconv.FormatInt(a, 10))
		}
		more := ""
		if len(c.NegativeAccounts) > 10 {
			more = fmt.Sprintf(" and %d more", len(c.NegativeAccounts)-10)
		}
		problems = append(problems, "negative balance in account(s) "+strings.Join(ids, ", ")+more)
	}
	c.OK = len(problems) == 0
	switch {
	case !c.OK:
		c.Reason = strings.Join(problems, "; ")
	case exact:
		c.Reason = "after == before + deposited - withdrawn"
	default:
		c.Reason = "after lies within the range the unknown outcomes allow"
	}
}

// settlePoll is the pause between re-reads while the balances settle.
const settlePoll = 250 * time.Millisecond

// check reads the balances after the run and judges them against before.
func (l *loop) check(ctx context.Context, before []int64, t totals, interrupted bool) *Conservation {
	c := &Conservation{
		Deposited:        t.deposited,
		Withdrawn:        t.withdrawn,
		UnknownDeposit:   t.unknownDeposit,
		UnknownWithdraw:  t.unknownWithdraw,
		UnknownTransfers: t.unknownTransfers,
		NegativeAccounts: []int64{},
	}
	for _, b := range before {
		c.Before += b
	}
	// The load may have ended because ctx was cancelled; the final read is
	// still wanted, and it is bounded by the per-request timeout.
	rctx := context.WithoutCancel(ctx)
	after, err := readBalances(rctx, l.targets[0], l.cfg.Token, l.cfg.Accounts, l.cfg.Timeout)
	if err == nil && !interrupted && (t.unknownDeposit > 0 || t.unknownWithdraw > 0 || t.unknownTransfers > 0) {
		// A request the client gave up on may still be running on a
		// server; a half-done transfer would also tear a sequential read.
		// Wait until two reads in a row agree.
		deadline := time.Now().Add(l.cfg.Settle)
		for time.Now().Before(deadline) {
			time.Sleep(settlePoll)
			again, err := readBalances(rctx, l.targets[0], l.cfg.Token, l.cfg.Accounts, l.cfg.Timeout)
			if err != nil {
				break
			}
			if slices.Equal(again, after) {
				break
			}
			after = again
		}
	}
	if err != nil {
		c.OK = false
		c.Reason = "could not read the balances after the run: " + err.Error()
		return c
	}
	for i, b := range after {
		c.After += b
		if b < 0 {
			c.NegativeAccounts = append(c.NegativeAccounts, int64(i+1))
		}
	}
	c.judge()
	return c
}

// readBalances reads accounts 1..n through /saldo, a few at a time.
// Transient refusals (lock contention, 503, timeouts) are retried: a
// snapshot with a hole would be worthless.
func readBalances(ctx context.Context, t *target, token string, n int, timeout time.Duration) ([]int64, error) {
	bal := make([]int64, n)
	var (
		next     atomic.Int64
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(snapshotParallelism, n) {
		wg.Go(func() {
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for !failed.Load() {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				v, err := readBalance(ctx, t, token, i, timeout, req, resp)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
				bal[i-1] = v
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return bal, nil
}

const readAttempts = 8

func readBalance(ctx context.Context, t *target, token string, conta int64, timeout time.Duration,
	req *fasthttp.Request, resp *fasthttp.Response) (int64, error) {
	var last string
	for attempt := range readAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		req.Reset()
		req.SetRequestURI(t.base + "/saldo/" + strconv.FormatInt(conta, 10))
		req.Header.SetMethod(fasthttp.MethodGet)
		req.Header.Set(wire.HeaderToken, token)
		var o outcome
		if err := t.hc.DoTimeout(req, resp, timeout); err != nil {
			o = classifyErr(err)
		} else {
			body := resp.Body()
			_, hasCode := errorCode(body)
			status := resp.StatusCode()
			if status == fasthttp.StatusOK && !hasCode {
				if v := fieldInt(body, `"saldo"`, minInt64); v != minInt64 {
					return v, nil
				}
				return 0, fmt.Errorf("account %d: the answer has no integer saldo: %.80q", conta, body)
			}
			o = httpOutcome(status, body)
		}
		last = o.label()
		transient := o.kind == kindTimeout || o.kind == kindConnError || o.kind == kindNoFreeConn ||
			(o.kind == kindHTTP && (o.status == fasthttp.StatusForbidden || o.status >= 500 ||
				(o.hasCode && (o.code == int32(teller.LockedAccount) || o.code == int32(teller.Unavailable)))))
		if !transient {
			break
		}
	}
	return 0, errors.New("account " + strconv.FormatInt(conta, 10) + ": " + last)
}

const minInt64 = -1 << 63
