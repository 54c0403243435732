package mfatest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// DuoUser is a user of the stand-in's Duo account.
type DuoUser struct {
	// Preauth overrides preauth's result: "" is auth when the user has a
	// push device, enroll otherwise; "allow" (bypass), "deny" (locked out).
	Preauth string
	// Push: the user has Duo Mobile activated for push.
	Push bool
	// Passcodes the user may type (each good once), as Duo Mobile or a
	// hardware token would make them.
	Passcodes []string
	// VerifiedPush: the push asks the user to type a code shown at login
	// (Verified Duo Push); auth_status's status_msg carries the code.
	VerifiedPush string
}

// Duo stands in for Duo's Auth API v2. The contract, from Duo's docs
// (duo.com/docs/authapi):
//
//   - "Request Authentication" (duo.com/docs/authapi#authentication): every
//     request carries a Date header (RFC 2822) and HTTP Basic
//     Authorization whose user is the integration key and whose password
//     is the hex HMAC-SHA512, keyed by the secret key, of the canonical
//     request: the Date, the method in upper case, the host in lower
//     case, the path, and the parameters (from the query for GET, the
//     x-www-form-urlencoded body for POST) sorted by name, URL-encoded
//     (RFC 3986; a space is %20), joined with "&" — the five lines joined
//     with "\n". A missing or wrong signature is HTTP 401 with
//     {"stat":"FAIL","code":40101|40103,"message":…}; 40103 is "Invalid
//     signature in request credentials" (Duo community, "Authorization
//     signature for API requests"). A Date more than five minutes off is
//     refused too (our 401, code 40105; Duo documents the skew rule, the
//     code is ours).
//   - "Response Format": {"stat":"OK","response":{…}}, or stat FAIL with
//     code, message and message_detail.
//   - POST /auth/v2/preauth (username): result auth | allow | deny |
//     enroll, status_msg, devices[{device, display_name, name,
//     capabilities: [auto, push, sms, phone, mobile_otp]}].
//   - POST /auth/v2/auth (username, factor=push, device=auto|ID,
//     async=1): {"txid"}; factor=passcode (passcode): synchronous
//     {"result":"allow"|"deny","status","status_msg"}.
//   - GET /auth/v2/auth_status (txid): long-polls for the next status
//     update; result allow | deny | waiting, status pushed | allow | deny |
//     fraud | timeout …, status_msg ("Please enter verification code 708
//     into Duo Mobile..." for a Verified Duo Push).
type Duo struct {
	*httptest.Server
	people
	IKey, SKey string
	// LongPoll caps one auth_status wait (Duo waits for the next change;
	// tests keep it short so the server closes quickly). Default 20 s.
	LongPoll time.Duration

	mu    sync.Mutex
	users map[string]*DuoUser
	txns  map[string]*duoTxn
}

type duoTxn struct {
	user     string
	answer   Answer
	sent     time.Time
	pushed   bool // "pushed" was reported
	verified string
}

// NewDuo starts a Duo stand-in on a TLS server with its own certificate
// (WriteCA gives the ca_file); Host is the provider's api_host.
func NewDuo(ikey, skey string) *Duo {
	d := &Duo{IKey: ikey, SKey: skey, users: map[string]*DuoUser{}, txns: map[string]*duoTxn{}}
	d.Server = httptest.NewTLSServer(http.HandlerFunc(d.serve))
	return d
}

// Host is the stand-in's "api_host": 127.0.0.1:port.
func (d *Duo) Host() string { return d.Listener.Addr().String() }

// SetUser adds or replaces a user.
func (d *Duo) SetUser(name string, u DuoUser) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[name] = &u
}

func duoFail(w http.ResponseWriter, status, code int, msg, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"stat": "FAIL", "code": code, "message": msg}
	if detail != "" {
		body["message_detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(body)
}

func duoOK(w http.ResponseWriter, resp any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"stat": "OK", "response": resp})
}

