package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bank/gobank/http/wire"
)

// Limits of a valid history.
const (
	// MaxAccounts bounds the accounts a history covers.
	MaxAccounts = 1 << 24
	// MaxClient bounds an operation's client number.
	MaxClient = math.MaxInt32 - 1
	// MaxLegs bounds a move's legs (teller.MaxLegs, the most the bank's
	// Move takes).
	MaxLegs = 16
)

// Versions this package reads (loadgen.HistoryVersion is the newest).
const (
	minVersion = 1
	maxVersion = 3
	// moveVersion is the first version with moves.
	moveVersion = 3
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
	// OpMove is a transaction of 1 to MaxLegs legs (Entry.Legs) applied
	// all or none, as teller.Move (version 3).
	OpMove = "move"
)

// field is one key of a record as it appeared on the line: its raw JSON
// value and how often the key was given. Decoding every key into a field
// (rather than straight into an int64) is what lets the validation tell a
// missing key from a null, a string or a float, and see a repeated key,
// all of which encoding/json would otherwise pass over in silence.
type field struct {
	raw []byte
	n   int
}

func (f *field) UnmarshalJSON(b []byte) error {
	f.n++
	f.raw = append(f.raw[:0], b...)
	return nil
}

// rawRecord holds every key any record type may have.
type rawRecord struct {
	Type      field `json:"type"`
	Version   field `json:"version"`
	Start     field `json:"start"`
	Target    field `json:"target"`
	Accounts  field `json:"accounts"`
	Groups    field `json:"groups"`
	Initial   field `json:"initial"`
	Covers    field `json:"covers"`
	Client    field `json:"client"`
	Op        field `json:"op"`
	A         field `json:"a"`
	B         field `json:"b"`
	Amount    field `json:"amount"`
	Call      field `json:"call"`
	Ret       field `json:"ret"`
	Result    field `json:"result"`
	Status    field `json:"status"`
	Error     field `json:"error"`
	Saldo     field `json:"saldo"`
	SaldoB    field `json:"saldo_b"`
	Saldos    field `json:"saldos"`
	Legs      field `json:"legs"`
	LegSaldos field `json:"leg_saldos"`
}

// named lists the record's fields with their keys, in the order above
// (an array: no allocation per call).
func (r *rawRecord) named() [23]namedField {
	return [...]namedField{
		{"type", &r.Type}, {"version", &r.Version}, {"start", &r.Start}, {"target", &r.Target},
		{"accounts", &r.Accounts}, {"groups", &r.Groups}, {"initial", &r.Initial}, {"covers", &r.Covers},
		{"client", &r.Client}, {"op", &r.Op}, {"a", &r.A}, {"b", &r.B}, {"amount", &r.Amount},
		{"call", &r.Call}, {"ret", &r.Ret}, {"result", &r.Result}, {"status", &r.Status},
		{"error", &r.Error}, {"saldo", &r.Saldo}, {"saldo_b", &r.SaldoB}, {"saldos", &r.Saldos},
		{"legs", &r.Legs}, {"leg_saldos", &r.LegSaldos},
	}
}

type namedField struct {
	key string
	f   *field
}

// The keys each record type may have.
var allowedKeys = map[string][]string{
	TypeHeader:   {"type", "version", "start", "target", "accounts", "groups", "initial", "covers"},
	TypeOp:       {"type", "client", "op", "a", "b", "amount", "call", "ret", "result", "status", "error", "saldo", "saldo_b", "legs", "leg_saldos"},
	TypeSnapshot: {"type", "client", "call", "ret", "result", "status", "error", "saldos"},
}

// record is one parsed line: a header, or an entry.
type record struct {
	header *Header
	entry  Entry
	// trimmed: a version 1 snapshot listed more balances than the
	// history covers, and the rest were left out.
	trimmed bool
}

