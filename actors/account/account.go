// Package account holds the rules of one bank account: its balance and who
// holds its lock. It does no I/O and knows nothing of actors or HTTP, so that
// every rule can be tested exhaustively and reused by any transport.
//
// The lock semantics are those of the original bank: a lock is fail-fast (a
// request for a lock held by another holder is refused, not queued), re-entrant
// for the same holder, and a single unlock releases it. Reads are always
// allowed; writes are refused while another holder has the lock.
package account

import "errors"

// Errors returned by the rules. They are sentinels so that transports can map
// them to wire codes with errors.Is.
var (
	// ErrLocked refuses an operation because another holder has the lock.
	ErrLocked = errors.New("account locked by another holder")
	// ErrNegativeBalance refuses a write that would leave a negative balance.
	ErrNegativeBalance = errors.New("balance cannot be negative")
	// ErrNoHolder refuses a lock or unlock that does not say who asks:
	// an anonymous lock could never be told apart from a free account.
	ErrNoHolder = errors.New("holder must not be empty")
)

// Account is the state of one account. The zero value is a free account
// holding nothing. It is not safe for concurrent use: its owner (an actor)
// serializes access.
type Account struct {
	balance int64
	holder  string // "" while the lock is free
}

// New returns a free account holding balance.
func New(balance int64) (Account, error) {
	if balance < 0 {
		return Account{}, ErrNegativeBalance
	}
	return Account{balance: balance}, nil
}

// Balance returns the current balance. Reading never needs the lock.
func (a *Account) Balance() int64 { return a.balance }

// Holder returns who holds the lock, or "" when it is free.
func (a *Account) Holder() string { return a.holder }

// Lock gives the lock to who. It succeeds when the lock is free or already
// held by who (re-entrant), and fails fast with ErrLocked otherwise.
func (a *Account) Lock(who string) error {
	if who == "" {
		return ErrNoHolder
	}
	if a.holder != "" && a.holder != who {
		return ErrLocked
	}
	a.holder = who
	return nil
}

// Unlock releases the lock held by who. Unlocking a free account succeeds,
// so that a caller retrying an unlock whose answer it lost does no harm;
// unlocking another holder's lock is refused.
func (a *Account) Unlock(who string) error {
	if who == "" {
		return ErrNoHolder
	}
	if a.holder != "" && a.holder != who {
		return ErrLocked
	}
	a.holder = ""
	return nil
}

// Write sets the balance on behalf of who. As in the original bank, a write
// needs no lock while the account is free, but is refused while another
// holder has it. A negative balance is never stored.
func (a *Account) Write(who string, balance int64) error {
	if a.holder != "" && a.holder != who {
		return ErrLocked
	}
	if balance < 0 {
		return ErrNegativeBalance
	}
	a.balance = balance
	return nil
}
