package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// GoogleDevicesScope is the only scope the google source asks for; the
// admin grants it to the service account's client id under domain-wide
// delegation.
const GoogleDevicesScope = "https://www.googleapis.com/auth/cloud-identity.devices.readonly"

// GoogleSettings are the stored settings of the google source. The
// service account's JSON key is the source's sealed secret.
type GoogleSettings struct {
	// Customer is the Google Workspace customer id (C0xxxxxxx), or
	// my_customer for the service account's own organisation.
	Customer string `json:"customer"`
	// AdminEmail is the administrator the service account acts as
	// (domain-wide delegation's subject).
	AdminEmail string `json:"admin_email"`
	// ClientEmail is the service account (read from the key; shown).
	ClientEmail string `json:"client_email,omitempty"`
	// APIURL defaults to https://cloudidentity.googleapis.com; TokenURL
	// to the key's token_uri.
	APIURL   string `json:"api_url,omitempty"`
	TokenURL string `json:"token_url,omitempty"`
}

// GoogleKey is the part of a service account's JSON key file used here.
type GoogleKey struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	TokenURI     string `json:"token_uri"`
}

// ParseGoogleKey reads a service account key file's contents.
func ParseGoogleKey(b []byte) (GoogleKey, error) {
	var k GoogleKey
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("google: the key file is not a service account's JSON key: %w", err)
	}
	if k.Type != "service_account" || k.ClientEmail == "" || k.PrivateKey == "" {
		return k, errors.New("google: the key file is not a service account's JSON key (IAM, Service accounts, Keys, Add key, JSON)")
	}
	if k.TokenURI == "" {
		k.TokenURI = "https://oauth2.googleapis.com/token"
	}
	return k, nil
}

// Google lists the devices of Google endpoint management through the
// Cloud Identity devices API, as a service account with domain-wide
// delegation acting for an administrator.
type Google struct {
	cfg GoogleSettings
	f   *fetcher
	log *slog.Logger
}

// NewGoogle builds the connector (no network traffic).
func NewGoogle(cfg GoogleSettings, key []byte, client *http.Client, log *slog.Logger) (*Google, error) {
	k, err := ParseGoogleKey(key)
	if err != nil {
		return nil, err
	}
	if cfg.APIURL == "" {
		cfg.APIURL = "https://cloudidentity.googleapis.com"
	}
	cfg.APIURL = strings.TrimRight(cfg.APIURL, "/")
	if cfg.TokenURL == "" {
		cfg.TokenURL = k.TokenURI
	}
	if cfg.Customer == "" {
		cfg.Customer = "my_customer"
	}
	cfg.Customer = strings.TrimPrefix(cfg.Customer, "customers/")
	var errs []error
	if strings.ContainsAny(cfg.Customer, "/?#& ") {
		errs = append(errs, fmt.Errorf("google: customer %q is not a customer id like C01abc234 (Admin console, Account, Account settings)", cfg.Customer))
	}
	if a, err := mail.ParseAddress(cfg.AdminEmail); err != nil || a.Address != cfg.AdminEmail {
		errs = append(errs, fmt.Errorf("google: admin email %q is not an address", cfg.AdminEmail))
	}
	for what, u := range map[string]string{"api_url": cfg.APIURL, "token_url": cfg.TokenURL} {
		if err := httpsOrLoopback("google: "+what, u); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	jc := &jwt.Config{
		Email: k.ClientEmail, PrivateKey: []byte(k.PrivateKey), PrivateKeyID: k.PrivateKeyID,
		Subject: cfg.AdminEmail, Scopes: []string{GoogleDevicesScope}, TokenURL: cfg.TokenURL,
	}
	f := newFetcher(vendor{
		name: "Google Cloud Identity", errorBody: nestedError("status"),
		unauthorized: "check the service account key, and that domain-wide delegation grants its client id " + GoogleDevicesScope,
		forbidden:    "the admin email must be an administrator with the Mobile device management privileges, and the Cloud Identity API enabled in the service account's project",
	}, client, func(ctx context.Context, c *http.Client) (*oauth2.Token, error) {
		// A new source each time: a refresh must not reuse a cached token.
		return jc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, c)).Token()
	})
	return &Google{cfg: cfg, f: f, log: log}, nil
}

// Source implements Connector.
func (*Google) Source() string { return store.SourceGoogle }