// duoEscape is RFC 3986 percent-encoding: everything but the unreserved
// characters, a space as %20.
func duoEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// Canonical is the canonical request of Duo's "Request Authentication".
func Canonical(date, method, host, path string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			args = append(args, duoEscape(k)+"="+duoEscape(v))
		}
	}
	return strings.Join([]string{date, strings.ToUpper(method), strings.ToLower(host), path, strings.Join(args, "&")}, "\n")
}

// checkSignature verifies the request's Date and Authorization; false
// means the refusal was written.
func (d *Duo) checkSignature(w http.ResponseWriter, r *http.Request, params url.Values) bool {
	user, sig, ok := r.BasicAuth()
	date := r.Header.Get("Date")
	if !ok || date == "" {
		duoFail(w, http.StatusUnauthorized, 40101, "Missing request credentials", "")
		return false
	}
	t, err := time.Parse(time.RFC1123Z, date)
	if err != nil || time.Since(t) > 5*time.Minute || time.Until(t) > 5*time.Minute {
		duoFail(w, http.StatusUnauthorized, 40105, "Invalid request date", date)
		return false
	}
	mac := hmac.New(sha512.New, []byte(d.SKey))
	mac.Write([]byte(Canonical(date, r.Method, r.Host, r.URL.Path, params)))
	want := hex.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(user), []byte(d.IKey)) != 1 || subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		duoFail(w, http.StatusUnauthorized, 40103, "Invalid signature in request credentials", "")
		return false
	}
	return true
}

// Sign returns the Authorization header a Duo client would send; tests
// use it to make a request with a deliberately wrong key.
func Sign(ikey, skey, date, method, host, path string, params url.Values) string {
	mac := hmac.New(sha512.New, []byte(skey))
	mac.Write([]byte(Canonical(date, method, host, path, params)))
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(ikey+":"+hex.EncodeToString(mac.Sum(nil))))
}

func (d *Duo) serve(w http.ResponseWriter, r *http.Request) {
	kind := map[string]string{"/auth/v2/preauth": "preauth", "/auth/v2/auth": "auth", "/auth/v2/auth_status": "auth_status"}[r.URL.Path]
	if kind == "" {
		duoFail(w, http.StatusNotFound, 40400, "Resource not found", "")
		return
	}
	if d.intercept(w, r, kind) {
		return
	}
	var params url.Values
	switch {
	case r.Method == http.MethodGet && kind == "auth_status":
		params = r.URL.Query()
	case r.Method == http.MethodPost && kind != "auth_status":
		if err := r.ParseForm(); err != nil {
			duoFail(w, http.StatusBadRequest, 40002, "Invalid request parameters", "body")
			return
		}
		params = r.PostForm
	default:
		duoFail(w, http.StatusMethodNotAllowed, 40500, "Method not allowed", "")
		return
	}
	if !d.checkSignature(w, r, params) {
		return
	}
	switch kind {
	case "preauth":
		d.preauth(w, params)
	case "auth":
		d.auth(w, params)
	case "auth_status":
		d.authStatus(w, r, params.Get("txid"))
	}
}

func (d *Duo) user(name string) (DuoUser, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[name]
	if !ok {
		return DuoUser{}, false
	}
	return *u, true
}

func (d *Duo) preauth(w http.ResponseWriter, p url.Values) {
	name := p.Get("username")
	if name == "" {
		duoFail(w, http.StatusBadRequest, 40002, "Invalid request parameters", "username")
		return
	}
	u, ok := d.user(name)
	devices := []map[string]any{}
	if ok && u.Push {
		caps := []string{"auto", "push"}
		if len(u.Passcodes) > 0 {
			caps = append(caps, "mobile_otp")
		}
		devices = append(devices, map[string]any{"device": "DPFZRS9FB0D46QFTM891", "display_name": "iOS (XXX-XXX-0100)", "name": "iPhone", "type": "phone", "capabilities": caps})
	}
	result := u.Preauth
	if result == "" {
		result = "enroll"
		if ok && (u.Push || len(u.Passcodes) > 0) {
			result = "auth"
		}
	}
	msg := map[string]string{"auth": "Account is active", "allow": "Bypass user", "deny": "Locked out", "enroll": "Enroll an authentication device to proceed"}[result]
	resp := map[string]any{"result": result, "status_msg": msg, "devices": devices}
	if result == "enroll" {
		resp["enroll_portal_url"] = "https://" + d.Host() + "/portal?code=48bac5d9393fb2c2"
	}
	duoOK(w, resp)
}

