package tui

import (
	"fmt"

	"github.com/clinicgate/clinicgate/appliance/audit"
)

// decisionStory reads a decision's detail (the steps the gate recorded).
func decisionStory(detail string) (steps, notes []string) {
	d, err := audit.ParseDecisionDetail(detail)
	if err != nil {
		return []string{detail}, nil
	}
	return storySteps(d.Steps), d.Notes
}

// storySteps lays the steps out one a line, stage then result.
func storySteps(s []audit.Step) []string {
	out := make([]string, 0, len(s))
	for _, st := range s {
		out = append(out, fmt.Sprintf("%-10s %s", st.Stage, st.Result))
	}
	return out
}
