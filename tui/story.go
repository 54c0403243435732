package tui

import (
	"encoding/json"
	"fmt"
)

// decisionStory reads a decision's detail (the steps the gate recorded).
func decisionStory(detail string) (steps, notes []string) {
	var d struct {
		Steps []struct {
			Stage  string `json:"stage"`
			Result string `json:"result"`
		} `json:"steps"`
		Notes []string `json:"notes"`
	}
	if json.Unmarshal([]byte(detail), &d) != nil {
		return []string{detail}, nil
	}
	for _, s := range d.Steps {
		steps = append(steps, fmt.Sprintf("%-10s %s", s.Stage, s.Result))
	}
	return steps, d.Notes
}