func (d *Duo) auth(w http.ResponseWriter, p url.Values) {
	name, factor := p.Get("username"), p.Get("factor")
	u, ok := d.user(name)
	if name == "" || !ok {
		duoFail(w, http.StatusBadRequest, 40002, "Invalid request parameters", "username")
		return
	}
	switch factor {
	case "push":
		if !u.Push || (p.Get("device") != "auto" && p.Get("device") != "DPFZRS9FB0D46QFTM891") {
			duoFail(w, http.StatusBadRequest, 40002, "Invalid request parameters", "device")
			return
		}
		if p.Get("async") != "1" {
			// A synchronous push would hold this request for up to 60 s;
			// the appliance never asks for one.
			duoFail(w, http.StatusBadRequest, 40002, "Invalid request parameters", "async (the stand-in serves async=1 only)")
			return
		}
		a, sent := d.push(name)
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		txid := hex.EncodeToString(b)
		d.mu.Lock()
		d.txns[txid] = &duoTxn{user: name, answer: a, sent: sent, verified: u.VerifiedPush}
		d.mu.Unlock()
		duoOK(w, map[string]string{"txid": txid})
	case "passcode":
		code := p.Get("passcode")
		d.mu.Lock()
		uu := d.users[name]
		good := false
		for i, c := range uu.Passcodes {
			if subtle.ConstantTimeCompare([]byte(c), []byte(code)) == 1 {
				uu.Passcodes = append(uu.Passcodes[:i:i], uu.Passcodes[i+1:]...)
				good = true
				break
			}
		}
		d.mu.Unlock()
		if good {
			duoOK(w, map[string]string{"result": "allow", "status": "allow", "status_msg": "Success. Logging you in..."})
		} else {
			duoOK(w, map[string]string{"result": "deny", "status": "deny", "status_msg": "Incorrect passcode. Please try again."})
		}
	default:
		duoFail(w, http.StatusBadRequest, 40002, "Invalid request parameters", "factor")
	}
}

func (d *Duo) authStatus(w http.ResponseWriter, r *http.Request, txid string) {
	d.mu.Lock()
	t, ok := d.txns[txid]
	first := ok && !t.pushed
	if ok {
		t.pushed = true
	}
	d.mu.Unlock()
	if !ok {
		duoFail(w, http.StatusBadRequest, 40002, "Invalid request parameters", "txid")
		return
	}
	limit := d.LongPoll
	if limit <= 0 {
		limit = 20 * time.Second
	}
	deadline := time.Now().Add(limit)
	for {
		st := d.state(t.answer, t.sent, time.Now())
		if st != Never || first || !time.Now().Before(deadline) {
			duoOK(w, duoStatus(st, t.verified))
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func duoStatus(st Outcome, verified string) map[string]string {
	switch st {
	case Approve:
		return map[string]string{"result": "allow", "status": "allow", "status_msg": "Success. Logging you in..."}
	case Deny:
		return map[string]string{"result": "deny", "status": "deny", "status_msg": "Login request denied."}
	case Fraud:
		return map[string]string{"result": "deny", "status": "fraud", "status_msg": "Login request reported as fraudulent."}
	case Timeout:
		return map[string]string{"result": "deny", "status": "timeout", "status_msg": "Login timed out."}
	}
	msg := "Pushed a login request to your device..."
	if verified != "" {
		msg = "Please enter verification code " + verified + " into Duo Mobile..."
	}
	return map[string]string{"result": "waiting", "status": "pushed", "status_msg": msg}
}
