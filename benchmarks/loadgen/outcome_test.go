package loadgen

import "testing"

// TestHTTPOutcomeUnknown: a 5xx is "surely not applied" only when the bank
// says so; a lost answer ("may or may not have been applied") is unknown
// for the conservation check and the history alike.
func TestHTTPOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		unknown bool
	}{
		{503, `{"error_code":-9,"error":"data server unavailable; the operation was not applied"}`, false},
		{409, `{"error_code":-6,"error":"insufficient funds; nothing changed"}`, false},
		{503, `{"error_code":-9,"error":"the operation may or may not have been applied; repeat it with the same Idempotency-Key"}`, true},
		{503, `{"error_code":-9,"error":"lease ran out"}`, true},
		{502, `bad gateway`, true},
		{500, `{"error_code":-11,"error":"internal error; the operation may not have completed: read the balance, or repeat the request with the same Idempotency-Key, before trying again"}`, true},
		{503, `{"error_code":-9,"error":"storage unavailable; not applied"}`, false},
	} {
		o := httpOutcome(tc.status, []byte(tc.body))
		if got := o.unknown(false); got != tc.unknown {
			t.Errorf("%d %s: unknown = %v, want %v", tc.status, tc.body, got, tc.unknown)
		}
		want := "fail"
		if tc.unknown {
			want = "unknown"
		}
		if got := historyResult(o, false); got != want {
			t.Errorf("%d %s: history result %q, want %q", tc.status, tc.body, got, want)
		}
	}
}