type googleDevice struct {
	Name             string   `json:"name"` // devices/{id}
	Model            string   `json:"model"`
	Hostname         string   `json:"hostname"`
	SerialNumber     string   `json:"serialNumber"`
	LastSyncTime     string   `json:"lastSyncTime"`
	WifiMacAddresses []string `json:"wifiMacAddresses"`
	CompromisedState string   `json:"compromisedState"`
	EncryptionState  string   `json:"encryptionState"`
	ManagementState  string   `json:"managementState"`
}

// Devices implements Connector: every device, then every device's users
// (devices/-/deviceUsers) for the owner.
func (c *Google) Devices(ctx context.Context) ([]store.Device, error) {
	customer := "customers/" + c.cfg.Customer
	var out []store.Device
	err := c.pages(ctx, "/v1/devices", url.Values{"customer": {customer}, "pageSize": {"100"}}, func(raw json.RawMessage) error {
		var p struct {
			Devices []googleDevice `json:"devices"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		for _, g := range p.Devices {
			out = append(out, c.record(g))
		}
		if len(out) > MaxDevices {
			return fmt.Errorf("Google lists more than %d devices; clinicgate does not sync that many", MaxDevices)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	owners := map[string]string{}
	err = c.pages(ctx, "/v1/devices/-/deviceUsers", url.Values{"customer": {customer}, "pageSize": {"20"}}, func(raw json.RawMessage) error {
		var p struct {
			DeviceUsers []struct {
				Name      string `json:"name"` // devices/{d}/deviceUsers/{u}
				UserEmail string `json:"userEmail"`
			} `json:"deviceUsers"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		for _, u := range p.DeviceUsers {
			rest, _ := strings.CutPrefix(u.Name, "devices/")
			dev, _, _ := strings.Cut(rest, "/")
			if _, ok := owners[dev]; !ok && u.UserEmail != "" {
				owners[dev] = u.UserEmail
			}
		}
		if len(owners) > MaxDevices {
			return errors.New("Google lists too many device users")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].UserName = owners[out[i].SourceID]
	}
	return out, nil
}

// pages follows nextPageToken to the end, handing each page to each.
func (c *Google) pages(ctx context.Context, path string, q url.Values, each func(json.RawMessage) error) error {
	for page := 0; ; page++ {
		if page >= maxPages {
			return errors.New("Google Cloud Identity: too many pages")
		}
		var raw json.RawMessage
		if err := c.f.getJSON(ctx, c.cfg.APIURL+path+"?"+q.Encode(), &raw); err != nil {
			return err
		}
		var tok struct {
			NextPageToken string `json:"nextPageToken"`
		}
		if err := json.Unmarshal(raw, &tok); err != nil {
			return fmt.Errorf("Google Cloud Identity: GET %s: %w", path, err)
		}
		if err := each(raw); err != nil {
			return fmt.Errorf("Google Cloud Identity: GET %s: %w", path, err)
		}
		if tok.NextPageToken == "" {
			return nil
		}
		q.Set("pageToken", tok.NextPageToken)
	}
}

func (c *Google) record(g googleDevice) store.Device {
	id := strings.TrimPrefix(g.Name, "devices/")
	d := store.Device{
		SourceID: id, Description: g.Hostname, Serial: g.SerialNumber, LastSeen: parseTime(g.LastSyncTime),
		MACs: macs(c.log, store.SourceGoogle, id, g.WifiMacAddresses...),
	}
	if d.Description == "" {
		d.Description = g.Model
	}
	d.Compliance = googleCompliance(g)
	d.ComplianceReason = fmt.Sprintf("compromisedState=%s, encryptionState=%s, managementState=%s", orUnspecified(g.CompromisedState), orUnspecified(g.EncryptionState), orUnspecified(g.ManagementState))
	return d
}

// googleCompliance: compliant when Google says the device is not
// compromised, encrypted and approved; noncompliant when it is
// compromised, not encrypted, or blocked or being wiped; unknown
// otherwise (states not reported, pending approval).
func googleCompliance(g googleDevice) store.Compliance {
	switch {
	case g.CompromisedState == "COMPROMISED", g.EncryptionState == "NOT_ENCRYPTED",
		g.ManagementState == "BLOCKED", g.ManagementState == "WIPING", g.ManagementState == "WIPED":
		return store.Noncompliant
	case g.CompromisedState == "UNCOMPROMISED" && g.EncryptionState == "ENCRYPTED" && g.ManagementState == "APPROVED":
		return store.Compliant
	}
	return store.Unknown
}

func orUnspecified(s string) string {
	if s == "" {
		return "unspecified"
	}
	return s
}
