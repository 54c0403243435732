package mfa

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// OktaSettings are an Okta org's settings for Okta Verify.
type OktaSettings struct {
	// OrgURL is the org's address (https://clinic.okta.com); the API
	// token (SSWS) is kept sealed beside the settings.
	OrgURL string `json:"org_url"`
	// NumberMatching asks Okta for a number challenge with each push:
	// the number goes in the Access-Challenge for the user to pick on the
	// phone.
	NumberMatching bool `json:"number_matching,omitempty"`
	// CAFile, when set, is a PEM file of the roots to trust for OrgURL
	// instead of the system's: for a TLS-inspecting proxy, and for tests
	// against a stand-in.
	CAFile string `json:"ca_file,omitempty"`
}

// Validate reports what is wrong, in the operator's words.
func (s OktaSettings) Validate() error {
	u, err := url.Parse(s.OrgURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("okta needs the org URL as https://YOUR-ORG.okta.com, not %q", s.OrgURL)
	}
	return nil
}

// Okta is Okta's Factors API with an API token (developer.okta.com/docs/api/
// openapi/okta-management/management/tags/userfactor): find the user
// (GET /api/v1/users/{login}), list their factors (GET
// /api/v1/users/{id}/factors), verify the Okta Verify push factor (POST
// …/factors/{factorId}/verify, 201 with factorResult WAITING and a poll
// link), poll the transaction (GET …/factors/{factorId}/transactions/
// {transactionId}: WAITING, SUCCESS, REJECTED, TIMEOUT), and verify a
// code against the Okta Verify TOTP factor (token:software:totp, body
// {"passCode"}). Plain net/http; the token goes only to the org's host.
type Okta struct {
	base   *url.URL
	token  secrets.Secret
	number bool
	http   *http.Client
}

const oktaTimeout = 10 * time.Second

