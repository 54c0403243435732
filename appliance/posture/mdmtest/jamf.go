package mdmtest

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"time"
)

// JamfComputer is a computer of the Jamf Pro inventory, with the fields of
// the sections the connector reads.
type JamfComputer struct {
	ID              int
	Name            string
	LastContact     time.Time
	Serial          string
	MAC, AltMAC     string
	FileVaultState  string // partitionFileVault2State: ENCRYPTED, UNENCRYPTED, ENCRYPTING, …
	FirewallEnabled *bool
	OSVersion       string
	Username, Email string
}

// jamfSections are the section values the Jamf Pro API accepts for
// computers-inventory (Jamf Pro API reference, "Return paginated Computer
// Inventory records", developer.jamf.com/jamf-pro/reference/get_v1-computers-inventory).
var jamfSections = map[string]bool{
	"ALL": true, "GENERAL": true, "DISK_ENCRYPTION": true, "PURCHASING": true, "APPLICATIONS": true, "STORAGE": true,
	"USER_AND_LOCATION": true, "CONFIGURATION_PROFILES": true, "PRINTERS": true, "SERVICES": true, "HARDWARE": true,
	"LOCAL_USER_ACCOUNTS": true, "CERTIFICATES": true, "ATTACHMENTS": true, "PLUGINS": true, "PACKAGE_RECEIPTS": true,
	"FONTS": true, "SECURITY": true, "OPERATING_SYSTEM": true, "LICENSED_SOFTWARE": true, "IBEACONS": true,
	"SOFTWARE_UPDATES": true, "EXTENSION_ATTRIBUTES": true, "CONTENT_CACHING": true, "GROUP_MEMBERSHIPS": true,
}

// Jamf stands in for a Jamf Pro server. The contract, from Jamf's docs:
//
//   - "Client Credentials" (developer.jamf.com/jamf-pro/docs/client-credentials):
//     POST /api/oauth/token, form grant_type=client_credentials, client_id,
//     client_secret; 200 {"access_token","scope","token_type":"Bearer","expires_in"};
//     a refused client gets OAuth 2.0's error body (RFC 6749 §5.2,
//     {"error":"invalid_client"}).
//   - "Return paginated Computer Inventory records"
//     (developer.jamf.com/jamf-pro/reference/get_v1-computers-inventory):
//     GET /api/v1/computers-inventory with section (repeated), page
//     (from 0), page-size (default 100), sort; 200 {"totalCount","results"};
//     only the sections asked for are filled, the others null.
//   - "Get the membership of a Smart Computer Group"
//     (developer.jamf.com/jamf-pro/reference/get_v2-computer-groups-smart-group-membership-id):
//     GET /api/v2/computer-groups/smart-group-membership/{id}; 200 {"members":[ids]}.
//   - "Jamf Pro API Overview" (developer.jamf.com/jamf-pro/docs/jamf-pro-api-overview):
//     a bearer token in Authorization on every request; errors are
//     {"httpStatus","errors":[{"code","description","id","field"}]} (the
//     API's ApiError schema), 401 for a missing or expired token.
type Jamf struct {
	*httptest.Server
	ClientID, Secret string
	TokenLife        time.Duration

	mu        sync.Mutex
	computers []JamfComputer
	groups    map[string][]int
	base
}

// NewJamf starts a stand-in holding computers.
func NewJamf(clientID, secret string, computers []JamfComputer) *Jamf {
	j := &Jamf{ClientID: clientID, Secret: secret, TokenLife: 20 * time.Minute, computers: computers, groups: map[string][]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/oauth/token", j.token)
	mux.HandleFunc("GET /api/v1/computers-inventory", j.list)
	mux.HandleFunc("GET /api/v2/computer-groups/smart-group-membership/{id}", j.members)
	j.Server = httptest.NewServer(mux)
	return j
}

// SetComputers replaces the inventory.
func (j *Jamf) SetComputers(cs []JamfComputer) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.computers = cs
}

// SetSmartGroup sets a smart computer group's members.
func (j *Jamf) SetSmartGroup(id string, members []int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.groups[id] = members
}

