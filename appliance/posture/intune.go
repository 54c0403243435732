package posture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// IntuneSettings are the stored settings of the intune source.
type IntuneSettings struct {
	// TenantID is the Entra tenant (directory) id or its domain.
	TenantID string `json:"tenant_id"`
	// ClientID is the app registration's application (client) id; its
	// client secret is the source's sealed secret.
	ClientID string `json:"client_id"`
	// LoginURL and GraphURL default to Microsoft's public cloud.
	LoginURL string `json:"login_url,omitempty"`
	GraphURL string `json:"graph_url,omitempty"`
	// EthernetFetches bounds how many devices a sync reads one by one for
	// their Ethernet MAC, which Graph leaves out of lists (default 200;
	// -1: never). Each device is read once and remembered while it stays
	// listed, so a large fleet is covered over a few syncs.
	EthernetFetches int `json:"ethernet_fetches,omitempty"`
}

func (s *IntuneSettings) defaults() {
	if s.LoginURL == "" {
		s.LoginURL = "https://login.microsoftonline.com"
	}
	if s.GraphURL == "" {
		s.GraphURL = "https://graph.microsoft.com"
	}
	if s.EthernetFetches == 0 {
		s.EthernetFetches = 200
	}
	s.LoginURL = strings.TrimRight(s.LoginURL, "/")
	s.GraphURL = strings.TrimRight(s.GraphURL, "/")
}

func (s IntuneSettings) validate() error {
	var errs []error
	if s.TenantID == "" || strings.ContainsAny(s.TenantID, "/?# ") {
		errs = append(errs, fmt.Errorf("intune: the tenant %q is not a tenant id or domain (Entra admin center, Overview, Tenant ID)", s.TenantID))
	}
	if s.ClientID == "" {
		errs = append(errs, errors.New("intune: no client id (the app registration's Application (client) ID)"))
	}
	if err := httpsOrLoopback("intune: login_url", s.LoginURL); err != nil {
		errs = append(errs, err)
	}
	if err := httpsOrLoopback("intune: graph_url", s.GraphURL); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Intune lists Intune's managed devices through Microsoft Graph
// (GET /v1.0/deviceManagement/managedDevices, application permission
// DeviceManagementManagedDevices.Read.All), signing in with the client
// credentials grant.
type Intune struct {
	cfg   IntuneSettings
	f     *fetcher
	log   *slog.Logger
	ether map[string][]string // device id → Ethernet MACs, for devices read one by one
}

// intuneSelect are the list's fields. ethernetMacAddress is not among
// them: Graph leaves it out of lists, so it is read per device.
const intuneSelect = "id,deviceName,serialNumber,userPrincipalName,complianceState,isEncrypted,lastSyncDateTime,wiFiMacAddress,azureADDeviceId"

// NewIntune builds the connector (no network traffic).
func NewIntune(cfg IntuneSettings, secret string, client *http.Client, log *slog.Logger) (*Intune, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, errors.New("intune: no client secret (give it with --secret-stdin)")
	}
	f := newFetcher(vendor{
		name: "Microsoft Graph", errorBody: nestedError("code"),
		unauthorized: "check the tenant, client id and secret, and that the secret has not expired",
		forbidden:    "the app needs the application permission DeviceManagementManagedDevices.Read.All with admin consent, and the tenant an Intune licence",
	}, client, clientCredentials(clientcredentials.Config{
		ClientID: cfg.ClientID, ClientSecret: secret,
		TokenURL:  cfg.LoginURL + "/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token",
		Scopes:    []string{"https://graph.microsoft.com/.default"},
		AuthStyle: oauth2.AuthStyleInParams,
	}))
	return &Intune{cfg: cfg, f: f, log: log, ether: map[string][]string{}}, nil
}

// Source implements Connector.
func (*Intune) Source() string { return store.SourceIntune }

type graphDevice struct {
	ID                 string `json:"id"`
	DeviceName         string `json:"deviceName"`
	SerialNumber       string `json:"serialNumber"`
	UserPrincipalName  string `json:"userPrincipalName"`
	ComplianceState    string `json:"complianceState"`
	IsEncrypted        *bool  `json:"isEncrypted"`
	LastSyncDateTime   string `json:"lastSyncDateTime"`
	WiFiMacAddress     string `json:"wiFiMacAddress"`
	EthernetMacAddress string `json:"ethernetMacAddress"`
	AzureADDeviceID    string `json:"azureADDeviceId"`
}