// NewOkta builds the client; it does not call Okta.
func NewOkta(s OktaSettings, token secrets.Secret) (*Okta, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(token) == 0 {
		return nil, errors.New("okta needs an API token (Security → API → Tokens)")
	}
	u, _ := url.Parse(strings.TrimSuffix(s.OrgURL, "/"))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.MaxIdleConnsPerHost = 64 // a burst of logins costs no TLS handshake each
	if s.CAFile != "" {
		roots, err := loadRoots(s.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	c := &http.Client{Transport: tr, Timeout: oktaTimeout,
		// A redirect could carry the token elsewhere: none is followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Okta{base: u, token: token, number: s.NumberMatching, http: c}, nil
}

// oktaError is the error body of every Okta API error
// (developer.okta.com/docs/reference/error-codes/): errorCode E0000…,
// errorSummary, errorLink, errorId, errorCauses.
type oktaError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
}

// do sends one request to the org and decodes a 2xx body into out. A
// link from an answer (the poll link) is followed only on the org's own
// host and under /api/v1/, so the token never leaves for elsewhere.
func (o *Okta) do(ctx context.Context, method, ref string, body any, out any) (int, error) {
	u, err := o.base.Parse(ref)
	if err != nil || u.Scheme != o.base.Scheme || u.Host != o.base.Host || !strings.HasPrefix(u.Path, "/api/v1/") {
		return 0, fmt.Errorf("okta: link %q is not on the org %s: %w", ref, o.base.Host, ErrBadResponse)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "SSWS "+string(o.token))
	resp, err := o.http.Do(req)
	if err != nil {
		var uae x509.UnknownAuthorityError
		var hve x509.HostnameError
		if errors.As(err, &uae) || errors.As(err, &hve) {
			return 0, fmt.Errorf("okta: the server's certificate is not trusted: %w: %v", ErrBadResponse, err)
		}
		return 0, fmt.Errorf("okta %s: %w: %v", u.Path, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("okta %s: %w: %v", u.Path, ErrUnreachable, err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return resp.StatusCode, fmt.Errorf("okta %s: HTTP %d: %w", u.Path, resp.StatusCode, ErrUnreachable)
	}
	if resp.StatusCode >= 300 {
		var e oktaError
		if json.Unmarshal(b, &e) != nil || e.ErrorCode == "" {
			return resp.StatusCode, fmt.Errorf("okta %s: HTTP %d without an error body: %w", u.Path, resp.StatusCode, ErrBadResponse)
		}
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return resp.StatusCode, fmt.Errorf("okta %s: %s %s: %w", u.Path, e.ErrorCode, e.ErrorSummary, ErrUnknownUser)
		case resp.StatusCode == http.StatusForbidden && e.ErrorCode == "E0000068":
			// "Invalid Passcode/Answer": a wrong code, not a refusal of ours.
			return resp.StatusCode, nil
		case resp.StatusCode == http.StatusUnauthorized:
			return resp.StatusCode, fmt.Errorf("okta: %s %s (check the API token): %w", e.ErrorCode, e.ErrorSummary, ErrRefused)
		}
		return resp.StatusCode, fmt.Errorf("okta %s: %s %s: %w", u.Path, e.ErrorCode, e.ErrorSummary, ErrRefused)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("okta %s: %w: %v", u.Path, ErrBadResponse, err)
		}
	}
	return resp.StatusCode, nil
}

type oktaFactor struct {
	ID         string `json:"id"`
	FactorType string `json:"factorType"`
	Provider   string `json:"provider"`
	Status     string `json:"status"`
	Profile    struct {
		Name string `json:"name"`
	} `json:"profile"`
}

// user finds the user by login and their active Okta Verify factors.
func (o *Okta) user(ctx context.Context, login string) (id, status string, push, totp *oktaFactor, err error) {
	var u struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if _, err = o.do(ctx, "GET", "/api/v1/users/"+url.PathEscape(login), nil, &u); err != nil {
		return
	}
	if u.ID == "" {
		err = fmt.Errorf("okta: a user without an id: %w", ErrBadResponse)
		return
	}
	var fs []oktaFactor
	if _, err = o.do(ctx, "GET", "/api/v1/users/"+url.PathEscape(u.ID)+"/factors", nil, &fs); err != nil {
		return
	}
	for i := range fs {
		f := &fs[i]
		if f.Provider != "OKTA" || f.Status != "ACTIVE" {
			continue
		}
		switch f.FactorType {
		case "push":
			if push == nil {
				push = f
			}
		case "token:software:totp":
			if totp == nil {
				totp = f
			}
		}
	}
	return u.ID, u.Status, push, totp, nil
}

// Preauth maps Okta's answers onto Duo's results: an unknown user or one
// without an active Okta Verify factor is enroll; a user who is not
// ACTIVE (suspended, locked out, deprovisioned) is deny.
func (o *Okta) Preauth(ctx context.Context, login, _ string) (Preauth, error) {
	_, status, push, totp, err := o.user(ctx, login)
	if errors.Is(err, ErrUnknownUser) {
		return Preauth{Result: PreauthEnroll, Message: "no such user in the Okta org"}, nil
	}
	if err != nil {
		return Preauth{}, err
	}
	if status != "ACTIVE" && status != "PASSWORD_EXPIRED" {
		return Preauth{Result: PreauthDeny, Message: "Okta user status " + status}, nil
	}
	if push == nil && totp == nil {
		return Preauth{Result: PreauthEnroll, Message: "no active Okta Verify factor"}, nil
	}
	p := Preauth{Result: PreauthAuth, Push: push != nil, Passcode: totp != nil}
	if push != nil {
		p.Device = push.Profile.Name
	}
	return p, nil
}

// oktaTxn is the verify and poll answers: factorResult, the poll link
// and, with a number challenge, _embedded.challenge.correctAnswer.
type oktaTxn struct {
	FactorResult string `json:"factorResult"`
	Links        struct {
		Poll struct {
			Href string `json:"href"`
		} `json:"poll"`
	} `json:"_links"`
	Embedded struct {
		Challenge struct {
			CorrectAnswer *int `json:"correctAnswer"`
		} `json:"challenge"`
	} `json:"_embedded"`
}

// StartPush verifies the push factor: 201, factorResult WAITING, and the
// transaction's poll link.
func (o *Okta) StartPush(ctx context.Context, login string, _ PushInfo) (Push, error) {
	id, _, push, _, err := o.user(ctx, login)
	if err != nil {
		return Push{}, err
	}
	if push == nil {
		return Push{}, fmt.Errorf("okta: no active push factor: %w", ErrUnknownUser)
	}
	var body any = struct{}{}
	if o.number {
		body = map[string]bool{"useNumberMatchingChallenge": true}
	}
	var t oktaTxn
	code, err := o.do(ctx, "POST", "/api/v1/users/"+url.PathEscape(id)+"/factors/"+url.PathEscape(push.ID)+"/verify", body, &t)
	if err != nil {
		return Push{}, err
	}
	if code != http.StatusCreated || t.FactorResult != "WAITING" || t.Links.Poll.Href == "" {
		return Push{}, fmt.Errorf("okta verify push: HTTP %d, factorResult %q, poll link %q: %w", code, t.FactorResult, t.Links.Poll.Href, ErrBadResponse)
	}
	p := Push{ID: t.Links.Poll.Href[strings.LastIndexByte(t.Links.Poll.Href, '/')+1:], Poll: t.Links.Poll.Href, Device: push.Profile.Name}
	if a := t.Embedded.Challenge.CorrectAnswer; a != nil {
		p.Number = strconv.Itoa(*a)
	}
	return p, nil
}

// oktaPollEvery is how often a waiting transaction is polled: Okta's
// poll answers at once, so the wait is ours.
const oktaPollEvery = time.Second

// Poll asks the transaction's poll link once a second until its result
// changes from WAITING or ctx ends.
func (o *Okta) Poll(ctx context.Context, p Push) (PushResult, error) {
	for {
		var t oktaTxn
		if _, err := o.do(ctx, "GET", p.Poll, nil, &t); err != nil {
			return PushResult{}, err
		}
		r := PushResult{Detail: "factorResult " + t.FactorResult}
		if a := t.Embedded.Challenge.CorrectAnswer; a != nil {
			r.Number = strconv.Itoa(*a)
		}
		switch t.FactorResult {
		case "SUCCESS":
			r.Status = StatusApproved
		case "REJECTED":
			r.Status = StatusDenied
		case "TIMEOUT":
			r.Status = StatusTimeout
		case "WAITING":
			r.Status = StatusWaiting
		default:
			return PushResult{}, fmt.Errorf("okta poll: factorResult %q: %w", t.FactorResult, ErrBadResponse)
		}
		if r.Status != StatusWaiting {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, nil
		case <-time.After(oktaPollEvery):
		}
	}
}

// VerifyPasscode verifies code against the user's Okta Verify TOTP
// factor: 200 SUCCESS, or 403 E0000068 for a wrong code.
func (o *Okta) VerifyPasscode(ctx context.Context, login, code string) (PushResult, error) {
	id, _, _, totp, err := o.user(ctx, login)
	if err != nil {
		return PushResult{}, err
	}
	if totp == nil {
		return PushResult{Status: StatusDenied, Detail: "no active Okta Verify TOTP factor"}, nil
	}
	var t oktaTxn
	status, err := o.do(ctx, "POST", "/api/v1/users/"+url.PathEscape(id)+"/factors/"+url.PathEscape(totp.ID)+"/verify", map[string]string{"passCode": code}, &t)
	if err != nil {
		return PushResult{}, err
	}
	if status == http.StatusForbidden {
		return PushResult{Status: StatusDenied, Detail: "E0000068 invalid passcode"}, nil
	}
	if t.FactorResult != "SUCCESS" {
		return PushResult{}, fmt.Errorf("okta verify passcode: factorResult %q: %w", t.FactorResult, ErrBadResponse)
	}
	return PushResult{Status: StatusApproved, Detail: "factorResult SUCCESS"}, nil
}

// loadRoots reads a PEM file of trusted roots.
func loadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Settings for a stored provider: its kind and JSON settings, and the
// sealed secret (Duo's secret key, Okta's API token).
const (
	KindDuo  = "duo"
	KindOkta = "okta"
)

// Build makes the Provider of a stored configuration.
func Build(kind, settings string, secret secrets.Secret) (Provider, error) {
	switch kind {
	case KindDuo:
		var s DuoSettings
		if err := json.Unmarshal([]byte(settings), &s); err != nil {
			return nil, fmt.Errorf("duo settings: %w", err)
		}
		return NewDuo(s, secret)
	case KindOkta:
		var s OktaSettings
		if err := json.Unmarshal([]byte(settings), &s); err != nil {
			return nil, fmt.Errorf("okta settings: %w", err)
		}
		return NewOkta(s, secret)
	}
	return nil, fmt.Errorf("mfa provider kind %q: want duo or okta", kind)
}
