package business

import (
	"context"
	"errors"
	"time"

	"github.com/bank/gobank/actors/teller"
)

// dataAccounts is the data client as teller.Accounts.
type dataAccounts struct{ c *DataClient }

var (
	_ teller.Accounts = dataAccounts{}
	_ teller.Writer   = dataAccounts{}
)

func (d dataAccounts) Lock(ctx context.Context, ids []int64, wait time.Duration, grants []teller.Grant) error {
	if len(ids) == 1 {
		g, err := d.c.Lock(ctx, ids[0], wait)
		if err != nil {
			return mark(err)
		}
		grants[0] = teller.Grant(g)
		return nil
	}
	gs, err := d.c.LockMany(ctx, ids, wait)
	if err != nil {
		return mark(err)
	}
	for i, g := range gs {
		grants[i] = teller.Grant(g)
	}
	return nil
}

func (d dataAccounts) Unlock(ctx context.Context, id int64, fence uint64) error {
	return mark(d.c.Unlock(ctx, id, fence))
}

func (d dataAccounts) Read(ctx context.Context, id int64) (int64, error) {
	b, err := d.c.Read(ctx, id)
	return b, mark(err)
}

func (d dataAccounts) Write(ctx context.Context, id, balance int64, fence uint64) error {
	return mark(d.c.Write(ctx, id, balance, fence))
}

func (d dataAccounts) Commit(ctx context.Context, changes []teller.Change, unlock bool, rec *teller.Record) (*teller.Record, error) {
	var cs [teller.MaxLegs]Change
	for i, c := range changes {
		cs[i] = Change(c)
	}
	r, err := d.c.Commit(ctx, cs[:len(changes)], unlock, (*Record)(rec))
	return (*teller.Record)(r), mark(err)
}

func (d dataAccounts) Outcome(ctx context.Context, key string) (teller.Record, bool, error) {
	r, ok, err := d.c.Outcome(ctx, key)
	return teller.Record(r), ok, mark(err)
}

func (d dataAccounts) Keep(ctx context.Context, rec teller.Record) (*teller.Record, error) {
	r, err := d.c.Keep(ctx, Record(rec))
	return (*teller.Record)(r), mark(err)
}

// marked adds the teller's reading of a data client error to it.
type marked struct{ err, mark error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.mark} }

// mark adds to err what the teller must know of it: an answer that surely
// applied nothing (NotApplied) wraps teller.ErrNotApplied, an error_code
// the client does not know teller.ErrInternal (a bug, answered 500).
func mark(err error) error {
	if err == nil {
		return nil
	}
	var de *DataError
	switch {
	case errors.As(err, &de) && de.Kind == nil:
		return &marked{err, teller.ErrInternal}
	case NotApplied(err):
		return &marked{err, teller.ErrNotApplied}
	}
	return err
}
