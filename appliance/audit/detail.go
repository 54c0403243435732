package audit

import (
	"encoding/json"
	"fmt"
)

// DecisionDetail is the Detail of a decision entry: the gate's record of
// how it decided, as JSON. The gate writes it; the console and the command
// line read it back to tell a decision's story. This is its only
// declaration, so the writer and the readers cannot drift apart.
type DecisionDetail struct {
	// Steps are the stages the request went through, in order.
	Steps []Step `json:"steps,omitempty"`
	// Notes are reason codes of things worth knowing that did not decide
	// (a relaxed Message-Authenticator, say).
	Notes []string `json:"notes,omitempty"`
	// NAS is the identifier the client gave itself.
	NAS string `json:"nas,omitempty"`
	// VLAN is the VLAN the answer assigned (0: none).
	VLAN int `json:"vlan,omitempty"`
}

// Step is one stage of a decision and what it found.
type Step struct {
	Stage  string `json:"stage"`
	Result string `json:"result"`
}

// MarshalJSON writes a step as ["stage","result"]. Spelling the two keys
// out in every step of every decision was a fifth of an entry's size
// (issue 15: the log grows by every login for six years).
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]string{s.Stage, s.Result})
}

// UnmarshalJSON reads both that and the object entries written before
// it ({"stage":…,"result":…}), which stay in the log as they were hashed.
func (s *Step) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var a []string
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		if len(a) != 2 {
			return fmt.Errorf("audit: a step has %d parts, want 2", len(a))
		}
		s.Stage, s.Result = a[0], a[1]
		return nil
	}
	var o struct {
		Stage  string `json:"stage"`
		Result string `json:"result"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	s.Stage, s.Result = o.Stage, o.Result
	return nil
}

// Marshal encodes d as a decision entry's Detail.
func (d DecisionDetail) Marshal() string {
	b, _ := json.Marshal(d) // plain strings and ints: cannot fail
	return string(b)
}

// ParseDecisionDetail reads a decision entry's Detail. An entry written
// before the detail was JSON (free text) is an error; the caller shows the
// text as it is.
func ParseDecisionDetail(detail string) (DecisionDetail, error) {
	var d DecisionDetail
	err := json.Unmarshal([]byte(detail), &d)
	return d, err
}
