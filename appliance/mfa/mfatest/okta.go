package mfatest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// OktaUser is a user of the stand-in's Okta org.
type OktaUser struct {
	Login  string
	Status string // ACTIVE (default), SUSPENDED, LOCKED_OUT, DEPROVISIONED
	// Push: Okta Verify is enrolled for push; TOTP: its code factor, with
	// the codes it will accept (each good once).
	Push bool
	TOTP []string
}

// Okta stands in for an Okta org's Factors API with an API token. The
// contract, from Okta's docs:
//
//   - API tokens (developer.okta.com/docs/guides/create-an-api-token/):
//     "Authorization: SSWS {token}" on every request; a missing or wrong
//     one is 401 with errorCode E0000011 "Invalid token provided".
//   - Errors (developer.okta.com/docs/reference/error-codes/): a JSON body
//     {errorCode, errorSummary, errorLink, errorId, errorCauses}; an
//     unknown user is 404 E0000007 "Not found: Resource not found: … (User)".
//   - Retrieve a user (…/tags/user/other/getuser): GET /api/v1/users/{id or login}.
//   - List all factors (…/tags/userfactor/other/listfactors): GET
//     /api/v1/users/{userId}/factors; each {id, factorType (push,
//     token:software:totp, …), provider (OKTA), status (ACTIVE, …),
//     profile}.
//   - Verify a factor (…/tags/userfactor/other/verifyfactor): POST
//     /api/v1/users/{userId}/factors/{factorId}/verify. For push: 201
//     {factorResult: WAITING, expiresAt, _links: {poll: {href: …/factors/
//     {factorId}/transactions/{transactionId}}, cancel}}; with a number
//     matching challenge the body carries _embedded.challenge.correctAnswer.
//     For token:software:totp with {"passCode"}: 200 {factorResult: SUCCESS},
//     or 403 E0000068 "Invalid Passcode/Answer".
//   - Retrieve a factor transaction status (…/tags/userfactor/other/
//     getfactortransactionstatus): GET the poll link; factorResult
//     WAITING, SUCCESS, REJECTED or TIMEOUT ("The response body for a
//     number matching push challenge … contains the correct answer").
//
// Okta's Factors API has no "fraud" result: a push the user reports is
// REJECTED, so Outcome Fraud answers REJECTED here.
type Okta struct {
	*httptest.Server
	people
	Token string
	// NumberMatching adds a number challenge to every push.
	NumberMatching bool

	mu    sync.Mutex
	users map[string]*OktaUser // by id
	txns  map[string]*oktaTxn
}

type oktaTxn struct {
	user, factor string
	answer       Answer
	sent         time.Time
	number       int
}

// NewOkta starts an Okta stand-in on a TLS server; URL is the org URL.
func NewOkta(token string) *Okta {
	o := &Okta{Token: token, users: map[string]*OktaUser{}, txns: map[string]*oktaTxn{}}
	o.Server = httptest.NewTLSServer(http.HandlerFunc(o.serve))
	return o
}

