package mfa

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// DuoSettings are a Duo Auth API application's settings, from the Duo
// Admin Panel (Applications → Auth API).
type DuoSettings struct {
	// APIHost is the application's API hostname (api-XXXXXXXX.duosecurity.com).
	APIHost string `json:"api_host"`
	// IntegrationKey is the application's integration key (ikey); the
	// secret key (skey) is kept sealed beside the settings.
	IntegrationKey string `json:"integration_key"`
	// CAFile, when set, is a PEM file of the roots to trust for APIHost
	// INSTEAD of the Duo client's pinned root: for a TLS-inspecting proxy,
	// and for tests against a stand-in. Leave it empty in production.
	CAFile string `json:"ca_file,omitempty"`
}

// Validate reports what is missing, in the operator's words.
func (s DuoSettings) Validate() error {
	var errs []error
	if s.APIHost == "" || strings.ContainsAny(s.APIHost, "/ ") {
		errs = append(errs, errors.New("duo needs its API hostname (api-XXXXXXXX.duosecurity.com, no https:// and no path)"))
	}
	if s.IntegrationKey == "" {
		errs = append(errs, errors.New("duo needs the Auth API application's integration key"))
	}
	return errors.Join(errs...)
}

// Duo is the Duo Auth API v2 (duo.com/docs/authapi): preauth, auth with
// factor=push and async=1, auth_status, and auth with factor=passcode.
// Requests are signed by Duo's own Go client (duo_api_golang), which also
// pins Duo's TLS root.
type Duo struct {
	api, poll *duoapi.DuoApi
	host      string
}

// duoTimeout bounds preauth and auth; duoPollTimeout bounds one
// auth_status, which long-polls until the push's state changes.
const (
	duoTimeout     = 10 * time.Second
	duoPollTimeout = 70 * time.Second
)

// NewDuo builds the client; it does not call Duo.
func NewDuo(s DuoSettings, skey secrets.Secret) (*Duo, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(skey) == 0 {
		return nil, errors.New("duo needs the Auth API application's secret key")
	}
	var roots *x509.CertPool
	if s.CAFile != "" {
		var err error
		if roots, err = loadRoots(s.CAFile); err != nil {
			return nil, err
		}
	}
	build := func(timeout time.Duration) *duoapi.DuoApi {
		return duoapi.NewDuoApi(s.IntegrationKey, string(skey), s.APIHost, "clinicgate",
			duoapi.SetTimeout(timeout), duoapi.SetTransport(func(tr *http.Transport) {
				// Keep connections to Duo open: a burst of logins then
				// costs no TLS handshake each.
				tr.MaxIdleConnsPerHost = 64
				if roots != nil {
					tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
				}
			}))
	}
	return &Duo{api: build(duoTimeout), poll: build(duoPollTimeout), host: s.APIHost}, nil
}

// duoReply is every Auth API answer's envelope ("Response Format",
// duo.com/docs/authapi#response-format): stat OK with response, or stat
// FAIL with a numeric code, a message and maybe message_detail.
type duoReply struct {
	Stat          string          `json:"stat"`
	Response      json.RawMessage `json:"response"`
	Code          int             `json:"code"`
	Message       string          `json:"message"`
	MessageDetail string          `json:"message_detail"`
}

