// Package posture brings what the clinic's device management services
// (Microsoft Intune, Jamf Pro, Google endpoint management) know about
// devices into the appliance's device inventory: one Connector per
// service lists every device with its MAC addresses, owner and
// compliance, and the Syncer applies each full list to the store on a
// schedule, queueing posture events for devices that turned noncompliant
// or disappeared.
//
// It only reads from the services; it never changes a device there. A
// sync that fails anywhere changes nothing in the store: the records of
// the last good sync stay, and the gate treats them as stale once the
// client's grace period has passed (store.Device.State). It never logs a
// secret or an access token.
package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Connector lists every device one MDM knows.
type Connector interface {
	// Source is the inventory source the devices belong to
	// (store.SourceIntune, SourceJamf or SourceGoogle).
	Source() string
	// Devices fetches the whole list. Records carry SourceID,
	// Description, Serial, the owner's UPN in UserName, canonical MACs,
	// Compliance and the MDM's own words in ComplianceReason, and
	// LastSeen. Any failure (one page, one token) is an error and no
	// partial list.
	Devices(ctx context.Context) ([]store.Device, error)
}

// Limits that keep one sync's memory bounded.
const (
	// MaxDevices is the largest list a sync accepts; a longer one fails
	// (a clinic has hundreds, not hundreds of thousands).
	MaxDevices = 100000
	// maxBody bounds one page's body.
	maxBody = 32 << 20
	// maxPages bounds a paging loop that never ends.
	maxPages = 10000
)

// Error is an MDM's answer other than success, in its own words.
type Error struct {
	Vendor  string // "Microsoft Graph", "Jamf Pro", "Google Cloud Identity"
	Op      string // what was asked: "GET /v1.0/deviceManagement/managedDevices"
	Status  int
	Code    string // the vendor's error code, if it sent one
	Message string
	Hint    string // what the contractor should check
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s: HTTP %d", e.Vendor, e.Op, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// vendor is what a fetcher knows of one MDM's API besides its URLs.
type vendor struct {
	name string
	// errorBody reads the vendor's error body into code and message.
	errorBody func(body []byte) (code, msg string)
	// unauthorized and forbidden say what to check after a 401 or 403.
	unauthorized, forbidden string
}

// fetcher performs one vendor's authenticated GETs: it keeps an access
// token, gets one fresh token when the service says the one it has
// expired (once per request), and waits out throttling as the service
// asks (Retry-After), never longer than maxWait at a time nor past the
// context's deadline.
type fetcher struct {
	vendor
	http  *http.Client
	token func(ctx context.Context, client *http.Client) (*oauth2.Token, error)

	maxWait    time.Duration
	maxRetries int

	tok *oauth2.Token
}

func newFetcher(v vendor, client *http.Client, token func(context.Context, *http.Client) (*oauth2.Token, error)) *fetcher {
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	return &fetcher{vendor: v, http: client, token: token, maxWait: 2 * time.Minute, maxRetries: 8}
}

// clientCredentials fetches tokens with the OAuth 2.0 client credentials
// grant (Intune, Jamf), a new token at each call.
func clientCredentials(cc clientcredentials.Config) func(context.Context, *http.Client) (*oauth2.Token, error) {
	return func(ctx context.Context, c *http.Client) (*oauth2.Token, error) {
		return cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c))
	}
}