// SetUser adds or replaces a user; the id is derived from the login.
func (o *Okta) SetUser(u OktaUser) {
	if u.Status == "" {
		u.Status = "ACTIVE"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users[oktaID(u.Login)] = &u
}

func oktaID(login string) string {
	return "00u" + hex.EncodeToString([]byte(login))[:min(17, 2*len(login))]
}

func oktaFail(w http.ResponseWriter, status int, code, summary string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	_ = json.NewEncoder(w).Encode(map[string]any{"errorCode": code, "errorSummary": summary, "errorLink": code,
		"errorId": "oae" + hex.EncodeToString(b), "errorCauses": []any{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (o *Okta) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/users/"), "/")
	if !strings.HasPrefix(r.URL.Path, "/api/v1/users/") || parts[0] == "" {
		oktaFail(w, http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	kind := ""
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		kind = "user"
	case len(parts) == 2 && parts[1] == "factors" && r.Method == http.MethodGet:
		kind = "factors"
	case len(parts) == 4 && parts[1] == "factors" && parts[3] == "verify" && r.Method == http.MethodPost:
		kind = "verify"
	case len(parts) == 5 && parts[1] == "factors" && parts[3] == "transactions" && r.Method == http.MethodGet:
		kind = "poll"
	default:
		oktaFail(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	if o.intercept(w, r, kind) {
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "SSWS ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(o.Token)) != 1 {
		oktaFail(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
		return
	}
	o.mu.Lock()
	u := o.users[parts[0]]
	if u == nil && kind == "user" {
		for _, c := range o.users {
			if strings.EqualFold(c.Login, parts[0]) {
				u = c
			}
		}
	}
	var user OktaUser
	if u != nil {
		user = *u
	}
	o.mu.Unlock()
	if u == nil {
		oktaFail(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+parts[0]+" (User)")
		return
	}
	id := oktaID(user.Login)
	switch kind {
	case "user":
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": user.Status,
			"profile": map[string]string{"login": user.Login}})
	case "factors":
		fs := []map[string]any{}
		if user.Push {
			fs = append(fs, map[string]any{"id": "opf" + id[3:], "factorType": "push", "provider": "OKTA", "status": "ACTIVE",
				"profile": map[string]string{"name": "Pixel 8", "platform": "ANDROID"}})
		}
		if len(user.TOTP) > 0 {
			fs = append(fs, map[string]any{"id": "ost" + id[3:], "factorType": "token:software:totp", "provider": "OKTA", "status": "ACTIVE",
				"profile": map[string]string{"credentialId": user.Login}})
		}
		writeJSON(w, http.StatusOK, fs)
	case "verify":
		o.verify(w, r, id, parts[2], user)
	case "poll":
		o.poll(w, id, parts[2], parts[4])
	}
}

func (o *Okta) verify(w http.ResponseWriter, r *http.Request, id, factor string, user OktaUser) {
	var body struct {
		PassCode                   string `json:"passCode"`
		UseNumberMatchingChallenge bool   `json:"useNumberMatchingChallenge"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			oktaFail(w, http.StatusBadRequest, "E0000003", "The request body was not well-formed.")
			return
		}
	}
	switch {
	case user.Push && factor == "opf"+id[3:]:
		a, sent := o.push(user.Login)
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		tid := "v2mst." + hex.EncodeToString(b)
		t := &oktaTxn{user: id, factor: factor, answer: a, sent: sent}
		if o.NumberMatching {
			n, _ := rand.Int(rand.Reader, big.NewInt(90))
			t.number = int(n.Int64()) + 10
		}
		o.mu.Lock()
		o.txns[tid] = t
		o.mu.Unlock()
		writeJSON(w, http.StatusCreated, o.txnBody(id, factor, tid, t, "WAITING"))
	case len(user.TOTP) > 0 && factor == "ost"+id[3:]:
		o.mu.Lock()
		u := o.users[id]
		good := false
		for i, c := range u.TOTP {
			if body.PassCode != "" && subtle.ConstantTimeCompare([]byte(c), []byte(body.PassCode)) == 1 {
				u.TOTP = append(u.TOTP[:i:i], u.TOTP[i+1:]...)
				good = true
				break
			}
		}
		o.mu.Unlock()
		if !good {
			oktaFail(w, http.StatusForbidden, "E0000068", "Invalid Passcode/Answer")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"factorResult": "SUCCESS"})
	default:
		oktaFail(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+factor+" (UserFactor)")
	}
}

func (o *Okta) txnBody(id, factor, tid string, t *oktaTxn, result string) map[string]any {
	href := o.URL + "/api/v1/users/" + id + "/factors/" + factor + "/transactions/" + tid
	body := map[string]any{
		"expiresAt":    t.sent.Add(5 * time.Minute).UTC().Format("2006-01-02T15:04:05.000Z"),
		"factorResult": result,
		"_links": map[string]any{
			"poll":   map[string]any{"href": href, "hints": map[string][]string{"allow": {"GET"}}},
			"cancel": map[string]any{"href": href, "hints": map[string][]string{"allow": {"DELETE"}}},
		},
	}
	if t.number != 0 && result == "WAITING" {
		body["_embedded"] = map[string]any{"challenge": map[string]int{"correctAnswer": t.number}}
	}
	return body
}

func (o *Okta) poll(w http.ResponseWriter, id, factor, tid string) {
	o.mu.Lock()
	t := o.txns[tid]
	o.mu.Unlock()
	if t == nil || t.user != id || t.factor != factor {
		oktaFail(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+tid+" (Transaction)")
		return
	}
	result := map[Outcome]string{Approve: "SUCCESS", Deny: "REJECTED", Fraud: "REJECTED", Timeout: "TIMEOUT", Never: "WAITING"}[o.state(t.answer, t.sent, time.Now())]
	writeJSON(w, http.StatusOK, o.txnBody(id, factor, tid, t, result))
}
