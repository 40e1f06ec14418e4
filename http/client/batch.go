package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// MaxBatch bounds the transfers of one Transferencias call.
const MaxBatch = teller.MaxBatch

// maxBatchAnswer bounds what is read of a batch's answer: MaxBatch results
// of at most ~100 bytes each.
const maxBatchAnswer = 2 << 20

// TransferItem is one transfer of a batch (Transferencias): Valor from
// ContaOrig to ContaDest.
type TransferItem struct {
	ContaOrig int64
	ContaDest int64
	Valor     int64
	// Linked chains this transfer to the next one of the batch: a chain
	// (a run of linked transfers and the first unlinked one after it) is
	// applied whole or not at all. The last transfer of a batch must not
	// be linked (ErrLinkedOpen).
	Linked bool
}

// TransferResult is what one transfer of a batch came to.
type TransferResult struct {
	// Err is nil when the transfer was applied. Otherwise it is the
	// transfer's refusal, an *Error (HTTP status 200, the answer's) that
	// matches with errors.Is the sentinel of its code: ErrInsufficientFunds,
	// ErrNotFound (also for INVALID_ACCOUNT), ErrInvalidValue (also for
	// OVERFLOW), ErrSameAccount, ErrLinkedFailed (another transfer of its
	// chain was refused) or ErrLinkedOpen. A refused transfer changed
	// nothing.
	Err error
	// SaldoOrig and SaldoDest are the balances of ContaOrig and
	// ContaDest right after the transfer, when it was applied.
	SaldoOrig, SaldoDest int64
}

// BatchAnswer is the answer to Transferencias: one result per transfer,
// in the batch's order.
type BatchAnswer struct {
	Applied int // how many transfers were applied
	Results []TransferResult
}

// Transferencias sends batch (1 to MaxBatch transfers) as one POST
// /transferencias: the business server applies it as one transaction,
// each transfer in order on the balances the ones before it left, each
// with a result of its own (a refused one changes nothing and the batch
// goes on), linked chains whole or not at all.
//
// A nil error means every result is final. An error is the whole batch's
// (an *Error: ErrUnauthorized, ErrLocked, ErrUnavailable, ...), and then
// the answer holds no results.
//
// A batch is not retried when its outcome is unknown (no answer, a broken
// connection, 502, 503, 504): it carries no Idempotency-Key (a business
// server keeps no batch under one), so repeating it could apply it twice.
// Read the balances before sending it again. Only a batch surely not sent
// is retried (WithRetries, going round WithFailover's servers): when the
// connection to the business server could not be made, or the token could
// not be checked.
func (c *Client) Transferencias(ctx context.Context, batch []TransferItem) (ans BatchAnswer, err error) {
	const op = "transferencias"
	if len(batch) == 0 || len(batch) > MaxBatch {
		return BatchAnswer{}, &Error{Op: op, Code: teller.BadRequest,
			Message: fmt.Sprintf("a batch of %d transfers: want 1 to %d", len(batch), MaxBatch)}
	}
	body := appendBatch(make([]byte, 0, 2+len(batch)*64), batch)
	attempts := 0
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.tracer.Start(ctx, "client "+op, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.Int("gobank.transfers", len(batch)), attribute.Bool("gobank.idempotent", false)))
		defer func() { endSpan(span, attempts, err) }()
	}
	var raw []byte
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !c.backoff(ctx, attempt) {
			break
		}
		attempts++
		sent := false
		if err = c.ensureAuth(ctx); err == nil {
			raw, err = c.send(ctx, op, c.business[attempt%len(c.business)]+"/"+op, body, "", maxBatchAnswer)
			sent = err != nil && !notConnected(err)
		}
		if err == nil || sent || attempt >= c.retries || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return BatchAnswer{}, err
	}
	return readBatch(op, raw, batch)
}

// appendBatch appends batch as the route's JSON array.
func appendBatch(dst []byte, batch []TransferItem) []byte {
	return wire.AppendTransfers(dst, len(batch), func(i int) teller.BatchTransfer {
		t := batch[i]
		return teller.BatchTransfer{From: t.ContaOrig, To: t.ContaDest, Amount: t.Valor, Linked: t.Linked}
	})
}

// readBatch reads a batch's answer: a result for every transfer of batch,
// each the balances or a refusal, and applied their count.
func readBatch(op string, raw []byte, batch []TransferItem) (BatchAnswer, error) {
	var a struct {
		Applied *int `json:"applied"`
		Results []struct {
			SaldoOrig *int64       `json:"saldo_orig"`
			SaldoDest *int64       `json:"saldo_dest"`
			Code      *teller.Code `json:"error_code"`
			Message   string       `json:"error"`
		} `json:"results"`
	}
	notBank := func(why string, err error) (BatchAnswer, error) {
		return BatchAnswer{}, &Error{Op: op, Status: http.StatusOK, Code: teller.Internal,
			Message: "the answer is not the bank's batch: " + why, Err: err}
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return notBank("not JSON", err)
	}
	if a.Applied == nil || len(a.Results) != len(batch) {
		return notBank(fmt.Sprintf("%d results for %d transfers", len(a.Results), len(batch)), nil)
	}
	ans := BatchAnswer{Results: make([]TransferResult, len(batch))}
	for i, r := range a.Results {
		switch {
		case r.Code != nil:
			t := batch[i]
			ans.Results[i].Err = newError(op+"["+strconv.Itoa(i)+"] "+opName("transferencia", []int64{t.ContaOrig, t.ContaDest, t.Valor}),
				http.StatusOK, *r.Code, r.Message)
		case r.SaldoOrig != nil && r.SaldoDest != nil:
			ans.Applied++
			ans.Results[i].SaldoOrig, ans.Results[i].SaldoDest = *r.SaldoOrig, *r.SaldoDest
		default:
			return notBank(fmt.Sprintf("results[%d] has neither balances nor an error_code", i), nil)
		}
	}
	if ans.Applied != *a.Applied {
		return notBank(fmt.Sprintf("applied %d, but %d results are", *a.Applied, ans.Applied), nil)
	}
	return ans, nil
}

// notConnected reports whether err is a failure to connect to the server:
// the request was surely not sent.
func notConnected(err error) bool {
	var e *Error
	var oe *net.OpError
	return errors.As(err, &e) && e.Status == 0 && errors.As(e.Err, &oe) && oe.Op == "dial"
}
