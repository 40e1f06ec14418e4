package wire

import (
	"encoding/json"
	"testing"

	"github.com/bank/gobank/actors/teller"
)

func TestAppendError(t *testing.T) {
	for _, msg := range []string{"", "plain", `quo"te\back`, "ctl\x00\x1f\n", "utf8 ção", "bad \xff utf8"} {
		b := AppendError(nil, teller.LockedAccount, msg)
		var got struct {
			Code  int    `json:"error_code"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", msg, b, err)
		}
		want := msg
		if msg == "bad \xff utf8" {
			want = "bad \ufffd utf8"
		}
		if got.Code != -1 || got.Error != want {
			t.Errorf("%q: decoded %+v", msg, got)
		}
	}
}

func TestCodeString(t *testing.T) {
	seen := map[string]teller.Code{}
	for c := teller.Code(-13); c <= -1; c++ {
		name := c.String()
		if name == "UNKNOWN_ERROR" {
			t.Errorf("code %d has no name", c)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("codes %d and %d share the name %s", prev, c, name)
		}
		seen[name] = c
	}
	if teller.Code(7).String() != "UNKNOWN_ERROR" {
		t.Error("unknown code named")
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"7", 7, true}, {"-7", -7, true}, {"007", 7, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false}, {"-", 0, false}, {"+5", 0, false}, {" 5", 0, false},
		{"5 ", 0, false}, {"1.5", 0, false}, {"1e3", 0, false}, {"abc", 0, false},
		{"--5", 0, false}, {"0x10", 0, false},
	} {
		n, ok := ParseInt([]byte(tc.in))
		if n != tc.n || ok != tc.ok {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.n, tc.ok)
		}
	}
}
