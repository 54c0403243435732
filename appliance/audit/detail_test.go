package audit

import (
	"reflect"
	"strings"
	"testing"
)

// TestDecisionDetailCompactAndOldEntries: new entries write each step as
// a pair; entries written before (an object per step) read the same.
func TestDecisionDetailCompactAndOldEntries(t *testing.T) {
	d := DecisionDetail{Steps: []Step{{"client", "office-vpn (mfa required)"}, {"password", `verified by "local"`}}, Notes: []string{"mfa_not_enrolled"}, NAS: "ap-1", VLAN: 20}
	enc := d.Marshal()
	if want := `{"steps":[["client","office-vpn (mfa required)"],["password","verified by \"local\""]],`; !strings.HasPrefix(enc, want) {
		t.Fatalf("Marshal: got %s, want it to begin %s", enc, want)
	}
	old := `{"steps":[{"stage":"client","result":"office-vpn (mfa required)"},{"stage":"password","result":"verified by \"local\""}],"notes":["mfa_not_enrolled"],"nas":"ap-1","vlan":20}`
	for _, in := range []string{enc, old} {
		got, err := ParseDecisionDetail(in)
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("ParseDecisionDetail(%s): got %+v, %v; want %+v", in, got, err, d)
		}
	}
	if len(enc) >= len(old) {
		t.Errorf("the compact form (%d bytes) is not smaller than the old one (%d)", len(enc), len(old))
	}
	for _, bad := range []string{`{"steps":[["client"]]}`, `{"steps":[["a","b","c"]]}`, `{"steps":[[1,2]]}`} {
		if _, err := ParseDecisionDetail(bad); err == nil {
			t.Errorf("ParseDecisionDetail(%s): no error", bad)
		}
	}
}
