package mdmtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GoogleDevice is a device of Google endpoint management, as the Cloud
// Identity devices API describes it (cloud.google.com/identity/docs/reference/rest/v1/devices,
// "REST Resource: devices").
type GoogleDevice struct {
	ID               string // the {device} of devices/{device}
	Model, Hostname  string
	SerialNumber     string
	LastSyncTime     time.Time
	WifiMacAddresses []string
	CompromisedState string // COMPROMISED, UNCOMPROMISED, COMPROMISED_STATE_UNSPECIFIED
	EncryptionState  string // ENCRYPTED, NOT_ENCRYPTED, UNSUPPORTED_BY_DEVICE, ENCRYPTION_STATE_UNSPECIFIED
	ManagementState  string // APPROVED, BLOCKED, PENDING, UNPROVISIONED, WIPING, WIPED, MANAGEMENT_STATE_UNSPECIFIED
	UserEmails       []string
}

// Google stands in for Google's OAuth 2.0 token endpoint and the Cloud
// Identity devices API. The contract, from Google's docs:
//
//   - "Using OAuth 2.0 for Server to Server Applications"
//     (developers.google.com/identity/protocols/oauth2/service-account):
//     POST the token URI with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
//     and assertion = an RS256 JWT signed with the service account's key,
//     claims iss (its email), scope, aud (the token URI), exp (at most an
//     hour after iat), iat, and sub (the user it acts as, with domain-wide
//     delegation). 200 {"access_token","expires_in","token_type":"Bearer"};
//     refusals {"error","error_description"}: invalid_grant (bad
//     signature, times), unauthorized_client (delegation does not grant
//     the scope for that client).
//   - "Method: devices.list" (cloud.google.com/identity/docs/reference/rest/v1/devices/list):
//     GET /v1/devices with customer (customers/{id} or customers/my_customer),
//     pageSize (default 20, at most 100, more is coerced), pageToken (from
//     a previous call; every other parameter must match that call);
//     200 {"devices":[...],"nextPageToken"}; scope
//     https://www.googleapis.com/auth/cloud-identity.devices.readonly.
//   - "Method: devices.deviceUsers.list"
//     (cloud.google.com/identity/docs/reference/rest/v1/devices.deviceUsers/list):
//     GET /v1/devices/-/deviceUsers (every device), pageSize default 5, at
//     most 20; 200 {"deviceUsers":[{"name":"devices/{d}/deviceUsers/{u}","userEmail"}],"nextPageToken"}.
//   - "Errors" (cloud.google.com/apis/design/errors):
//     {"error":{"code","message","status"}}, 401 UNAUTHENTICATED,
//     403 PERMISSION_DENIED, 400 INVALID_ARGUMENT, 429 RESOURCE_EXHAUSTED.
type Google struct {
	*httptest.Server
	Customer    string   // the customer id (C0...)
	ClientEmail string   // the service account
	Admins      []string // users domain-wide delegation lets the account act as
	Scopes      []string // scopes delegation grants (default: devices.readonly)
	TokenLife   time.Duration

	key     *rsa.PrivateKey
	mu      sync.Mutex
	devices []GoogleDevice
	pages   map[string]googlePage // issued page tokens
	base
}

type googlePage struct {
	path, customer, size string
	offset               int
}

const devicesScope = "https://www.googleapis.com/auth/cloud-identity.devices.readonly"

// NewGoogle starts a stand-in with a fresh service account key.
func NewGoogle(customer, clientEmail string, admins []string, devs []GoogleDevice) *Google {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	g := &Google{Customer: customer, ClientEmail: clientEmail, Admins: admins, Scopes: []string{devicesScope},
		TokenLife: time.Hour, key: key, devices: devs, pages: map[string]googlePage{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", g.token)
	mux.HandleFunc("GET /v1/devices", g.list)
	mux.HandleFunc("GET /v1/devices/-/deviceUsers", g.users)
	g.Server = httptest.NewServer(mux)
	return g
}

// KeyJSON is the service account's JSON key file, its token_uri this
// stand-in.
func (g *Google) KeyJSON() []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(g.key)
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "clinic-mdm", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": g.ClientEmail, "client_id": "1234567890", "token_uri": g.URL + "/token",
	})
	return b
}

// SetDevices replaces the device list.
func (g *Google) SetDevices(devs []GoogleDevice) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.devices = devs
}

// Error writes Google's error shape.
func (g *Google) Error(w http.ResponseWriter, status int, st, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st}})
}

