package sealed_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// An alert rule's signing secret is sealed: the store underneath holds an
// envelope, the adapter opens it, and an envelope moved to another rule
// does not open.
func TestAlertSecretSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	now := time.Now()
	if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: now}); err != nil {
		t.Fatal(err)
	}
	secret := []byte("CANARY-alert-signing-secret-0123")
	spec := ward.AlertSpec{Metric: ward.MetricQueueDepth, Op: ward.OpGT, Threshold: 1, For: "1m0s", Webhook: "https://example.test/hook"}
	for _, name := range []string{"a", "b"} {
		if _, err := s.PutAlert(ctx, &store.PutAlertParams{Project: "p", Name: name, Spec: spec, ForMs: 60000, Secret: secret, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := s.Store.GetAlert(ctx, "p", "a")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Secret, secret) || len(raw.Secret) <= len(secret) {
		t.Fatalf("the store underneath holds %q, not an envelope", raw.Secret)
	}
	got, err := s.GetAlert(ctx, "p", "a")
	if err != nil || !bytes.Equal(got.Secret, secret) {
		t.Fatalf("GetAlert secret = %q, %v", got.Secret, err)
	}
	list, err := s.ListAlerts(ctx, "")
	if err != nil || len(list) != 2 || !bytes.Equal(list[1].Secret, secret) {
		t.Fatalf("ListAlerts = %+v, %v", list, err)
	}
	// Move a's envelope to b underneath the adapter.
	if _, err := s.Store.PutAlert(ctx, &store.PutAlertParams{Project: "p", Name: "b", Spec: spec, ForMs: 60000, Secret: raw.Secret, Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAlert(ctx, "p", "b"); err == nil {
		t.Fatal("a secret moved to another rule opened")
	}
}