// nestedError reads {"error":{codeKey: ..., "message": ...}}, the shape
// of Microsoft Graph (codeKey "code") and Google APIs ("status").
func nestedError(codeKey string) func([]byte) (string, string) {
	return func(body []byte) (string, string) {
		var e struct {
			Error map[string]any `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == nil {
			return "", ""
		}
		code, _ := e.Error[codeKey].(string)
		msg, _ := e.Error["message"].(string)
		return code, msg
	}
}

func (f *fetcher) accessToken(ctx context.Context) (string, error) {
	if f.tok == nil || !f.tok.Valid() {
		t, err := f.token(ctx, f.http)
		if err != nil {
			return "", fmt.Errorf("%s: sign-in: %w", f.name, tokenError(err))
		}
		f.tok = t
	}
	return f.tok.AccessToken, nil
}

// tokenError keeps the useful part of a token endpoint's refusal.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if msg == "" {
			msg = firstLine(string(re.Body))
		}
		return fmt.Errorf("token endpoint refused (HTTP %d): %s", status, msg)
	}
	return err
}

// getJSON fetches u and decodes the body into out.
func (f *fetcher) getJSON(ctx context.Context, u string, out any) error {
	op := "GET " + opPath(u)
	refreshed := false
	throttled := 0
	for {
		tok, err := f.accessToken(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := f.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", f.name, op, stripURL(err))
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			switch {
			case rerr != nil:
				return fmt.Errorf("%s: %s: the answer was cut off (truncated page): %w", f.name, op, rerr)
			case len(body) > maxBody:
				return fmt.Errorf("%s: %s: a page larger than %d MiB", f.name, op, maxBody>>20)
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("%s: %s: the answer is not the JSON expected (malformed or truncated page): %w", f.name, op, err)
			}
			return nil
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			// The token may have expired mid-sync: one fresh token,
			// one more try of this request.
			refreshed = true
			f.tok = nil
			continue
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			wait, ok := retryAfter(resp.Header)
			if !ok {
				wait = time.Duration(1<<min(throttled, 5)) * time.Second
			}
			if throttled >= f.maxRetries {
				return f.errorFor(op, resp.StatusCode, body, fmt.Sprintf("still throttled after %d waits", throttled))
			}
			if wait > f.maxWait {
				return f.errorFor(op, resp.StatusCode, body, fmt.Sprintf("asked to wait %s, longer than the %s one wait may take", wait, f.maxWait))
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return f.errorFor(op, resp.StatusCode, body, fmt.Sprintf("asked to wait %s, past the end of this sync's time", wait))
			}
			throttled++
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %s: throttled, and the sync ran out of time: %w", f.name, op, ctx.Err())
			}
			continue
		}
		return f.errorFor(op, resp.StatusCode, body, "")
	}
}

func (f *fetcher) errorFor(op string, status int, body []byte, extra string) error {
	e := &Error{Vendor: f.name, Op: op, Status: status}
	if f.errorBody != nil {
		e.Code, e.Message = f.errorBody(body)
	}
	if e.Code == "" && e.Message == "" {
		e.Message = string(body)
	}
	// The vendor's text goes to the audit and the console: one short line.
	e.Code, e.Message = firstLine(e.Code), firstLine(e.Message)
	switch status {
	case http.StatusUnauthorized:
		e.Hint = f.unauthorized
	case http.StatusForbidden:
		e.Hint = f.forbidden
	}
	if extra != "" {
		if e.Hint != "" {
			e.Hint = extra + "; " + e.Hint
		} else {
			e.Hint = extra
		}
	}
	return e
}

// retryAfter reads Retry-After: seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	s := strings.TrimSpace(h.Get("Retry-After"))
	if s == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// opPath names a request in an error: the path only, since queries carry
// page tokens that mean nothing to a contractor.
func opPath(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return p.Path
}

// stripURL drops the URL (and its page token) from a transport error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// macs canonicalises an MDM's MAC addresses with policy.NormalizeMAC
// (AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff, AABBCCDDEEFF, AA:BB:…), dropping
// empty, all-zero and unreadable ones (the last logged) and repeats.
func macs(log *slog.Logger, source, id string, raw ...string) []string {
	var out []string
	for _, r := range raw {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		m, err := policy.NormalizeMAC(r)
		if err != nil {
			if log != nil {
				log.Warn("MDM lists an unreadable MAC address; ignored", "source", source, "device", id, "mac", r)
			}
			continue
		}
		if m == "00:00:00:00:00:00" || contains(out, m) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// parseTime reads an RFC 3339 time; the zero time when absent or odd
// (Graph says 0001-01-01T00:00:00Z for "never").
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1971 {
		return time.Time{}
	}
	return t.UTC()
}

// httpsOrLoopback refuses a base URL that would send credentials in the
// clear; tests' stand-ins listen on loopback.
func httpsOrLoopback(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not a URL", what, raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" && (strings.HasPrefix(u.Host, "127.0.0.1:") || strings.HasPrefix(u.Host, "[::1]:") || strings.HasPrefix(u.Host, "localhost:")) {
		return nil
	}
	return fmt.Errorf("%s %q must start with https://", what, raw)
}
