// Package check verifies histories recorded by "bank bench --history"
// (format: loadgen.HistoryVersion).
//
// Two checkers are offered:
//
//   - Bank: every consistent snapshot of the balances sums to the initial
//     total plus the deposits minus the withdrawals that the bank
//     acknowledged before it, give or take the deposits and withdrawals
//     concurrent with it or of unknown outcome; no balance is ever
//     negative (in a snapshot or in an answer).
//   - Linearizable: the whole history — answers of deposits, withdrawals,
//     transfers and reads, refusals for insufficient funds, snapshots — is
//     explained by some order of the operations consistent with real time,
//     in which each account behaves as a sequential balance (checked with
//     porcupine). Operations of unknown outcome may or may not have taken
//     effect. The check is partitioned by the history's account groups
//     (bank bench --groups).
//
// Both return a Result; "bank check FILE" runs them and prints the results.
package check

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Results of an entry.
const (
	ResultOK      = "ok"
	ResultFail    = "fail"
	ResultUnknown = "unknown"
)

// Entry types.
const (
	TypeHeader   = "header"
	TypeOp       = "op"
	TypeSnapshot = "snapshot"
)

// Operation names of entries of type "op".
const (
	OpDeposito      = "deposito"
	OpSaque         = "saque"
	OpTransferencia = "transferencia"
	OpSaldo         = "saldo"
)

// Header is the history's first line.
type Header struct {
	Type     string  `json:"type"`
	Version  int     `json:"version"`
	Start    string  `json:"start"`
	Target   string  `json:"target"`
	Accounts int     `json:"accounts"`
	Groups   int     `json:"groups"`
	Initial  []int64 `json:"initial"`
}

// Entry is one operation or snapshot of a history.
type Entry struct {
	Type   string  `json:"type"`
	Client int     `json:"client"`
	Op     string  `json:"op,omitempty"`
	A      int64   `json:"a,omitempty"`
	B      int64   `json:"b,omitempty"`
	Amount int64   `json:"amount,omitempty"`
	Call   int64   `json:"call"`
	Ret    int64   `json:"ret"`
	Result string  `json:"result"`
	Status int     `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
	Saldo  int64   `json:"saldo,omitempty"`
	SaldoB int64   `json:"saldo_b,omitempty"`
	Saldos []int64 `json:"saldos,omitempty"`
	// Line is the entry's line number in the file (1-based).
	Line int `json:"-"`
}

// String renders an entry for a report: its line and the JSON.
func (e Entry) String() string {
	b, _ := json.Marshal(e)
	return fmt.Sprintf("line %d: %s", e.Line, b)
}

// History is a recorded run.
type History struct {
	Header    Header
	Ops       []Entry // type "op", in file (return) order
	Snapshots []Entry // type "snapshot", in file order
}

// Read parses a history.
func Read(r io.Reader) (*History, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	h := &History{}
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		if line == 1 {
			if err := json.Unmarshal(b, &h.Header); err != nil || h.Header.Type != TypeHeader {
				return nil, fmt.Errorf("line 1: not a history header (%v)", err)
			}
			if h.Header.Version != 1 {
				return nil, fmt.Errorf("line 1: history version %d: this checker reads version 1", h.Header.Version)
			}
			continue
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		e.Line = line
		switch e.Type {
		case TypeOp:
			h.Ops = append(h.Ops, e)
		case TypeSnapshot:
			h.Snapshots = append(h.Snapshots, e)
		default:
			return nil, fmt.Errorf("line %d: unknown entry type %q", line, e.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if line == 0 {
		return nil, errors.New("empty history")
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
