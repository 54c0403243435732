package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/posture"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// MDMConfig is an MDM source as the CLI and the console set it: exactly
// one of Intune, Jamf and Google, named by Name.
type MDMConfig struct {
	Name   string // intune, jamf or google
	Intune *posture.IntuneSettings
	Jamf   *posture.JamfSettings
	Google *posture.GoogleSettings
	// Secret is the client secret (intune, jamf) or the service account's
	// JSON key (google); nil keeps the stored one.
	Secret secrets.Secret
	// Interval between syncs (0: keep the stored one, or 15 minutes).
	Interval time.Duration
	// Disabled stops the periodic sync; records go stale.
	Disabled bool
}

// SetMDM creates or replaces an MDM source, after building its connector
// (no network traffic) to check the settings. The daemon starts using it
// within a second or two; its first sync runs then.
func (s *Service) SetMDM(ctx context.Context, c MDMConfig) error {
	var settings any
	switch {
	case c.Name == store.SourceIntune && c.Intune != nil:
		settings = c.Intune
	case c.Name == store.SourceJamf && c.Jamf != nil:
		settings = c.Jamf
	case c.Name == store.SourceGoogle && c.Google != nil:
		if c.Secret != nil {
			k, err := posture.ParseGoogleKey(c.Secret)
			if err != nil {
				return invalid("%v", err)
			}
			c.Google.ClientEmail = k.ClientEmail
		}
		settings = c.Google
	default:
		return invalid("the MDM must be intune, jamf or google, with its settings")
	}
	if c.Interval != 0 && (c.Interval < time.Minute || c.Interval > 24*time.Hour) {
		return invalid("the sync interval %s is outside 1m-24h", c.Interval)
	}
	b, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	m := store.MDMSource{Name: c.Name, Settings: string(b), Secret: c.Secret, Interval: c.Interval, Enabled: !c.Disabled}
	old, err := s.Store.MDMSourceByName(ctx, c.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if c.Secret == nil {
			return invalid("%s has no secret stored yet: give it (--secret-stdin, or --key-file for google)", c.Name)
		}
	case err != nil:
		return err
	default:
		if m.Interval == 0 {
			m.Interval = old.Interval
		}
		if c.Name == store.SourceGoogle && c.Secret == nil {
			var og posture.GoogleSettings
			_ = json.Unmarshal([]byte(old.Settings), &og)
			c.Google.ClientEmail = og.ClientEmail
			b, _ = json.Marshal(c.Google)
			m.Settings = string(b)
		}
	}
	if m.Interval == 0 {
		m.Interval = posture.DefaultInterval
	}
	check := m
	if check.Secret == nil {
		check.Secret = old.Secret
	}
	if _, err := posture.Build(check, nil, nil); err != nil {
		return invalid("%v", err)
	}
	detail := fmt.Sprintf("MDM %s set: %s, every %s", c.Name, m.Settings, m.Interval)
	if c.Disabled {
		detail += ", periodic sync off"
	}
	if c.Secret != nil {
		detail += " (secret replaced)"
	}
	return s.change(ctx, audit.Entry{Reason: "mdm_set", Detail: detail}, func(tx *store.Tx) error {
		return tx.PutMDMSource(ctx, m, s.Now())
	})
}

// MDMStatus is what `mdm list` and the console show of a source: never
// its secret.
type MDMStatus struct {
	Name     string
	Enabled  bool
	Interval time.Duration
	// Settings is the stored JSON (no secret in it); Summary the part a
	// contractor recognises (tenant, server, customer); Rule Jamf's
	// compliance rule as it was given.
	Settings, Summary, Rule  string
	LastAttempt, LastSuccess time.Time
	LastError                string
	Devices                  int
	// Stale: no successful sync for two intervals (or ever). The gate
	// applies each client's own grace period to the records.
	Stale bool
	// Problem is why the settings cannot work, if they cannot.
	Problem string
}