// Error writes the Jamf Pro API's error shape.
func (j *Jamf) Error(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"httpStatus": status, "errors": []map[string]any{{"code": code, "description": desc, "id": "0", "field": nil}}})
}

func (j *Jamf) token(w http.ResponseWriter, r *http.Request) {
	if j.intercept(w, r, "token") {
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	if r.PostForm.Get("client_id") != j.ClientID || r.PostForm.Get("client_secret") != j.Secret {
		writeJSON(w, 401, map[string]any{"error": "invalid_client"})
		return
	}
	writeJSON(w, 200, map[string]any{"access_token": j.issue(j.TokenLife), "scope": "api-role:1", "token_type": "Bearer", "expires_in": int(j.TokenLife / time.Second)})
}

func (j *Jamf) authorized(w http.ResponseWriter, r *http.Request) bool {
	ok, _ := j.check(r)
	if !ok {
		j.Error(w, 401, "INVALID_TOKEN", "Unauthorized")
	}
	return ok
}

func (j *Jamf) list(w http.ResponseWriter, r *http.Request) {
	if j.intercept(w, r, "list") || !j.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	want := map[string]bool{}
	for _, s := range q["section"] {
		if !jamfSections[s] {
			j.Error(w, 400, "INVALID_FIELD", "Invalid section: "+s)
			return
		}
		want[s] = true
	}
	if len(want) == 0 {
		want["GENERAL"] = true // the documented default
	}
	page, size := 0, 100
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			j.Error(w, 400, "INVALID_FIELD", "page must be a number from 0")
			return
		}
		page = n
	}
	if s := q.Get("page-size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			j.Error(w, 400, "INVALID_FIELD", "page-size must be a positive number")
			return
		}
		size = n
	}
	j.mu.Lock()
	all := append([]JamfComputer(nil), j.computers...)
	j.mu.Unlock()
	if q.Get("sort") == "id:asc" {
		sort.SliceStable(all, func(a, b int) bool { return all[a].ID < all[b].ID })
	}
	start := min(page*size, len(all))
	end := min(start+size, len(all))
	results := make([]map[string]any, 0, end-start)
	for _, c := range all[start:end] {
		results = append(results, c.record(want))
	}
	writeJSON(w, 200, map[string]any{"totalCount": len(all), "results": results})
}

func (c JamfComputer) record(want map[string]bool) map[string]any {
	sec := func(name string, v map[string]any) any {
		if want["ALL"] || want[name] {
			return v
		}
		return nil
	}
	var fw any
	if c.FirewallEnabled != nil {
		fw = *c.FirewallEnabled
	}
	return map[string]any{
		"id": strconv.Itoa(c.ID), "udid": "udid-" + strconv.Itoa(c.ID),
		"general": sec("GENERAL", map[string]any{"name": c.Name, "lastContactTime": c.LastContact.UTC().Format(time.RFC3339),
			"remoteManagement": map[string]any{"managed": true}}),
		"hardware": sec("HARDWARE", map[string]any{"serialNumber": c.Serial, "macAddress": c.MAC, "altMacAddress": c.AltMAC}),
		"diskEncryption": sec("DISK_ENCRYPTION", map[string]any{"bootPartitionEncryptionDetails": map[string]any{
			"partitionName": "Macintosh HD", "partitionFileVault2State": c.FileVaultState, "partitionFileVault2Percent": 100}}),
		"security":        sec("SECURITY", map[string]any{"firewallEnabled": fw, "sipStatus": "ENABLED"}),
		"operatingSystem": sec("OPERATING_SYSTEM", map[string]any{"name": "macOS", "version": c.OSVersion}),
		"userAndLocation": sec("USER_AND_LOCATION", map[string]any{"username": c.Username, "email": c.Email}),
	}
}

func (j *Jamf) members(w http.ResponseWriter, r *http.Request) {
	if j.intercept(w, r, "members") || !j.authorized(w, r) {
		return
	}
	j.mu.Lock()
	m, ok := j.groups[r.PathValue("id")]
	j.mu.Unlock()
	if !ok {
		j.Error(w, 404, "NOT_FOUND", "Smart Computer Group not found")
		return
	}
	writeJSON(w, 200, map[string]any{"members": append([]int{}, m...)})
}
