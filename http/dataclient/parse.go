package dataclient

import (
	"bytes"
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// answer is the decoded body of a 200 answer.
type answer struct {
	saldo    int64
	hasSaldo bool
	code     int64
	hasCode  bool
	fence    uint64
	version  uint64 // of a read (this project's data server); 0: none
	conta    int64  // the account a refusal names (this project's /getLocks); 0: none
}

// parseGrants reads {"contas":[...],"fences":[...],"saldos":[...]} into
// grants, checking that the accounts are contas in order and that every
// fence is positive.
func parseGrants(body []byte, contas []int64, grants []teller.Grant) bool {
	var ids, fences, saldos []int64
	var small [3][teller.MaxLegs]int64
	if len(contas) <= teller.MaxLegs {
		ids, fences, saldos = small[0][:0], small[1][:0], small[2][:0]
	} else {
		ids, fences, saldos = make([]int64, 0, len(contas)), make([]int64, 0, len(contas)), make([]int64, 0, len(contas))
	}
	got, ok := intList(body, `"contas"`, ids)
	if !ok || len(got) != len(contas) {
		return false
	}
	for i := range got {
		if got[i] != contas[i] {
			return false
		}
	}
	f, ok1 := intList(body, `"fences"`, fences)
	b, ok2 := intList(body, `"saldos"`, saldos)
	if !ok1 || !ok2 || len(f) != len(contas) || len(b) != len(contas) {
		return false
	}
	for i := range grants {
		if f[i] <= 0 {
			return false
		}
		grants[i] = teller.Grant{Fence: uint64(f[i]), Saldo: b[i], HasSaldo: true}
	}
	return true
}

// intList appends to dst the integers of the list under key (`"key"`) in a
// flat JSON object whose lists hold integers only, as /getLocks answers.
func intList(body []byte, key string, dst []int64) ([]int64, bool) {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return dst, false
	}
	b := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return dst, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '[' {
		return dst, false
	}
	end := bytes.IndexByte(b, ']')
	if end < 0 {
		return dst, false
	}
	items := bytes.TrimSpace(b[1:end])
	if len(items) == 0 {
		return dst, true
	}
	for item := range bytes.SplitSeq(items, []byte(",")) {
		n, ok := wire.ParseInt(bytes.TrimSpace(item))
		if !ok || len(dst) == cap(dst) {
			return dst, false
		}
		dst = append(dst, n)
	}
	return dst, true
}

// recordAnswer is a decoded answer of /commit or /idem.
type recordAnswer struct {
	found bool
	rec   teller.Record
}

