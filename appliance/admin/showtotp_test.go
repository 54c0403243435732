package admin

import (
	"errors"
	"testing"
)

// ShowTOTP gives the enrolment again until a code of it was accepted,
// audits each showing, and never shows a confirmed seed.
func TestShowTOTPUntilFirstCode(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	if err := s.AddUser(ctx, NewUser{Name: "dr.lee"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ShowTOTP(ctx, "dr.lee"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no enrolment: %v, want a refusal", err)
	}
	e, err := s.EnrollTOTP(ctx, "dr.lee")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.ShowTOTP(ctx, "dr.lee")
	if err != nil || again != e {
		t.Fatalf("shown again %+v (%v), want %+v", again, err, e)
	}
	rows, err := s.AuditTail(ctx, "dr.lee", 5)
	if err != nil || len(rows) == 0 || rows[len(rows)-1].Reason != "mfa_show" {
		t.Fatalf("the showing is not audited: %+v %v", rows, err)
	}
	u, err := s.Store.UserByName(ctx, "dr.lee")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Store.ConsumeTOTPStep(ctx, u.ID, 1000); !ok || err != nil {
		t.Fatalf("consume: %v %v", ok, err)
	}
	if _, err := s.ShowTOTP(ctx, "dr.lee"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("after the first code: %v, want a refusal", err)
	}
}
