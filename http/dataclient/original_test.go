package dataclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bank/gobank/http/dataclient"
	"github.com/bank/gobank/http/dataserver/dataservertest"
)

// TestDataClientTellsTheOriginal: the data client's refusal names the
// original (ErrOriginalCredential, still an ErrCredentialRefused) only for
// a data server without /getLocks, on every data route.
func TestDataClientTellsTheOriginal(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		data     *dataservertest.Server
		original bool
	}{
		{"the original", dataservertest.Start(t, dataservertest.Options{AllowClientTokens: true, Wrap: original}), true},
		{"ours", dataservertest.Start(t, dataservertest.Options{}), false},
	} {
		c, err := dataclient.New(dataclient.Config{URL: tc.data.URL, ServerToken: "wrong", ID: "x:1"})
		if err != nil {
			t.Fatal(err)
		}
		_, lockErr := lock1(ctx, c, 1, 0)
		_, readErr := c.Read(ctx, 1)
		for _, err := range []error{lockErr, readErr, c.Write(ctx, 1, 5, 0)} {
			if !errors.Is(err, dataclient.ErrCredentialRefused) || errors.Is(err, dataclient.ErrOriginalCredential) != tc.original {
				t.Errorf("%s: %v; want ErrCredentialRefused, and ErrOriginalCredential %v", tc.name, err, tc.original)
			}
		}
	}
	if strings.Contains(dataclient.ErrOriginalCredential.Error(), "ba0f") {
		t.Error("the error names a token")
	}
}