// parseRecord parses and validates one line of a history whose header is
// hdr (nil: no header read yet). It is pure: the same line and header give
// the same answer. The rules, for the format of loadgen.HistoryVersion:
//
//   - the line is one JSON object whose keys are those of its type, each
//     given once; the first record is the only header;
//   - header: version 1, 2 or 3; start a string; target "business";
//     accounts 1..MaxAccounts; groups 0..accounts; initial null or one
//     integer per account; covers (version 2 and later, required there)
//     [first, last] with 1 <= first and last-first+1 = accounts;
//   - op and snapshot: 0 <= call <= ret < MaxInt64; result ok, fail or
//     unknown; status (0..999) and error (a string) exactly when the
//     result is not ok;
//   - op: client 0..MaxClient; op deposito, saque, transferencia, saldo
//     or (version 3 and later) move;
//   - deposito, saque, transferencia, saldo: a a covered account; amount >
//     0 except for saldo, which has none; b, for transfers only, another
//     covered account of a's group; saldo (and saldo_b for a transfer)
//     exactly when the result is ok; no legs nor leg_saldos;
//   - move: no a, b, amount, saldo nor saldo_b; legs 1..MaxLegs pairs
//     [conta, delta], each conta a covered account, all distinct and of
//     one group, each delta an integer neither 0 nor MinInt64; leg_saldos
//     exactly when the result is ok, one integer per leg;
//   - snapshot: client -1; saldos exactly when the result is ok, one
//     integer per covered account (a version 1 snapshot may list more: the
//     rest are trimmed).
//
// Balances may be negative here: a negative balance is the bank's fault,
// which the checkers report, not a malformed history.
func parseRecord(hdr *Header, line []byte) (record, error) {
	return parseInto(new(rawRecord), hdr, line)
}

// parseInto is parseRecord with the scratch space r, which it resets
// (Read reuses one: the fields' buffers are then allocated once).
func parseInto(r *rawRecord, hdr *Header, line []byte) (record, error) {
	for _, nf := range r.named() {
		nf.f.raw, nf.f.n = nf.f.raw[:0], 0
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return record{}, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return record{}, errors.New("something follows the JSON object on the line")
	}
	for _, nf := range r.named() {
		if nf.f.n > 1 {
			return record{}, fmt.Errorf("%s: given %d times", nf.key, nf.f.n)
		}
	}
	typ, err := str("type", &r.Type)
	if err != nil {
		return record{}, err
	}
	allowed, ok := allowedKeys[typ]
	if !ok {
		return record{}, fmt.Errorf("type: unknown record type %q (want header, op or snapshot)", typ)
	}
	for _, nf := range r.named() {
		if nf.f.n > 0 && !slices.Contains(allowed, nf.key) {
			return record{}, fmt.Errorf("%s: not a key of a record of type %s", nf.key, typ)
		}
	}
	switch {
	case typ == TypeHeader && hdr != nil:
		return record{}, errors.New("a second header: a history has one, on its first line")
	case typ == TypeHeader:
		h, err := parseHeader(r)
		return record{header: h}, err
	case hdr == nil:
		return record{}, fmt.Errorf("a record of type %s before the header: a history begins with its header", typ)
	}
	e := Entry{Type: typ}
	if e.Call, err = integer("call", &r.Call, 0, math.MaxInt64-1); err != nil {
		return record{}, err
	}
	if e.Ret, err = integer("ret", &r.Ret, 0, math.MaxInt64-1); err != nil {
		return record{}, err
	}
	if e.Ret < e.Call {
		return record{}, fmt.Errorf("ret %d is before call %d", e.Ret, e.Call)
	}
	if e.Result, err = str("result", &r.Result); err != nil {
		return record{}, err
	}
	switch e.Result {
	case ResultOK:
		if err := r.absent(ResultOK+" result", "status", "error"); err != nil {
			return record{}, err
		}
	case ResultFail, ResultUnknown:
		status, err := integer("status", &r.Status, 0, 999)
		if err != nil {
			return record{}, err
		}
		e.Status = int(status)
		if e.Error, err = str("error", &r.Error); err != nil {
			return record{}, err
		}
	default:
		return record{}, fmt.Errorf("result: %q (want ok, fail or unknown)", e.Result)
	}
	if typ == TypeSnapshot {
		trimmed, err := parseSnapshot(hdr, r, &e)
		return record{entry: e, trimmed: trimmed}, err
	}
	return record{entry: e}, parseOp(hdr, r, &e)
}

