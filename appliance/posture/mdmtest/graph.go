package mdmtest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GraphDevice is an Intune managed device as Graph describes it
// (learn.microsoft.com/graph/api/resources/intune-devices-manageddevice,
// "managedDevice resource type").
type GraphDevice struct {
	ID                 string
	DeviceName         string
	SerialNumber       string
	UserPrincipalName  string
	ComplianceState    string // compliant, noncompliant, inGracePeriod, conflict, error, unknown, configManager
	IsEncrypted        bool
	LastSyncDateTime   time.Time
	WiFiMacAddress     string
	EthernetMacAddress string
	AzureADDeviceID    string
}

func (d GraphDevice) fields(withEthernet bool) map[string]any {
	m := map[string]any{
		"@odata.type": "#microsoft.graph.managedDevice",
		"id":          d.ID, "deviceName": d.DeviceName, "serialNumber": d.SerialNumber,
		"userPrincipalName": d.UserPrincipalName, "complianceState": d.ComplianceState,
		"isEncrypted": d.IsEncrypted, "lastSyncDateTime": d.LastSyncDateTime.UTC().Format(time.RFC3339),
		"wiFiMacAddress": d.WiFiMacAddress, "azureADDeviceId": d.AzureADDeviceID,
		// Lists leave the Ethernet MAC out; a single device carries it.
		"ethernetMacAddress": nil,
	}
	if withEthernet {
		m["ethernetMacAddress"] = d.EthernetMacAddress
	}
	return m
}

// Graph stands in for the Microsoft identity platform's token endpoint and
// Microsoft Graph's Intune managed devices, on one httptest server (both
// base URLs are its URL). The contract, from Microsoft's docs:
//
//   - "Microsoft identity platform and the OAuth 2.0 client credentials
//     flow" (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
//     POST /{tenant}/oauth2/v2.0/token, form client_id, scope (the
//     resource's /.default), client_secret, grant_type=client_credentials;
//     200 {"token_type":"Bearer","expires_in","ext_expires_in","access_token"};
//     errors 400/401 {"error","error_description","error_codes",...}
//     (invalid_scope, invalid_client, unsupported_grant_type, AADSTS90002
//     for an unknown tenant).
//   - "List managedDevices" (learn.microsoft.com/graph/api/intune-devices-manageddevice-list):
//     GET /v1.0/deviceManagement/managedDevices, Authorization: Bearer;
//     200 {"value":[...]} with "@odata.nextLink" while more remain
//     ("Paging Microsoft Graph data in your app", learn.microsoft.com/graph/paging:
//     follow the link as given; its $skiptoken is opaque). $select
//     narrows the fields; lists return ethernetMacAddress as null.
//   - "Get managedDevice" (learn.microsoft.com/graph/api/intune-devices-manageddevice-get):
//     GET /v1.0/deviceManagement/managedDevices/{id}.
//   - "Microsoft Graph error responses and resource types"
//     (learn.microsoft.com/graph/errors): {"error":{"code","message","innerError"}};
//     401 InvalidAuthenticationToken for a missing, bad or expired token.
//   - "Microsoft Graph throttling guidance" (learn.microsoft.com/graph/throttling):
//     429 Too Many Requests with Retry-After in seconds.
type Graph struct {
	*httptest.Server
	Tenant, ClientID, Secret string
	// PageSize of list pages (default 100).
	PageSize int
	// TokenLife is issued tokens' lifetime (default 1 h).
	TokenLife time.Duration

	mu      sync.Mutex
	devices []GraphDevice
	skips   map[string]int // issued $skiptoken → offset
	base
}

// NewGraph starts a stand-in holding devs; it is closed at the test's end
// by the caller (t.Cleanup(g.Close)).
func NewGraph(tenant, clientID, secret string, devs []GraphDevice) *Graph {
	g := &Graph{Tenant: tenant, ClientID: clientID, Secret: secret, PageSize: 100, TokenLife: time.Hour, devices: devs, skips: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", g.token)
	mux.HandleFunc("GET /v1.0/deviceManagement/managedDevices", g.list)
	mux.HandleFunc("GET /v1.0/deviceManagement/managedDevices/{id}", g.get)
	g.Server = httptest.NewServer(mux)
	return g
}

// SetDevices replaces what the MDM lists.
func (g *Graph) SetDevices(devs []GraphDevice) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.devices = devs
}

