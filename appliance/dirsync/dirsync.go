// Package dirsync pulls users and groups from cloud directories that cannot
// be searched over LDAP — Microsoft Graph (Entra ID) and Okta — into the
// store, so group-based policy knows users before their first login and a
// user removed or disabled upstream is disabled here too.
//
// It only reads the directory; it never writes to it. Passwords are not
// synced: they are checked by the upstream at each login.
package dirsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Config is the "sync" part of an upstream's settings.
type Config struct {
	Kind string `json:"kind"` // graph or okta
	// Graph: the tenant (directory) id and the service URLs (defaults are
	// Microsoft's public cloud).
	TenantID string `json:"tenant_id,omitempty"`
	LoginURL string `json:"login_url,omitempty"`
	GraphURL string `json:"graph_url,omitempty"`
	// Okta: the organisation URL, e.g. https://clinic.okta.com.
	OrgURL string `json:"org_url,omitempty"`
	// IntervalMinutes between runs (default 15).
	IntervalMinutes int `json:"interval_minutes,omitempty"`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.LoginURL == "" {
		c.LoginURL = "https://login.microsoftonline.com"
	}
	if c.GraphURL == "" {
		c.GraphURL = "https://graph.microsoft.com"
	}
	if c.IntervalMinutes == 0 {
		c.IntervalMinutes = 15
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Kind {
	case "graph":
		if c.TenantID == "" {
			errs = append(errs, errors.New("sync: tenant_id is empty (the directory id of your Entra tenant)"))
		}
	case "okta":
		if !strings.HasPrefix(c.OrgURL, "https://") && !strings.HasPrefix(c.OrgURL, "http://127.0.0.1") {
			errs = append(errs, fmt.Errorf("sync: org_url %q must be https://YOUR-ORG.okta.com", c.OrgURL))
		}
	default:
		errs = append(errs, fmt.Errorf("sync: kind %q: use graph or okta", c.Kind))
	}
	if c.IntervalMinutes < 1 || c.IntervalMinutes > 24*60 {
		errs = append(errs, fmt.Errorf("sync: interval_minutes %d is outside 1-1440", c.IntervalMinutes))
	}
	return errors.Join(errs...)
}

// Source fetches changes since state ("" for everything).
type Source interface {
	Fetch(ctx context.Context, state string) (store.DirChanges, error)
}

// Credentials a source signs in with.
type Credentials struct {
	ClientID, ClientSecret string // Graph: the app registration
	APIToken               string // Okta
}

// New builds the source for c.
func New(c Config, cr Credentials, client *http.Client) (Source, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	switch c.Kind {
	case "graph":
		if cr.ClientID == "" || cr.ClientSecret == "" {
			return nil, errors.New("sync: graph needs the app registration's client id and secret")
		}
		return &Graph{cfg: c, cred: cr, http: client}, nil
	default:
		if cr.APIToken == "" {
			return nil, errors.New("sync: okta needs an API token (clinicgate upstream sync-token NAME)")
		}
		return &Okta{cfg: c, token: cr.APIToken, http: client}, nil
	}
}

// Run fetches and applies one sync for upstream and audits it.
func Run(ctx context.Context, st *store.Store, log *audit.Log, upstream string, src Source, now func() time.Time) (store.DirStats, error) {
	rec, err := st.DirSyncRecord(ctx, upstream)
	if err != nil {
		return store.DirStats{}, err
	}
	ch, err := src.Fetch(ctx, rec.State)
	if err != nil {
		_ = st.RecordDirSyncError(ctx, upstream, now(), err.Error())
		return store.DirStats{}, err
	}
	var users []store.DirUser
	var skipped []string
	for _, u := range ch.Users {
		if u.Name != "" && !usableName(u.Name) {
			skipped = append(skipped, fmt.Sprintf("%q: not a usable login name; not synced", u.Name))
			continue
		}
		users = append(users, u)
	}
	ch.Users = users
	var stats store.DirStats
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		stats, err = tx.ApplyDirectory(ctx, upstream, ch, now())
		if err != nil {
			return err
		}
		stats.Conflicts = append(skipped, stats.Conflicts...)
		detail := fmt.Sprintf("directory sync from %s: %d users, %d groups; %d created, %d updated, %d disabled", upstream, stats.Users, stats.Groups, stats.Created, stats.Updated, stats.Disabled)
		if len(stats.Conflicts) > 0 {
			detail += "; skipped: " + strings.Join(stats.Conflicts, "; ")
		}
		_, err = log.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindSystem, Reason: "directory_sync", Actor: "sync:" + upstream, Outcome: "changed", Detail: detail})
		return err
	})
	if err != nil {
		_ = st.RecordDirSyncError(ctx, upstream, now(), err.Error())
	}
	return stats, err
}

