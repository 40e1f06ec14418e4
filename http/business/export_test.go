package business

// SetHook makes s call f at named points of its operations (see Stages);
// nil removes it. Tests only.
func SetHook(s *Server, f func(stage string)) {
	if f == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&f)
}

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

// ScopedKey exposes the key under which the data server keeps the outcome
// of a client's Idempotency-Key.
func ScopedKey(token, key string) string { return scopedKey([]byte(token), []byte(key)) }

// ParseGrants exposes parseGrants to the tests.
func ParseGrants(body []byte, contas []int64) ([]Grant, bool) {
	g := make([]Grant, len(contas))
	ok := parseGrants(body, contas, g)
	return g, ok
}