// MDMSources lists the configured sources with the outcome of their last
// syncs.
func (s *Service) MDMSources(ctx context.Context) ([]MDMStatus, error) {
	ms, err := s.Store.MDMSources(ctx)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := make([]MDMStatus, 0, len(ms))
	for _, m := range ms {
		st := MDMStatus{Name: m.Name, Enabled: m.Enabled, Interval: m.Interval, Settings: m.Settings,
			LastAttempt: m.LastAttemptAt, LastSuccess: m.LastSuccessAt, LastError: m.LastError, Devices: m.DeviceCount}
		st.Stale = m.LastSuccessAt.IsZero() || now.Sub(m.LastSuccessAt) > 2*m.Interval
		var f struct {
			TenantID   string `json:"tenant_id"`
			URL        string `json:"url"`
			Rule       string `json:"rule"`
			Customer   string `json:"customer"`
			AdminEmail string `json:"admin_email"`
			ClientID   string `json:"client_id"`
		}
		_ = json.Unmarshal([]byte(m.Settings), &f)
		switch m.Name {
		case store.SourceIntune:
			st.Summary = "tenant " + f.TenantID + ", client " + f.ClientID
		case store.SourceJamf:
			st.Summary, st.Rule = f.URL+", client "+f.ClientID, f.Rule
		case store.SourceGoogle:
			st.Summary = "customer " + f.Customer + " as " + f.AdminEmail
		}
		if _, err := posture.Build(m, nil, nil); err != nil {
			st.Problem = err.Error()
		}
		out = append(out, st)
	}
	return out, nil
}

// RemoveMDM deletes a source and the inventory records it brought in.
// Removing the connector is an admin's decision, not a device leaving the
// MDM: no posture event is queued, and sessions stay until their next
// login meets the client's rule.
func (s *Service) RemoveMDM(ctx context.Context, name string) (int, error) {
	var n int
	err := s.change(ctx, audit.Entry{Reason: "mdm_remove", Detail: "MDM " + name + " removed"}, func(tx *store.Tx) error {
		if err := tx.DeleteMDMSource(ctx, name); err != nil {
			return err
		}
		res, err := tx.ReplaceSourceDevices(ctx, name, nil, s.Now())
		n = res.Removed
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, invalid("there is no MDM %q (see 'clinicgate mdm list')", name)
	}
	return n, err
}

// MDMSyncOutcome is how a requested sync ended.
type MDMSyncOutcome struct {
	Done    bool // false: the daemon did not finish it in time
	Devices int
	Err     string
}

// SyncMDM asks the running daemon to sync name now and waits up to wait
// for it to finish (wait 0: returns at once, Done false; the console then
// reads the outcome from MDMSources). The request is audited.
func (s *Service) SyncMDM(ctx context.Context, name string, wait time.Duration) (MDMSyncOutcome, error) {
	if _, err := s.Store.MDMSourceByName(ctx, name); errors.Is(err, store.ErrNotFound) {
		return MDMSyncOutcome{}, invalid("there is no MDM %q (see 'clinicgate mdm list')", name)
	} else if err != nil {
		return MDMSyncOutcome{}, err
	}
	n, err := s.Store.RequestMDMSync(ctx, name)
	if err != nil {
		return MDMSyncOutcome{}, err
	}
	_, _ = s.Audit.Append(ctx, audit.Entry{Kind: audit.KindAdmin, Actor: s.Actor, Outcome: "requested", Reason: "mdm_sync_request", Detail: "sync of MDM " + name + " requested"})
	deadline := time.Now().Add(wait)
	for {
		m, err := s.Store.MDMSourceByName(ctx, name)
		if err != nil {
			return MDMSyncOutcome{}, err
		}
		if m.SyncDone >= n {
			return MDMSyncOutcome{Done: true, Devices: m.DeviceCount, Err: m.LastError}, nil
		}
		if time.Now().After(deadline) {
			return MDMSyncOutcome{}, nil
		}
		select {
		case <-ctx.Done():
			return MDMSyncOutcome{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// MDMNames are the sources that can be configured.
func MDMNames() string {
	return strings.Join([]string{store.SourceIntune, store.SourceJamf, store.SourceGoogle}, ", ")
}