// parseRecord decodes a 200 answer of /commit or /idem without error_code:
// {} (applied), {"found":false[,"stored":true]}, or a record
// {"found":true,"status":S,"fingerprint":"FP","body":"..."}.
func parseRecord(body []byte, route string) (recordAnswer, error) {
	// An applied commit answers {}: the answer of almost every call, spared
	// a pass through encoding/json (a few percent of a transfer's CPU).
	if string(bytes.TrimSpace(body)) == "{}" {
		return recordAnswer{}, nil
	}
	var m struct {
		Found       *bool   `json:"found"`
		Status      *int    `json:"status"`
		Fingerprint *string `json:"fingerprint"`
		Body        *string `json:"body"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return recordAnswer{}, &DataError{Route: route, Kind: teller.ErrUnavailable, Status: fasthttp.StatusOK,
			Reason: "data server sent a malformed answer", Err: err}
	}
	if m.Found == nil || !*m.Found {
		return recordAnswer{}, nil
	}
	if m.Status == nil || *m.Status < 100 || *m.Status > 599 || m.Fingerprint == nil || m.Body == nil {
		return recordAnswer{}, &DataError{Route: route, Kind: teller.ErrUnavailable, Status: fasthttp.StatusOK,
			Reason: "data server sent a malformed idempotency record"}
	}
	return recordAnswer{found: true, rec: teller.Record{Fingerprint: *m.Fingerprint, Status: *m.Status, Body: []byte(*m.Body)}}, nil
}

// parseAnswer decodes a 200 body: a JSON object whose fields saldo,
// error_code, fence and version, when present, must be integers (fence
// and version positive).
// Flat objects of numbers and strings, which is every answer of the data
// servers we know, are scanned by hand; anything else goes through
// encoding/json.
func parseAnswer(body []byte) (answer, bool) {
	if a, res := scanAnswer(body); res != scanUnsure {
		return a, res == scanOK
	}
	return parseAnswerJSON(body)
}

// parseAnswerJSON is parseAnswer through encoding/json.
func parseAnswerJSON(body []byte) (answer, bool) {
	// Only an object will do: json.Unmarshal would take null silently.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return answer{}, false
	}
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, and "SALDO" is not "saldo".
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return answer{}, false
	}
	var a answer
	for _, key := range []string{"saldo", "error_code", "fence", "version", "conta"} {
		if raw, ok := m[key]; ok && !a.set([]byte(key), raw) {
			return answer{}, false
		}
	}
	return a, true
}

// set stores the integer field key of an answer; it reports false for a
// value that is not an acceptable integer. Other keys are ignored.
func (a *answer) set(key, raw []byte) bool {
	switch string(key) {
	case "saldo", "error_code", "fence", "version", "conta":
	default:
		return true
	}
	n, ok := wire.ParseInt(raw)
	if !ok {
		return false
	}
	switch string(key) {
	case "saldo":
		a.saldo, a.hasSaldo = n, true
	case "error_code":
		a.code, a.hasCode = n, true
	case "fence":
		if n <= 0 {
			return false
		}
		a.fence = uint64(n)
	case "version":
		if n <= 0 {
			return false
		}
		a.version = uint64(n)
	case "conta":
		a.conta = n // a refusal's account: only a positive one names it
	}
	return true
}

const (
	scanOK     = iota // a valid answer
	scanBad           // not an acceptable answer
	scanUnsure        // beyond the hand scanner: ask encoding/json
)

// scanAnswer scans, without allocating, a flat JSON object whose values
// are integers or strings, without escapes. It answers
// scanBad only for what is surely not a JSON object, and scanUnsure for
// anything it does not fully understand, so that it never disagrees with
// parseAnswerJSON.
func scanAnswer(b []byte) (answer, int) {
	var a answer
	ws := func(i int) int {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		return i
	}
	i := ws(0)
	if i >= len(b) || b[i] != '{' {
		return a, scanBad
	}
	i = ws(i + 1)
	if i < len(b) && b[i] == '}' {
		if ws(i+1) != len(b) {
			return a, scanBad
		}
		return a, scanOK
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return a, scanUnsure
		}
		j := i + 1
		for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			return a, scanUnsure
		}
		key := b[i+1 : j]
		i = ws(j + 1)
		if i >= len(b) || b[i] != ':' {
			return a, scanUnsure
		}
		i = ws(i + 1)
		if i >= len(b) {
			return a, scanUnsure
		}
		if b[i] == '"' {
			j = i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] < 0x20 || b[j] == '\\' {
					return a, scanUnsure // control characters, escapes
				}
				j++
			}
			if j >= len(b) {
				return a, scanUnsure
			}
			switch string(key) {
			case "saldo", "error_code", "fence", "version":
				return a, scanUnsure // a number in a string: refused by the slow path
			}
			i = ws(j + 1)
		} else {
			j = i
			if j < len(b) && b[j] == '-' {
				j++
			}
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j == i || (j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t') {
				return a, scanUnsure // fractions, exponents, literals, nesting
			}
			digits := b[i:j]
			if digits[0] == '-' {
				digits = digits[1:]
			}
			if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
				return a, scanUnsure // "-" or a leading zero: not JSON
			}
			if !a.set(key, b[i:j]) {
				return a, scanUnsure // out of range: refused by the slow path
			}
			i = ws(j)
		}
		if i < len(b) && b[i] == ',' {
			i = ws(i + 1)
			continue
		}
		if i < len(b) && b[i] == '}' && ws(i+1) == len(b) {
			return a, scanOK
		}
		return a, scanUnsure
	}
}