func (g *Google) token(w http.ResponseWriter, r *http.Request) {
	if g.intercept(w, r, "token") {
		return
	}
	refuse := func(status int, code, desc string) {
		writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		refuse(400, "unsupported_grant_type", "Invalid grant_type: "+r.PostForm.Get("grant_type"))
		return
	}
	claims, ok := g.verify(r.PostForm.Get("assertion"))
	if !ok {
		refuse(400, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	now := time.Now().Unix()
	switch {
	case claims.Iss != g.ClientEmail:
		refuse(401, "invalid_client", "The OAuth client was not found.")
	case claims.Aud != g.URL+"/token":
		refuse(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	case claims.Exp <= now || claims.Iat > now+60 || claims.Exp-claims.Iat > 3600:
		refuse(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	case claims.Scope == "":
		refuse(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
	case !g.delegated(claims.Sub, claims.Scope):
		refuse(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
	default:
		writeJSON(w, 200, map[string]any{"access_token": g.issue(g.TokenLife), "expires_in": int(g.TokenLife / time.Second), "token_type": "Bearer"})
	}
}

type jwtClaims struct {
	Iss, Scope, Aud, Sub string
	Exp, Iat             int64
}

// verify checks an RS256 JWT against the service account's public key.
func (g *Google) verify(assertion string) (jwtClaims, bool) {
	var c jwtClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return c, false
	}
	var head struct {
		Alg string `json:"alg"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &head) != nil || head.Alg != "RS256" {
		return c, false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&g.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return c, false
	}
	var raw struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Sub   string `json:"sub"`
		Exp   int64  `json:"exp"`
		Iat   int64  `json:"iat"`
	}
	if json.Unmarshal(cb, &raw) != nil {
		return c, false
	}
	return jwtClaims{Iss: raw.Iss, Scope: raw.Scope, Aud: raw.Aud, Sub: raw.Sub, Exp: raw.Exp, Iat: raw.Iat}, true
}

// delegated: sub is an admin and every scope asked for is granted.
func (g *Google) delegated(sub, scope string) bool {
	admin := false
	for _, a := range g.Admins {
		admin = admin || a == sub
	}
	if !admin {
		return false
	}
	for _, s := range strings.Fields(scope) {
		granted := false
		for _, ok := range g.Scopes {
			granted = granted || ok == s
		}
		if !granted {
			return false
		}
	}
	return true
}

func (g *Google) authorized(w http.ResponseWriter, r *http.Request) bool {
	ok, _ := g.check(r)
	if !ok {
		g.Error(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
	}
	return ok
}

// paging reads customer, pageSize and pageToken as devices.list and
// deviceUsers.list do; ok false means it answered already.
func (g *Google) paging(w http.ResponseWriter, r *http.Request, def, most int) (offset, size int, ok bool) {
	q := r.URL.Query()
	cust := q.Get("customer")
	if cust != "customers/"+g.Customer && cust != "customers/my_customer" {
		g.Error(w, 403, "PERMISSION_DENIED", "The caller does not have permission")
		return 0, 0, false
	}
	size = def
	if s := q.Get("pageSize"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			g.Error(w, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
			return 0, 0, false
		}
		if n > 0 {
			size = min(n, most)
		}
	}
	if tok := q.Get("pageToken"); tok != "" {
		g.mu.Lock()
		p, issued := g.pages[tok]
		g.mu.Unlock()
		if !issued || p.path != r.URL.Path || p.customer != cust || p.size != q.Get("pageSize") {
			g.Error(w, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
			return 0, 0, false
		}
		offset = p.offset
	}
	return offset, size, true
}

func (g *Google) nextToken(r *http.Request, end int) string {
	q := r.URL.Query()
	tok := nonce()
	g.mu.Lock()
	g.pages[tok] = googlePage{path: r.URL.Path, customer: q.Get("customer"), size: q.Get("pageSize"), offset: end}
	g.mu.Unlock()
	return tok
}

func (g *Google) list(w http.ResponseWriter, r *http.Request) {
	if g.intercept(w, r, "list") || !g.authorized(w, r) {
		return
	}
	off, size, ok := g.paging(w, r, 20, 100)
	if !ok {
		return
	}
	g.mu.Lock()
	all := g.devices
	g.mu.Unlock()
	off = min(off, len(all))
	end := min(off+size, len(all))
	out := make([]map[string]any, 0, end-off)
	for _, d := range all[off:end] {
		out = append(out, map[string]any{
			"name": "devices/" + d.ID, "model": d.Model, "hostname": d.Hostname, "serialNumber": d.SerialNumber,
			"lastSyncTime": d.LastSyncTime.UTC().Format(time.RFC3339Nano), "wifiMacAddresses": d.WifiMacAddresses,
			"compromisedState": d.CompromisedState, "encryptionState": d.EncryptionState, "managementState": d.ManagementState,
			"ownerType": "COMPANY", "deviceType": "MAC_OS",
		})
	}
	body := map[string]any{"devices": out}
	if end < len(all) {
		body["nextPageToken"] = g.nextToken(r, end)
	}
	writeJSON(w, 200, body)
}

func (g *Google) users(w http.ResponseWriter, r *http.Request) {
	if g.intercept(w, r, "users") || !g.authorized(w, r) {
		return
	}
	off, size, ok := g.paging(w, r, 5, 20)
	if !ok {
		return
	}
	type du struct{ dev, email string }
	g.mu.Lock()
	var all []du
	for _, d := range g.devices {
		for _, e := range d.UserEmails {
			all = append(all, du{d.ID, e})
		}
	}
	g.mu.Unlock()
	off = min(off, len(all))
	end := min(off+size, len(all))
	out := make([]map[string]any, 0, end-off)
	for i, u := range all[off:end] {
		out = append(out, map[string]any{"name": "devices/" + u.dev + "/deviceUsers/" + url.PathEscape(strconv.Itoa(off+i)),
			"userEmail": u.email, "managementState": "APPROVED", "compromisedState": "UNCOMPROMISED"})
	}
	body := map[string]any{"deviceUsers": out}
	if end < len(all) {
		body["nextPageToken"] = g.nextToken(r, end)
	}
	writeJSON(w, 200, body)
}
