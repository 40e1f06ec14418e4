package dataclient

import "github.com/bank/gobank/actors/teller"

// Answer is a decoded data server answer, for the tests.
type Answer struct {
	Saldo    int64
	HasSaldo bool
	Code     int64
	HasCode  bool
	Fence    uint64
}

// ParseAnswer exposes parseAnswer to the tests.
func ParseAnswer(body []byte) (Answer, bool) {
	a, ok := parseAnswer(body)
	return Answer{a.saldo, a.hasSaldo, a.code, a.hasCode, a.fence}, ok
}

// ParseAnswerJSON exposes the encoding/json path of parseAnswer.
func ParseAnswerJSON(body []byte) (Answer, bool) {
	a, ok := parseAnswerJSON(body)
	return Answer{a.saldo, a.hasSaldo, a.code, a.hasCode, a.fence}, ok
}

// ParseGrants exposes parseGrants to the tests.
func ParseGrants(body []byte, contas []int64) ([]teller.Grant, bool) {
	g := make([]teller.Grant, len(contas))
	ok := parseGrants(body, contas, g)
	return g, ok
}