// usableName matches what the doors accept as a user name.
func usableName(s string) bool {
	if s == "" || len(s) > 253 || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || strings.ContainsRune(",\\*()\"", r) })
}

// ---- HTTP with throttling

const maxRetries = 5

// get fetches url as JSON, waiting out 429 and 503 answers as the vendor
// says (Retry-After, or Okta's X-Rate-Limit-Reset), at most maxRetries
// times and never past ctx.
func get(ctx context.Context, c *http.Client, url string, auth func(*http.Request), out any) (http.Header, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		auth(req)
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			if err := json.Unmarshal(body, out); err != nil {
				return nil, fmt.Errorf("%s: %w", url, err)
			}
			return resp.Header, nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < maxRetries:
			wait := retryAfter(resp.Header, time.Now())
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, fmt.Errorf("throttled (HTTP %d) and out of time: %w", resp.StatusCode, ctx.Err())
			}
		default:
			return resp.Header, &HTTPError{Status: resp.StatusCode, Body: firstLine(string(body))}
		}
	}
}

// HTTPError is an unexpected answer.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// retryAfter reads how long to wait: Retry-After in seconds (Graph), or
// X-Rate-Limit-Reset as a Unix time (Okta); at least 1 s, at most 120 s.
func retryAfter(h http.Header, now time.Time) time.Duration {
	d := 2 * time.Second
	if s := h.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			d = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			d = t.Sub(now)
		}
	} else if s := h.Get("X-Rate-Limit-Reset"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			d = time.Unix(n, 0).Sub(now) + time.Second
		}
	}
	return min(max(d, time.Second), 120*time.Second)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// ForUpstream reads the "sync" settings of a stored upstream and builds its
// source. ok is false when the upstream has no sync configured. The Graph
// source signs in with the upstream's own client id and secret (an OIDC
// upstream for Entra ID); Okta uses the separate sync token.
func ForUpstream(u store.Upstream, syncSecret []byte) (src Source, cfg Config, ok bool, err error) {
	var raw struct {
		Sync     *Config `json:"sync"`
		ClientID string  `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(u.Config), &raw); err != nil {
		return nil, Config{}, false, fmt.Errorf("upstream %s: %w", u.Name, err)
	}
	if raw.Sync == nil {
		return nil, Config{}, false, nil
	}
	cfg = *raw.Sync
	cfg.Defaults()
	src, err = New(cfg, Credentials{ClientID: raw.ClientID, ClientSecret: string(u.Secret), APIToken: string(syncSecret)}, nil)
	if err != nil {
		return nil, cfg, true, fmt.Errorf("upstream %s: %w", u.Name, err)
	}
	return src, cfg, true, nil
}

// Due runs every upstream whose sync interval has passed. It is called
// once a minute by the daemon; errors are recorded per upstream.
func Due(ctx context.Context, st *store.Store, log *audit.Log, now func() time.Time, report func(upstream string, stats store.DirStats, err error)) {
	ups, err := st.Upstreams(ctx)
	if err != nil {
		report("", store.DirStats{}, err)
		return
	}
	for _, u := range ups {
		tok, err := st.UpstreamSyncSecret(ctx, u.Name)
		if err != nil {
			report(u.Name, store.DirStats{}, err)
			continue
		}
		src, cfg, ok, err := ForUpstream(u, tok)
		if !ok {
			continue
		}
		if err != nil {
			report(u.Name, store.DirStats{}, err)
			continue
		}
		rec, err := st.DirSyncRecord(ctx, u.Name)
		if err != nil {
			report(u.Name, store.DirStats{}, err)
			continue
		}
		if !rec.LastRun.IsZero() && now().Sub(rec.LastRun) < time.Duration(cfg.IntervalMinutes)*time.Minute {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		stats, err := Run(rctx, st, log, u.Name, src, now)
		cancel()
		report(u.Name, stats, err)
	}
}
