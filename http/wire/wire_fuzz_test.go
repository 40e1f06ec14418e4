package wire_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bank/gobank/actors/teller"
	"github.com/bank/gobank/http/wire"
)

// fuzzGrammar reports whether b is what ParseInt documents it accepts: an
// optional '-', then 1 to 19 ASCII digits, nothing else.
func fuzzGrammar(b []byte) bool {
	b, _ = bytes.CutPrefix(b, []byte("-"))
	if len(b) == 0 || len(b) > 19 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FuzzParseInt: ParseInt accepts exactly its fuzzGrammar within int64, and
// agrees with strconv.ParseInt on it.
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "1", "-1", "42", "+1", " 1", "1 ", "1e3", "0x10", "1_000", "",
		"-", "--1", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "0000000000000000001", "00000000000000000001", "9999999999999999999",
		"-9999999999999999999", "١٢"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		got, ok := wire.ParseInt(b)
		if !bytes.Equal(b, orig) {
			t.Fatalf("ParseInt modified its input %q -> %q", orig, b)
		}
		want, err := strconv.ParseInt(string(b), 10, 64)
		if !fuzzGrammar(b) {
			if ok {
				t.Fatalf("ParseInt(%q) = %d, true: outside the grammar", b, got)
			}
			return
		}
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("ParseInt(%q) = %d, %v; strconv.ParseInt = %d, %v", b, got, ok, want, err)
		}
	})
}

// fuzzSanitize replaces every byte of invalid UTF-8 by U+FFFD, one per byte,
// as AppendString documents (strings.ToValidUTF8 would merge runs).
func fuzzSanitize(s string) string {
	var sb strings.Builder
	for _, r := range s { // range yields RuneError, width 1, per invalid byte
		sb.WriteRune(r)
	}
	return sb.String()
}

// FuzzAppendString: AppendString appends, after an untouched prefix, one
// valid JSON string that decodes back to the input with invalid UTF-8
// replaced; AppendError builds a valid error object around it.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", `"`, `\`, "\x00\x1f\x7f", "ç€😀", "\xff", "a\xc3", "\xed\xa0\x80",
		"\u2028\u2029", "</script>", "\t\n\r", "\xef\xbf\xbd", string([]byte{0xf4, 0x90, 0x80, 0x80})} {
		f.Add("prefix", s)
	}
	f.Fuzz(func(t *testing.T, prefix, s string) {
		dst := wire.AppendString([]byte(prefix), s)
		if !bytes.HasPrefix(dst, []byte(prefix)) {
			t.Fatalf("AppendString(%q, %q) = %q: prefix lost", prefix, s, dst)
		}
		out := dst[len(prefix):]
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("AppendString(%q) = %q: not valid JSON (UTF-8)", s, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %q: %v", s, out, err)
		}
		if want := fuzzSanitize(s); back != want {
			t.Fatalf("AppendString(%q) = %q decodes to %q, want %q", s, out, back, want)
		}
		for _, c := range out {
			if c < 0x20 {
				t.Fatalf("AppendString(%q) = %q: raw control byte", s, out)
			}
		}

		e := wire.AppendError(nil, teller.BadRequest, s)
		var obj struct {
			Code  *int    `json:"error_code"`
			Error *string `json:"error"`
		}
		if err := json.Unmarshal(e, &obj); err != nil || obj.Code == nil || *obj.Code != int(teller.BadRequest) ||
			obj.Error == nil || *obj.Error != fuzzSanitize(s) {
			t.Fatalf("AppendError(%q) = %q (%v)", s, e, err)
		}
	})
}
