package admin

import (
	"slices"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestDisablingAUserQueuesItsSessionsEnd: a disable (and a delete) writes
// a user_disabled event with the change; enabling does not, nor does
// disabling twice.
func TestDisablingAUserQueuesItsSessionsEnd(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	for _, n := range []string{"alice", "bob"} {
		if err := s.AddUser(ctx, NewUser{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	yes, no := true, false
	for _, e := range []UserEdit{{Disabled: &yes}, {Disabled: &yes}, {Disabled: &no}} {
		if err := s.EditUser(ctx, "alice", e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	evs, err := s.PostureEvents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Kind+":"+e.UserName)
	}
	if want := []string{"user_disabled:bob", "user_disabled:alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}
}

// TestRevokingACertQueuesItsDevicesSessionsEnd: the event carries the
// certificate's devices' MACs and the user it is registered to.
func TestRevokingACertQueuesItsDevicesSessionsEnd(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	if err := s.AddUser(ctx, NewUser{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterCert(ctx, "alice", testFingerprint); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err := s.Store.WithTx(ctx, func(tx *store.Tx) error {
		id, err := tx.PutDevice(ctx, store.Device{Source: store.SourceCert, SourceID: "laptop-1", MACs: []string{"02:00:00:00:00:01"}}, now)
		if err != nil {
			return err
		}
		return tx.AddDeviceCert(ctx, id, store.DeviceCert{Fingerprint: testFingerprint, Serial: "1f"}, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeCert(ctx, testFingerprint, "laptop stolen"); err != nil {
		t.Fatal(err)
	}
	evs, err := s.PostureEvents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != store.EventCertRevoked || evs[0].UserName != "alice" || !slices.Equal(evs[0].MACs, []string{"02:00:00:00:00:01"}) || evs[0].DeviceID == 0 {
		t.Fatalf("got %+v, want one cert_revoked event for alice's 02:00:00:00:00:01", evs)
	}
	// A serial no device or user holds: nothing to reach.
	if _, err := s.RevokeCert(ctx, "abcdef", ""); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.PostureEvents(ctx, 10); len(evs) != 1 {
		t.Errorf("got %d events, want still 1", len(evs))
	}
}