// Error writes Graph's error shape.
func (g *Graph) Error(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": nonce()}}})
}

// Throttle writes Graph's 429 with Retry-After.
func (g *Graph) Throttle(w http.ResponseWriter, seconds int) {
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	g.Error(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests from Identifier under category: throttle.intune. Please try again later.")
}

func tokenError(w http.ResponseWriter, status int, code, aadsts, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": aadsts + ": " + desc,
		"error_codes": []int{atoi(strings.TrimPrefix(aadsts, "AADSTS"))}, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id": nonce(), "correlation_id": nonce()})
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func (g *Graph) token(w http.ResponseWriter, r *http.Request) {
	if g.intercept(w, r, "token") {
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, 400, "invalid_request", "AADSTS900144", "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	switch {
	case r.PathValue("tenant") != g.Tenant:
		tokenError(w, 400, "invalid_request", "AADSTS90002", "Tenant '"+r.PathValue("tenant")+"' not found.")
	case f.Get("grant_type") != "client_credentials":
		tokenError(w, 400, "unsupported_grant_type", "AADSTS70003", "The app requested an unsupported grant type.")
	case f.Get("scope") != "https://graph.microsoft.com/.default":
		tokenError(w, 400, "invalid_scope", "AADSTS1002012", "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
	case f.Get("client_id") != g.ClientID:
		tokenError(w, 400, "unauthorized_client", "AADSTS700016", "Application with identifier '"+f.Get("client_id")+"' was not found in the directory.")
	case f.Get("client_secret") != g.Secret:
		tokenError(w, 401, "invalid_client", "AADSTS7000215", "Invalid client secret provided.")
	default:
		life := int(g.TokenLife / time.Second)
		writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": g.issue(g.TokenLife)})
	}
}

func (g *Graph) authorized(w http.ResponseWriter, r *http.Request) bool {
	ok, expired := g.check(r)
	switch {
	case expired:
		g.Error(w, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
	case !ok:
		g.Error(w, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
	}
	return ok
}

func selected(q url.Values) map[string]bool {
	sel := q.Get("$select")
	if sel == "" {
		return nil
	}
	m := map[string]bool{"@odata.type": true}
	for _, f := range strings.Split(sel, ",") {
		m[strings.TrimSpace(f)] = true
	}
	return m
}

func project(m map[string]any, sel map[string]bool) map[string]any {
	if sel == nil {
		return m
	}
	out := map[string]any{}
	for k, v := range m {
		if sel[k] {
			out[k] = v
		}
	}
	return out
}

func (g *Graph) list(w http.ResponseWriter, r *http.Request) {
	if g.intercept(w, r, "list") || !g.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	g.mu.Lock()
	defer g.mu.Unlock()
	off := 0
	if s := q.Get("$skiptoken"); s != "" {
		o, ok := g.skips[s]
		if !ok {
			g.Error(w, 400, "BadRequest", "Invalid $skiptoken.")
			return
		}
		off = o
	}
	sel := selected(q)
	end := min(off+g.PageSize, len(g.devices))
	page := make([]map[string]any, 0, end-off)
	for _, d := range g.devices[off:end] {
		page = append(page, project(d.fields(false), sel))
	}
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices", "value": page}
	if end < len(g.devices) {
		tok := nonce()
		g.skips[tok] = end
		next := url.Values{}
		for k, v := range q {
			if k != "$skiptoken" {
				next[k] = v
			}
		}
		next.Set("$skiptoken", tok)
		body["@odata.nextLink"] = g.URL + r.URL.Path + "?" + next.Encode()
	}
	writeJSON(w, 200, body)
}

func (g *Graph) get(w http.ResponseWriter, r *http.Request) {
	if g.intercept(w, r, "get") || !g.authorized(w, r) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.devices {
		if d.ID == r.PathValue("id") {
			writeJSON(w, 200, project(d.fields(true), selected(r.URL.Query())))
			return
		}
	}
	g.Error(w, 404, "ResourceNotFound", "Resource not found")
}
