// Package check verifies histories recorded by "bank bench --history"
// (format: loadgen.HistoryVersion).
//
// Two checkers are offered:
//
//   - Bank: every consistent snapshot of the balances sums to the initial
//     total plus the deposits minus the withdrawals that the bank
//     acknowledged before it, give or take the deposits and withdrawals
//     concurrent with it or of unknown outcome (a move whose deltas do not
//     sum to zero counts as a deposit or withdrawal of that sum); no
//     balance is ever negative (in a snapshot or in an answer).
//   - Linearizable: the whole history — answers of deposits, withdrawals,
//     transfers, moves and reads, refusals for insufficient funds,
//     snapshots — is explained by some order of the operations consistent
//     with real time, in which each account behaves as a sequential
//     balance and a move applies all its legs or none (checked with
//     porcupine). Operations of unknown outcome may or may not have taken
//     effect. The check is partitioned by the history's account groups
//     (bank bench --groups).
//
// Both judge the accounts the history covers (Header.Span) and return a
// Result; "bank check FILE" runs them and prints the results. A history is
// input from a file: Read validates every record first, so that a
// malformed one is refused with its line and the reason, and no checker
// ever sees it. A program may also build a History in memory (its Header,
// Ops and Snapshots) and pass it to the checkers directly:
// they do not panic on one that breaks Read's rules, and Linearizable
// reports a move it cannot judge (too many legs, an account named twice or
// outside the groups, balances not one per leg) as a violation.
package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Header is the history's first record.
type Header struct {
	Type    string `json:"type"`
	Version int    `json:"version"`
	Start   string `json:"start"`
	Target  string `json:"target"`
	// Accounts is how many accounts the history covers.
	Accounts int `json:"accounts"`
	Groups   int `json:"groups"`
	// Initial is the covered accounts' balances before the load, in
	// account order (nil: they could not be read).
	Initial []int64 `json:"initial"`
	// Covers is [first, last], the accounts the history covers (version
	// 2). A version 1 history has none and covers 1..Accounts: see Span.
	Covers []int64 `json:"covers,omitempty"`
}

// Span returns the first and the last account the history covers:
// Covers, or 1..Accounts when there is none (version 1).
func (h Header) Span() (first, last int64) {
	if len(h.Covers) == 2 {
		return h.Covers[0], h.Covers[1]
	}
	return 1, int64(h.Accounts)
}

// Entry is one operation or snapshot of a history.
type Entry struct {
	Type   string `json:"type"`
	Client int    `json:"client"`
	Op     string `json:"op,omitempty"`
	A      int64  `json:"a,omitempty"`
	B      int64  `json:"b,omitempty"`
	Amount int64  `json:"amount,omitempty"`
	Call   int64  `json:"call"`
	Ret    int64  `json:"ret"`
	Result string `json:"result"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	Saldo  int64  `json:"saldo,omitempty"`
	SaldoB int64  `json:"saldo_b,omitempty"`
	// Saldos is a snapshot's balances of the covered accounts, in account
	// order (Header.Span).
	Saldos []int64 `json:"saldos,omitempty"`
	// Legs is a move's legs, in the order the move named them (OpMove
	// only: 1 to MaxLegs of them, on distinct accounts).
	Legs []Leg `json:"legs,omitempty"`
	// LegSaldos is an acknowledged move's new balances, one per leg, in
	// leg order (OpMove with result ok only).
	LegSaldos []int64 `json:"leg_saldos,omitempty"`
	// Line is the entry's line number in the file (1-based).
	Line int `json:"-"`
}

// Leg is one account's part of a move: Delta (neither 0 nor
// math.MinInt64) is added to account Conta's balance. It has the fields of
// teller.Leg, so that check.Leg(l) converts one. In JSON it is the pair
// [conta, delta].
type Leg struct {
	Conta int64
	Delta int64
}

// MarshalJSON renders the leg as [conta, delta], as a history line has it.
func (l Leg) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 42), '[')
	b = strconv.AppendInt(b, l.Conta, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, l.Delta, 10)
	return append(b, ']'), nil
}

// String renders an entry for a report: its line and the JSON.
func (e Entry) String() string {
	b, _ := json.Marshal(e)
	return fmt.Sprintf("line %d: %s", e.Line, b)
}

// History is a recorded run, every record of which has been validated
// (see Read).
type History struct {
	Header    Header
	Ops       []Entry // type "op", in file (return) order
	Snapshots []Entry // type "snapshot", in file order
	// Trimmed counts the snapshots of a version 1 history that listed more
	// accounts than the header covers: the balances past Header.Accounts
	// were left out (see Read).
	Trimmed int
}

// MaxLine bounds a history's line (a snapshot of every covered account is
// one line: some 20 bytes per account).
const MaxLine = 64 << 20

// Read parses a history and validates every record (see parseRecord for
// the rules): a malformed one is an error "line N: what is wrong", and
// nothing reaches a checker. Blank lines are skipped.
//
// A version 1 history has no "covers": it covers accounts 1..accounts, the
// accounts its initial balances list and its operations may name. Its
// snapshots list every account of the data server, which may hold more
// (bank bench --accounts N against a larger bank): the balances past the
// covered accounts are left out (counted in Trimmed), because the history
// has no initial balance for them and its load never touched them.
func Read(r io.Reader) (*History, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	h := &History{}
	var hdr *Header
	var scratch rawRecord
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		rec, err := parseInto(&scratch, hdr, b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rec.entry.Line = line
		switch {
		case rec.header != nil:
			h.Header = *rec.header
			hdr = &h.Header
		case rec.entry.Type == TypeOp:
			h.Ops = append(h.Ops, rec.entry)
		default:
			h.Snapshots = append(h.Snapshots, rec.entry)
		}
		if rec.trimmed {
			h.Trimmed++
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d MiB, the longest line a history may have", line+1, MaxLine>>20)
		}
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if hdr == nil {
		return nil, errors.New("empty history: no header")
	}
	return h, nil
}

// ReadFile parses the history in a file.
func ReadFile(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Violation is one thing a checker found wrong, with the entries that show
// it.
type Violation struct {
	Message string
	Entries []Entry
}

// Result is a checker's verdict.
type Result struct {
	Name string
	// OK is true when the checker passed. A checker that could not decide
	// (Inconclusive) is not OK.
	OK           bool
	Inconclusive bool
	// Checked counts the entries the checker examined.
	Checked  int
	Duration time.Duration
	// Violations explain a failure (at most MaxViolations are kept).
	Violations []Violation
	// Note says anything else worth knowing (e.g. what was skipped).
	Note string
	// Visualization is the path of porcupine's HTML visualization written
	// on failure, or "".
	Visualization string
}

// MaxViolations bounds the violations a Result keeps.
const MaxViolations = 20

// Verdict is "PASS", "FAIL" or "UNKNOWN".
func (r Result) Verdict() string {
	switch {
	case r.OK:
		return "PASS"
	case r.Inconclusive:
		return "UNKNOWN"
	}
	return "FAIL"
}

func (r *Result) add(v Violation) {
	r.OK = false
	if len(r.Violations) < MaxViolations {
		r.Violations = append(r.Violations, v)
	}
}