// Devices implements Connector: it follows @odata.nextLink to the end,
// then reads the Ethernet MAC of devices it has not read yet, at most
// EthernetFetches of them.
func (c *Intune) Devices(ctx context.Context) ([]store.Device, error) {
	next := c.cfg.GraphURL + "/v1.0/deviceManagement/managedDevices?$select=" + intuneSelect
	var out []store.Device
	for page := 0; next != ""; page++ {
		if page >= maxPages {
			return nil, errors.New("Microsoft Graph: too many pages")
		}
		var p struct {
			Value    []graphDevice `json:"value"`
			NextLink string        `json:"@odata.nextLink"`
		}
		if err := c.f.getJSON(ctx, next, &p); err != nil {
			return nil, err
		}
		if p.Value == nil {
			return nil, fmt.Errorf("Microsoft Graph: GET %s: a page without a value list", opPath(next))
		}
		for _, g := range p.Value {
			out = append(out, c.record(g))
		}
		if len(out) > MaxDevices {
			return nil, fmt.Errorf("Microsoft Graph lists more than %d devices; clinicgate does not sync that many", MaxDevices)
		}
		if p.NextLink != "" && !sameOrigin(p.NextLink, c.cfg.GraphURL) {
			// The token goes wherever the link points: only to Graph.
			return nil, fmt.Errorf("Microsoft Graph: @odata.nextLink points away from %s", c.cfg.GraphURL)
		}
		next = p.NextLink
	}
	if err := c.ethernet(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Intune) record(g graphDevice) store.Device {
	d := store.Device{
		SourceID: g.ID, Description: g.DeviceName, Serial: g.SerialNumber, UserName: g.UserPrincipalName,
		LastSeen: parseTime(g.LastSyncDateTime),
		MACs:     macs(c.log, store.SourceIntune, g.ID, g.WiFiMacAddress, g.EthernetMacAddress),
	}
	d.Compliance = intuneCompliance(g.ComplianceState)
	d.ComplianceReason = "complianceState=" + g.ComplianceState
	if g.ComplianceState == "" {
		d.ComplianceReason = "complianceState not given"
	}
	if g.IsEncrypted != nil {
		d.ComplianceReason += fmt.Sprintf(", isEncrypted=%t", *g.IsEncrypted)
	}
	return d
}

// intuneCompliance maps Graph's complianceState. inGracePeriod is
// compliant, as Intune's own Conditional Access treats it until the grace
// period ends; conflict (two policies disagree) is noncompliant, since
// Intune could not say the device meets its policies; error, unknown and
// configManager (compliance kept by Configuration Manager) say nothing
// either way.
func intuneCompliance(s string) store.Compliance {
	switch s {
	case "compliant", "inGracePeriod":
		return store.Compliant
	case "noncompliant", "conflict":
		return store.Noncompliant
	}
	return store.Unknown
}

// ethernet adds Ethernet MACs: remembered ones, and up to EthernetFetches
// devices read one by one (GET managedDevices/{id}).
func (c *Intune) ethernet(ctx context.Context, devs []store.Device) error {
	listed := make(map[string]bool, len(devs))
	budget := c.cfg.EthernetFetches
	for i := range devs {
		d := &devs[i]
		listed[d.SourceID] = true
		known, ok := c.ether[d.SourceID]
		if !ok && budget > 0 {
			budget--
			var g graphDevice
			err := c.f.getJSON(ctx, c.cfg.GraphURL+"/v1.0/deviceManagement/managedDevices/"+url.PathEscape(d.SourceID)+"?$select=id,ethernetMacAddress", &g)
			var me *Error
			switch {
			case errors.As(err, &me) && me.Status == http.StatusNotFound:
				// Deleted since the list was read: nothing to add.
			case err != nil:
				return err
			}
			known = macs(c.log, store.SourceIntune, d.SourceID, g.EthernetMacAddress)
			c.ether[d.SourceID] = known
		}
		for _, m := range known {
			if !contains(d.MACs, m) {
				d.MACs = append(d.MACs, m)
			}
		}
	}
	for id := range c.ether {
		if !listed[id] {
			delete(c.ether, id)
		}
	}
	return nil
}

func sameOrigin(link, base string) bool {
	l, err1 := url.Parse(link)
	b, err2 := url.Parse(base)
	return err1 == nil && err2 == nil && l.Scheme == b.Scheme && l.Host == b.Host
}
