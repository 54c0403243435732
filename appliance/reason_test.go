package appliance_test

import (
	"os"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance"
)

// TestEveryReasonDocumented: each reason code has its row in the operator's
// table (docs/audit.md), so "what does this code mean?" always has an
// answer.
func TestEveryReasonDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range appliance.Reasons {
		if !strings.Contains(doc, "\n| `"+string(r)+"` | ") {
			t.Errorf("reason %s has no row in docs/audit.md's reason table", r)
		}
	}
}