// call makes one signed call and returns the response object. The Duo
// client takes no context: the call runs in its own goroutine, bounded
// by the client's timeout, and an ended ctx stops the wait for it.
func (d *Duo) call(ctx context.Context, api *duoapi.DuoApi, method, path string, params url.Values) (json.RawMessage, error) {
	type result struct {
		resp *http.Response
		body []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, body, err := api.SignedCall(method, path, params, duoapi.UseTimeout)
		ch <- result{resp, body, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("duo %s: %w: %w", path, ErrUnreachable, ctx.Err())
	}
	if r.err != nil {
		var uae x509.UnknownAuthorityError
		var hve x509.HostnameError
		var cie x509.CertificateInvalidError
		if errors.As(r.err, &uae) || errors.As(r.err, &hve) || errors.As(r.err, &cie) {
			return nil, fmt.Errorf("duo %s: the server's certificate is not Duo's: %w: %v", path, ErrBadResponse, r.err)
		}
		return nil, fmt.Errorf("duo %s: %w: %v", path, ErrUnreachable, r.err)
	}
	var rep duoReply
	jerr := json.Unmarshal(r.body, &rep)
	switch {
	case r.resp.StatusCode >= 500 || r.resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("duo %s: HTTP %d: %w", path, r.resp.StatusCode, ErrUnreachable)
	case jerr != nil:
		return nil, fmt.Errorf("duo %s: HTTP %d, not JSON: %w", path, r.resp.StatusCode, ErrBadResponse)
	case rep.Stat == "FAIL" && (r.resp.StatusCode == http.StatusUnauthorized || r.resp.StatusCode == http.StatusForbidden):
		return nil, fmt.Errorf("duo %s: %d %s (check the integration key, secret key and API hostname): %w", path, rep.Code, rep.Message, ErrRefused)
	case rep.Stat == "FAIL":
		return nil, fmt.Errorf("duo %s: %d %s %s: %w", path, rep.Code, rep.Message, rep.MessageDetail, ErrRefused)
	case rep.Stat != "OK" || r.resp.StatusCode != http.StatusOK || len(rep.Response) == 0:
		return nil, fmt.Errorf("duo %s: HTTP %d, stat %q: %w", path, r.resp.StatusCode, rep.Stat, ErrBadResponse)
	}
	return rep.Response, nil
}

// Preauth is POST /auth/v2/preauth (duo.com/docs/authapi#/preauth):
// result auth, allow, deny or enroll; devices with their capabilities.
func (d *Duo) Preauth(ctx context.Context, user, ip string) (Preauth, error) {
	p := url.Values{"username": {user}}
	if ip != "" {
		p.Set("ipaddr", ip)
	}
	raw, err := d.call(ctx, d.api, "POST", "/auth/v2/preauth", p)
	if err != nil {
		return Preauth{}, err
	}
	var r struct {
		Result    string `json:"result"`
		StatusMsg string `json:"status_msg"`
		Devices   []struct {
			Device       string   `json:"device"`
			DisplayName  string   `json:"display_name"`
			Name         string   `json:"name"`
			Capabilities []string `json:"capabilities"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return Preauth{}, fmt.Errorf("duo preauth: %w: %v", ErrBadResponse, err)
	}
	out := Preauth{Result: PreauthResult(r.Result), Message: r.StatusMsg}
	switch out.Result {
	case PreauthAuth, PreauthAllow, PreauthDeny, PreauthEnroll:
	default:
		return Preauth{}, fmt.Errorf("duo preauth: result %q: %w", r.Result, ErrBadResponse)
	}
	for _, dev := range r.Devices {
		for _, c := range dev.Capabilities {
			switch c {
			case "push":
				if !out.Push {
					out.Push, out.Device = true, firstNonEmpty(dev.DisplayName, dev.Name, dev.Device)
				}
			case "mobile_otp":
				out.Passcode = true
			}
		}
	}
	return out, nil
}

// StartPush is POST /auth/v2/auth with factor=push, device=auto, async=1
// (duo.com/docs/authapi#/auth): the answer is the transaction's txid.
func (d *Duo) StartPush(ctx context.Context, user string, info PushInfo) (Push, error) {
	p := url.Values{"username": {user}, "factor": {"push"}, "device": {"auto"}, "async": {"1"}}
	if info.IP != "" {
		p.Set("ipaddr", info.IP)
	}
	if info.Client != "" {
		p.Set("type", "Login to "+info.Client)
	}
	raw, err := d.call(ctx, d.api, "POST", "/auth/v2/auth", p)
	if err != nil {
		return Push{}, err
	}
	var r struct {
		Txid string `json:"txid"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Txid == "" {
		return Push{}, fmt.Errorf("duo auth: no txid: %w", ErrBadResponse)
	}
	return Push{ID: r.Txid}, nil
}

// verifiedCode finds the code of a Verified Duo Push in auth_status's
// status_msg ("Please enter verification code 708 into Duo Mobile...",
// the example of duo.com/docs/authapi#/auth_status).
var verifiedCode = regexp.MustCompile(`verification code (\d{3,8})`)

// Poll is GET /auth/v2/auth_status?txid= (duo.com/docs/authapi#/auth_status),
// which long-polls: it answers when the transaction's status changes.
// result is allow, deny or waiting; status says more (pushed, fraud,
// timeout, …).
func (d *Duo) Poll(ctx context.Context, push Push) (PushResult, error) {
	raw, err := d.call(ctx, d.poll, "GET", "/auth/v2/auth_status", url.Values{"txid": {push.ID}})
	if err != nil {
		return PushResult{}, err
	}
	return duoResult(raw, "auth_status")
}

func duoResult(raw json.RawMessage, what string) (PushResult, error) {
	var r struct {
		Result    string `json:"result"`
		Status    string `json:"status"`
		StatusMsg string `json:"status_msg"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return PushResult{}, fmt.Errorf("duo %s: %w: %v", what, ErrBadResponse, err)
	}
	out := PushResult{Detail: r.Status + ": " + r.StatusMsg}
	if m := verifiedCode.FindStringSubmatch(r.StatusMsg); m != nil {
		out.Number = m[1]
	}
	switch {
	case r.Result == "allow":
		out.Status = StatusApproved
	case r.Result == "waiting":
		out.Status = StatusWaiting
	case r.Result == "deny" && r.Status == "fraud":
		out.Status = StatusFraud
	case r.Result == "deny" && r.Status == "timeout":
		out.Status = StatusTimeout
	case r.Result == "deny":
		out.Status = StatusDenied
	default:
		return PushResult{}, fmt.Errorf("duo %s: result %q: %w", what, r.Result, ErrBadResponse)
	}
	return out, nil
}

// VerifyPasscode is POST /auth/v2/auth with factor=passcode (synchronous):
// result allow or deny.
func (d *Duo) VerifyPasscode(ctx context.Context, user, code string) (PushResult, error) {
	raw, err := d.call(ctx, d.api, "POST", "/auth/v2/auth", url.Values{"username": {user}, "factor": {"passcode"}, "passcode": {code}})
	if err != nil {
		return PushResult{}, err
	}
	r, err := duoResult(raw, "auth passcode")
	if err == nil && r.Status == StatusWaiting {
		return PushResult{}, fmt.Errorf("duo auth passcode: waiting on a synchronous call: %w", ErrBadResponse)
	}
	return r, err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
