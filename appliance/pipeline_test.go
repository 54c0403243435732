package appliance

import (
	"context"
	"errors"
	"testing"
)

func TestWalkAcceptsOnlyWhenEveryStagePasses(t *testing.T) {
	passes := stage{"ok", func(_ *Gate, _ context.Context, r *run) (verdict, error) {
		r.step("ok", "passed")
		return pass, nil
	}}
	refuses := stage{"no", func(_ *Gate, _ context.Context, r *run) (verdict, error) {
		r.step("no", "refused")
		return r.refuse(ReasonBadPassword, MsgDenied), nil
	}}
	silent := stage{"silent", func(*Gate, context.Context, *run) (verdict, error) { return stop, nil }}
	// A faulty stage: refuses but says pass.
	confused := stage{"confused", func(_ *Gate, _ context.Context, r *run) (verdict, error) {
		r.refuse(ReasonDisabled, MsgDisabled)
		return pass, nil
	}}
	broken := stage{"broken", func(*Gate, context.Context, *run) (verdict, error) { return pass, errors.New("disk trouble") }}
	never := stage{"never", func(*Gate, context.Context, *run) (verdict, error) {
		t.Fatal("a stage after the decision ran")
		return pass, nil
	}}
	cases := []struct {
		name    string
		stages  []stage
		outcome Outcome
		reason  Reason
		last    Step
		err     bool
	}{
		{"all pass", []stage{passes, passes}, Accept, ReasonOK, Step{"ok", "passed"}, false},
		{"refused", []stage{passes, refuses, never}, Reject, ReasonBadPassword, Step{"no", "refused"}, false},
		{"stopped without a word", []stage{passes, silent, never}, Reject, ReasonInternal, Step{"silent", "stopped"}, false},
		{"refused yet said pass", []stage{confused, passes, never}, Reject, ReasonDisabled, Step{"confused", "stopped"}, false},
		{"error", []stage{passes, broken, never}, Reject, ReasonInternal, Step{"ok", "passed"}, true},
		{"no stages", nil, Accept, ReasonOK, Step{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decision{Outcome: Reject, Reason: ReasonInternal, Message: MsgDenied}
			r := &run{req: &Request{}, d: &d}
			err := (&Gate{}).walk(t.Context(), r, tc.stages)
			if (err != nil) != tc.err {
				t.Fatalf("got error %v, want one: %v", err, tc.err)
			}
			var last Step
			if len(d.Steps) > 0 {
				last = d.Steps[len(d.Steps)-1]
			}
			if d.Outcome != tc.outcome || d.Reason != tc.reason || last != tc.last {
				t.Fatalf("got %s/%s, last step %v; want %s/%s, %v", d.Outcome, d.Reason, last, tc.outcome, tc.reason, tc.last)
			}
		})
	}
}