func parseHeader(r *rawRecord) (*Header, error) {
	h := &Header{Type: TypeHeader}
	v, err := integer("version", &r.Version, math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if v < minVersion || v > maxVersion {
		return nil, fmt.Errorf("version %d: this checker reads versions %d to %d", v, minVersion, maxVersion)
	}
	h.Version = int(v)
	if h.Start, err = str("start", &r.Start); err != nil {
		return nil, err
	}
	if h.Target, err = str("target", &r.Target); err != nil {
		return nil, err
	}
	if h.Target != TargetBusiness && h.Target != TargetInprocess {
		return nil, fmt.Errorf("target: %q (histories are of the business target, or in-process)", h.Target)
	}
	n, err := integer("accounts", &r.Accounts, 1, MaxAccounts)
	if err != nil {
		return nil, err
	}
	h.Accounts = int(n)
	g, err := integer("groups", &r.Groups, 0, n)
	if err != nil {
		return nil, fmt.Errorf("%w (no more groups than the %d accounts)", err, n)
	}
	h.Groups = int(g)
	if isNull(&r.Initial) {
		h.Initial = nil
	} else if h.Initial, err = integers("initial", &r.Initial); err != nil {
		return nil, err
	} else if len(h.Initial) != h.Accounts {
		return nil, fmt.Errorf("initial: %d balances for %d accounts", len(h.Initial), h.Accounts)
	}
	switch {
	case h.Version < 2 && r.Covers.n > 0:
		return nil, fmt.Errorf("covers: not a key of a version %d header", h.Version)
	case h.Version >= 2:
		if h.Covers, err = integers("covers", &r.Covers); err != nil {
			return nil, err
		}
		if len(h.Covers) != 2 {
			return nil, fmt.Errorf("covers: %d numbers, want [first, last]", len(h.Covers))
		}
		first, last := h.Covers[0], h.Covers[1]
		if first < 1 || last < first || last-first+1 != n {
			return nil, fmt.Errorf("covers: [%d, %d] is not %d accounts numbered from 1 up", first, last, n)
		}
	}
	return h, nil
}

func parseOp(hdr *Header, r *rawRecord, e *Entry) error {
	first, last := hdr.Span()
	client, err := integer("client", &r.Client, 0, MaxClient)
	if err != nil {
		return err
	}
	e.Client = int(client)
	if e.Op, err = str("op", &r.Op); err != nil {
		return err
	}
	switch e.Op {
	case OpDeposito, OpSaque, OpTransferencia, OpSaldo:
	case OpMove:
		if hdr.Version < moveVersion {
			return fmt.Errorf("op: %q is not an op of a version %d history (moves came with version %d)", e.Op, hdr.Version, moveVersion)
		}
		return parseMove(hdr, r, e)
	default:
		return fmt.Errorf("op: %q (want deposito, saque, transferencia, saldo or move)", e.Op)
	}
	if err := r.absent(e.Op, "legs", "leg_saldos"); err != nil {
		return err
	}
	if e.A, err = integer("a", &r.A, first, last); err != nil {
		return fmt.Errorf("%w (the history covers accounts %d..%d)", err, first, last)
	}
	if e.Op == OpSaldo {
		if err := r.absent(OpSaldo, "amount"); err != nil {
			return err
		}
	} else if e.Amount, err = integer("amount", &r.Amount, 1, math.MaxInt64); err != nil {
		return err
	}
	if e.Op == OpTransferencia {
		if e.B, err = integer("b", &r.B, first, last); err != nil {
			return fmt.Errorf("%w (the history covers accounts %d..%d)", err, first, last)
		}
		if e.B == e.A {
			return fmt.Errorf("b: %d, the same account as a (a transfer has two)", e.B)
		}
		if ga, gb := groupOf(e.A-first+1, hdr.Accounts, hdr.Groups), groupOf(e.B-first+1, hdr.Accounts, hdr.Groups); ga != gb {
			return fmt.Errorf("b: a transfer from account %d (group %d) to %d (group %d): the header's %d groups are disjoint", e.A, ga, e.B, gb, hdr.Groups)
		}
	} else if err := r.absent(e.Op, "b"); err != nil {
		return err
	}
	if e.Result != ResultOK {
		return r.absent(e.Result+" result", "saldo", "saldo_b")
	}
	if e.Saldo, err = integer("saldo", &r.Saldo, math.MinInt64, math.MaxInt64); err != nil {
		return err
	}
	if e.Op != OpTransferencia {
		return r.absent(e.Op, "saldo_b")
	}
	e.SaldoB, err = integer("saldo_b", &r.SaldoB, math.MinInt64, math.MaxInt64)
	return err
}

func parseMove(hdr *Header, r *rawRecord, e *Entry) error {
	if err := r.absent(OpMove, "a", "b", "amount", "saldo", "saldo_b"); err != nil {
		return err
	}
	var err error
	if e.Legs, err = legs("legs", &r.Legs); err != nil {
		return err
	}
	first, _ := hdr.Span()
	if _, err := checkLegs(first, hdr.Accounts, hdr.Groups, e.Legs); err != nil {
		return fmt.Errorf("legs%w", err)
	}
	if e.Result != ResultOK {
		return r.absent(e.Result+" result", "leg_saldos")
	}
	if e.LegSaldos, err = integers("leg_saldos", &r.LegSaldos); err != nil {
		return err
	}
	if len(e.LegSaldos) != len(e.Legs) {
		return fmt.Errorf("leg_saldos: %d balances for %d legs (one per leg, in leg order)", len(e.LegSaldos), len(e.Legs))
	}
	return nil
}

// checkLegs checks a move's legs against a history of accounts accounts
// numbered from first, in groups groups: 1 to MaxLegs of them, each of a
// covered account with a delta neither 0 nor MinInt64, the accounts
// distinct and of one group, which it returns. Its error begins where a
// key would end (": ..." or "[i]: ...") so that the caller names it.
func checkLegs(first int64, accounts, groups int, legs []Leg) (group int, err error) {
	if len(legs) == 0 || len(legs) > MaxLegs {
		return -1, fmt.Errorf(": %d legs, want 1 to %d", len(legs), MaxLegs)
	}
	last := first + int64(accounts) - 1
	for i, l := range legs {
		switch {
		case l.Conta < first || l.Conta > last:
			return -1, fmt.Errorf("[%d]: account %d is out of range %d..%d (the history covers accounts %d..%d)", i, l.Conta, first, last, first, last)
		case l.Delta == 0:
			return -1, fmt.Errorf("[%d]: delta 0 (a leg changes its account's balance)", i)
		case l.Delta == math.MinInt64:
			return -1, fmt.Errorf("[%d]: delta %d is out of range (a delta's magnitude fits in an int64)", i, l.Delta)
		}
		for j, m := range legs[:i] {
			if m.Conta == l.Conta {
				return -1, fmt.Errorf("[%d]: account %d again (legs[%d] names it; a move's accounts are distinct)", i, l.Conta, j)
			}
		}
		g := groupOf(l.Conta-first+1, accounts, groups)
		if i == 0 {
			group = g
		} else if g != group {
			return -1, fmt.Errorf("[%d]: account %d (group %d) in a move of account %d (group %d): the header's %d groups are disjoint", i, l.Conta, g, legs[0].Conta, group, groups)
		}
	}
	return group, nil
}

func parseSnapshot(hdr *Header, r *rawRecord, e *Entry) (trimmed bool, err error) {
	client, err := integer("client", &r.Client, math.MinInt64, math.MaxInt64)
	if err != nil {
		return false, err
	}
	if client != -1 {
		return false, fmt.Errorf("client: %d (a snapshot's is -1)", client)
	}
	e.Client = -1
	if e.Result != ResultOK {
		return false, r.absent(e.Result+" result", "saldos")
	}
	if e.Saldos, err = integers("saldos", &r.Saldos); err != nil {
		return false, err
	}
	switch n := hdr.Accounts; {
	case len(e.Saldos) == n:
	case hdr.Version == 1 && len(e.Saldos) > n:
		e.Saldos = e.Saldos[:n:n]
		trimmed = true
	default:
		return false, fmt.Errorf("saldos: %d balances for the %d accounts the history covers", len(e.Saldos), n)
	}
	return trimmed, nil
}

// groupOf returns the 0-based group of the index'th covered account
// (1-based), as bounds splits them; -1 when there is none.
func groupOf(index int64, accounts, groups int) int {
	for g := range max(groups, 1) {
		lo, hi := bounds(g, accounts, groups)
		if index >= lo && index <= hi {
			return g
		}
	}
	return -1
}

// decodeError says why a line is not a record.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not JSON: %s (at byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("a JSON %s, not an object", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not JSON: the object is cut short")
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%s: not a key of any record", s)
	}
	return fmt.Errorf("not a record: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func isNull(f *field) bool { return f.n > 0 && string(f.raw) == "null" }

// shown quotes a raw value for a message, cut at 40 bytes.
func shown(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	return string(raw)
}

// integer is key's value: an integer in lo..hi.
func integer(key string, f *field, lo, hi int64) (int64, error) {
	switch {
	case f.n == 0:
		return 0, fmt.Errorf("%s: missing", key)
	case isNull(f):
		return 0, fmt.Errorf("%s: null, want an integer", key)
	}
	v, ok := wire.ParseInt(f.raw)
	switch {
	case !ok:
		return 0, fmt.Errorf("%s: %s is not an integer within 64 bits", key, shown(f.raw))
	case v < lo || v > hi:
		return 0, fmt.Errorf("%s: %d is out of range %s", key, v, span(lo, hi))
	}
	return v, nil
}

func span(lo, hi int64) string {
	switch {
	case lo == math.MinInt64 && hi == math.MaxInt64:
		return "int64"
	case hi >= math.MaxInt64-1:
		return strconv.FormatInt(lo, 10) + ".."
	}
	return strconv.FormatInt(lo, 10) + ".." + strconv.FormatInt(hi, 10)
}

// str is key's value: a string.
func str(key string, f *field) (string, error) {
	switch {
	case f.n == 0:
		return "", fmt.Errorf("%s: missing", key)
	case isNull(f):
		return "", fmt.Errorf("%s: null, want a string", key)
	case f.raw[0] != '"':
		return "", fmt.Errorf("%s: %s is not a string", key, shown(f.raw))
	}
	if inner := f.raw[1 : len(f.raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		// No escapes (the decoder checked the syntax): the bytes are the
		// string. The words of the format are returned without a copy.
		if w, ok := known[string(inner)]; ok {
			return w, nil
		}
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(f.raw, &s); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return s, nil
}

// known maps the format's words to themselves (see str).
var known = map[string]string{
	TypeHeader: TypeHeader, TypeOp: TypeOp, TypeSnapshot: TypeSnapshot,
	OpDeposito: OpDeposito, OpSaque: OpSaque, OpTransferencia: OpTransferencia, OpSaldo: OpSaldo, OpMove: OpMove,
	ResultOK: ResultOK, ResultFail: ResultFail, ResultUnknown: ResultUnknown, "business": "business", "": "",
}

// array returns the elements of key's value, an array of what, as the
// bytes between its brackets (trimmed).
func array(key string, f *field, what string) ([]byte, error) {
	switch {
	case f.n == 0:
		return nil, fmt.Errorf("%s: missing", key)
	case isNull(f):
		return nil, fmt.Errorf("%s: null, want an array of %s", key, what)
	case f.raw[0] != '[':
		return nil, fmt.Errorf("%s: %s is not an array", key, shown(f.raw))
	}
	return bytes.TrimSpace(f.raw[1 : len(f.raw)-1]), nil
}

// integers is key's value: an array of integers (never nil).
func integers(key string, f *field) ([]int64, error) {
	inner, err := array(key, f, "integers")
	if err != nil {
		return nil, err
	}
	// The decoder has checked the syntax: splitting at commas yields the
	// elements when they are numbers, and a piece that is not an integer
	// (a float, a string, null, a nested array...) otherwise.
	out := make([]int64, 0, bytes.Count(inner, []byte{','})+1)
	for i := 0; len(inner) > 0; i++ {
		piece, rest, _ := bytes.Cut(inner, []byte{','})
		piece = bytes.TrimSpace(piece)
		v, ok := wire.ParseInt(piece)
		if !ok {
			what := "is not an integer within 64 bits"
			if string(piece) == "null" {
				what = "is null, want an integer"
			}
			return nil, fmt.Errorf("%s[%d]: %s %s", key, i, shown(piece), what)
		}
		out = append(out, v)
		inner = rest
	}
	return out, nil
}

// legs is key's value: an array of pairs [conta, delta] of integers
// (never nil).
func legs(key string, f *field) ([]Leg, error) {
	inner, err := array(key, f, "[conta, delta] pairs")
	if err != nil {
		return nil, err
	}
	// The decoder has checked the syntax: an element that is an array of
	// numbers runs from its '[' to the next ']'; any other element (a
	// number, an object, a nested array, an array with a string) either
	// does not begin with '[' or holds a piece that is not an integer.
	out := make([]Leg, 0, bytes.Count(inner, []byte{'['}))
	for i := 0; len(inner) > 0; i++ {
		end := bytes.IndexByte(inner, ']')
		if inner[0] != '[' || end < 0 {
			piece, _, _ := bytes.Cut(inner, []byte{','})
			return nil, fmt.Errorf("%s[%d]: %s is not a pair [conta, delta]", key, i, shown(bytes.TrimSpace(piece)))
		}
		c, d, two := bytes.Cut(inner[1:end], []byte{','})
		conta, okc := wire.ParseInt(bytes.TrimSpace(c))
		delta, okd := wire.ParseInt(bytes.TrimSpace(d))
		if !two || !okc || !okd || bytes.IndexByte(d, ',') >= 0 {
			return nil, fmt.Errorf("%s[%d]: %s is not a pair [conta, delta] of integers within 64 bits", key, i, shown(inner[:end+1]))
		}
		out = append(out, Leg{Conta: conta, Delta: delta})
		rest := bytes.TrimSpace(inner[end+1:])
		if len(rest) > 0 && rest[0] == ',' {
			rest = bytes.TrimSpace(rest[1:])
		}
		inner = rest
	}
	return out, nil
}

// absent checks that none of keys is given in a record of the kind what.
func (r *rawRecord) absent(what string, keys ...string) error {
	for _, nf := range r.named() {
		if nf.f.n > 0 && slices.Contains(keys, nf.key) {
			return fmt.Errorf("%s: not a key of a record with %s", nf.key, article(what))
		}
	}
	return nil
}

func article(what string) string {
	if what != "" && strings.ContainsRune("aeiou", rune(what[0])) {
		return "an " + what
	}
	return "a " + what
}
