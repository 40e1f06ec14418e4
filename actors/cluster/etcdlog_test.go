package cluster

import (
	"slices"
	"testing"
)

func TestEndpointsForLog(t *testing.T) {
	got := EndpointsForLog([]string{"http://127.0.0.1:2379", "https://root:s3cret@etcd.example:2379", "root:s3cret@etcd:2379", "etcd:2379"})
	want := []string{"http://127.0.0.1:2379", "https://REDACTED@etcd.example:2379", "REDACTED", "etcd:2379"}
	if !slices.Equal(got, want) {
		t.Fatalf("EndpointsForLog = %q, want %q", got, want)
	}
}
