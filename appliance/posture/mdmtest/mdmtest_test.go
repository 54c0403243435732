package mdmtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func do(t *testing.T, method, u, token string, form url.Values) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestGraphRefusesWhatGraphRefuses: a token request without the
// /.default scope, a list without a token, and a $skiptoken Graph never
// issued are refused in Microsoft's shapes.
func TestGraphRefusesWhatGraphRefuses(t *testing.T) {
	g := NewGraph("t1", "c1", "s1", []GraphDevice{{ID: "a"}, {ID: "b"}})
	defer g.Close()
	g.PageSize = 1
	st, m := do(t, "POST", g.URL+"/t1/oauth2/v2.0/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"c1"}, "client_secret": {"s1"}})
	if st != 400 || m["error"] != "invalid_scope" {
		t.Errorf("no scope: got %d %v", st, m)
	}
	st, m = do(t, "POST", g.URL+"/t2/oauth2/v2.0/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"c1"}, "client_secret": {"s1"}, "scope": {"https://graph.microsoft.com/.default"}})
	if st != 400 || !strings.Contains(m["error_description"].(string), "AADSTS90002") {
		t.Errorf("unknown tenant: got %d %v", st, m)
	}
	st, m = do(t, "GET", g.URL+"/v1.0/deviceManagement/managedDevices", "", nil)
	if e, _ := m["error"].(map[string]any); st != 401 || e["code"] != "InvalidAuthenticationToken" {
		t.Errorf("no token: got %d %v", st, m)
	}
	_, m = do(t, "POST", g.URL+"/t1/oauth2/v2.0/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"c1"}, "client_secret": {"s1"}, "scope": {"https://graph.microsoft.com/.default"}})
	tok, _ := m["access_token"].(string)
	st, m = do(t, "GET", g.URL+"/v1.0/deviceManagement/managedDevices", tok, nil)
	if next, _ := m["@odata.nextLink"].(string); st != 200 || !strings.Contains(next, "skiptoken") {
		t.Fatalf("first page: got %d %v", st, m)
	}
	st, _ = do(t, "GET", g.URL+"/v1.0/deviceManagement/managedDevices?$skiptoken=forged", tok, nil)
	if st != 400 {
		t.Errorf("forged $skiptoken: got %d, want 400", st)
	}
}

// TestJamfRefusesWhatJamfRefuses: a wrong secret, a section Jamf does not
// know, a request without a token.
func TestJamfRefusesWhatJamfRefuses(t *testing.T) {
	j := NewJamf("c", "s", nil)
	defer j.Close()
	st, m := do(t, "POST", j.URL+"/api/oauth/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"x"}})
	if st != 401 || m["error"] != "invalid_client" {
		t.Errorf("wrong secret: got %d %v", st, m)
	}
	st, m = do(t, "GET", j.URL+"/api/v1/computers-inventory", "", nil)
	if st != 401 || m["httpStatus"] != float64(401) {
		t.Errorf("no token: got %d %v", st, m)
	}
	_, m = do(t, "POST", j.URL+"/api/oauth/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"s"}})
	tok, _ := m["access_token"].(string)
	if st, _ = do(t, "GET", j.URL+"/api/v1/computers-inventory?section=FIREWALL", tok, nil); st != 400 {
		t.Errorf("unknown section: got %d, want 400", st)
	}
}

// TestGoogleRefusesWhatGoogleRefuses: an unsigned assertion, a list for
// another customer, a page token from another query.
func TestGoogleRefusesWhatGoogleRefuses(t *testing.T) {
	g := NewGoogle("C1", "sa@p.iam.gserviceaccount.com", []string{"admin@x"}, []GoogleDevice{{ID: "1"}, {ID: "2"}})
	defer g.Close()
	st, m := do(t, "POST", g.URL+"/token", "", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"e30.e30.AAAA"}})
	if st != 400 || m["error"] != "invalid_grant" {
		t.Errorf("unsigned JWT: got %d %v", st, m)
	}
	tok := g.issue(g.TokenLife)
	st, m = do(t, "GET", g.URL+"/v1/devices?customer=customers/C2", tok, nil)
	if e, _ := m["error"].(map[string]any); st != 403 || e["status"] != "PERMISSION_DENIED" {
		t.Errorf("other customer: got %d %v", st, m)
	}
	_, m = do(t, "GET", g.URL+"/v1/devices?customer=customers/C1&pageSize=1", tok, nil)
	next, _ := m["nextPageToken"].(string)
	if next == "" {
		t.Fatalf("no nextPageToken: %v", m)
	}
	if st, _ = do(t, "GET", g.URL+"/v1/devices?customer=customers/C1&pageSize=2&pageToken="+next, tok, nil); st != 400 {
		t.Errorf("page token with other parameters: got %d, want 400", st)
	}
	if st, _ = do(t, "GET", g.URL+"/v1/devices?customer=customers/C1&pageSize=1&pageToken="+next, tok, nil); st != 200 {
		t.Errorf("page token as issued: got %d, want 200", st)
	}
}
