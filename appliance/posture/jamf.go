package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// JamfSettings are the stored settings of the jamf source.
type JamfSettings struct {
	// URL is the Jamf Pro server, e.g. https://clinic.jamfcloud.com.
	URL string `json:"url"`
	// ClientID is the API client's id; its secret is the source's sealed
	// secret.
	ClientID string `json:"client_id"`
	// Rule is how compliance is decided, since Jamf has no compliance
	// flag of its own: "smart-group:ID" (members of that smart computer
	// group are compliant), or a comma-separated list of checks, all of
	// which must pass: filevault, firewall, os>=VERSION.
	Rule string `json:"rule"`
	// PageSize of the inventory list (default 200).
	PageSize int `json:"page_size,omitempty"`
}

// JamfRule is a parsed compliance rule.
type JamfRule struct {
	SmartGroup string // a smart computer group's id, or ""
	FileVault  bool
	Firewall   bool
	MinOS      []int // nil: no OS check
}

// ParseJamfRule reads a rule (see JamfSettings.Rule).
func ParseJamfRule(s string) (JamfRule, error) {
	var r JamfRule
	s = strings.TrimSpace(s)
	if s == "" {
		return r, errors.New("jamf: no compliance rule: give --rule smart-group:ID, or checks such as filevault,firewall,os>=14.4")
	}
	if id, ok := strings.CutPrefix(s, "smart-group:"); ok {
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return r, fmt.Errorf("jamf: rule %q: the smart group id must be a number (Jamf Pro shows it in the group's URL)", s)
		}
		r.SmartGroup = id
		return r, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(strings.ToLower(part))
		switch {
		case part == "filevault":
			r.FileVault = true
		case part == "firewall":
			r.Firewall = true
		case strings.HasPrefix(part, "os>="):
			v, err := parseVersion(strings.TrimPrefix(part, "os>="))
			if err != nil {
				return r, fmt.Errorf("jamf: rule %q: %w", s, err)
			}
			r.MinOS = v
		default:
			return r, fmt.Errorf("jamf: rule %q: %q is not smart-group:ID, filevault, firewall or os>=VERSION", s, part)
		}
	}
	return r, nil
}

func parseVersion(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(strings.TrimSpace(s), ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a version like 14.4", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// versionAtLeast compares dotted versions numerically (14.10 > 14.4).
func versionAtLeast(have, want []int) bool {
	for i := range max(len(have), len(want)) {
		var h, w int
		if i < len(have) {
			h = have[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if h != w {
			return h > w
		}
	}
	return true
}

// Jamf lists Jamf Pro's computers (GET /api/v1/computers-inventory),
// signing in with an API client (OAuth client credentials).
type Jamf struct {
	cfg  JamfSettings
	rule JamfRule
	f    *fetcher
	log  *slog.Logger
}

// NewJamf builds the connector (no network traffic).
func NewJamf(cfg JamfSettings, secret string, client *http.Client, log *slog.Logger) (*Jamf, error) {
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.PageSize == 0 {
		cfg.PageSize = 200
	}
	var errs []error
	if err := httpsOrLoopback("jamf: url", cfg.URL); err != nil {
		errs = append(errs, err)
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("jamf: no client id (Settings, API Roles and Clients, API Clients)"))
	}
	if secret == "" {
		errs = append(errs, errors.New("jamf: no client secret (give it with --secret-stdin)"))
	}
	if cfg.PageSize < 1 || cfg.PageSize > 2000 {
		errs = append(errs, fmt.Errorf("jamf: page_size %d is outside 1-2000", cfg.PageSize))
	}
	rule, err := ParseJamfRule(cfg.Rule)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f := newFetcher(vendor{
		name: "Jamf Pro", errorBody: jamfError,
		unauthorized: "check the client id and secret, and that the API client is enabled",
		forbidden:    "the API client's role needs Read Computers (and Read Smart Computer Groups for a smart-group rule)",
	}, client, clientCredentials(clientcredentials.Config{
		ClientID: cfg.ClientID, ClientSecret: secret, TokenURL: cfg.URL + "/api/oauth/token", AuthStyle: oauth2.AuthStyleInParams,
	}))
	return &Jamf{cfg: cfg, rule: rule, f: f, log: log}, nil
}

// jamfError reads the Jamf Pro API's {"httpStatus":N,"errors":[{"code","description"}]}.
func jamfError(body []byte) (string, string) {
	var e struct {
		Errors []struct {
			Code        string `json:"code"`
			Description string `json:"description"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return "", ""
	}
	return e.Errors[0].Code, e.Errors[0].Description
}

// Source implements Connector.
func (*Jamf) Source() string { return store.SourceJamf }

type jamfComputer struct {
	ID      string `json:"id"`
	General struct {
		Name            string `json:"name"`
		LastContactTime string `json:"lastContactTime"`
	} `json:"general"`
	Hardware struct {
		SerialNumber  string `json:"serialNumber"`
		MacAddress    string `json:"macAddress"`
		AltMacAddress string `json:"altMacAddress"`
	} `json:"hardware"`
	DiskEncryption struct {
		BootPartitionEncryptionDetails struct {
			PartitionFileVault2State string `json:"partitionFileVault2State"`
		} `json:"bootPartitionEncryptionDetails"`
	} `json:"diskEncryption"`
	Security struct {
		FirewallEnabled *bool `json:"firewallEnabled"`
	} `json:"security"`
	OperatingSystem struct {
		Version string `json:"version"`
	} `json:"operatingSystem"`
	UserAndLocation struct {
		Username string `json:"username"`
		Email    string `json:"email"`
	} `json:"userAndLocation"`
}

// jamfSections are the inventory sections read: the five the rule and
// the identifiers need, and USER_AND_LOCATION for the owner.
var jamfSections = []string{"GENERAL", "HARDWARE", "DISK_ENCRYPTION", "SECURITY", "OPERATING_SYSTEM", "USER_AND_LOCATION"}

// Devices implements Connector.
func (c *Jamf) Devices(ctx context.Context) ([]store.Device, error) {
	var members map[string]bool
	if c.rule.SmartGroup != "" {
		var m struct {
			Members *[]int64 `json:"members"`
		}
		if err := c.f.getJSON(ctx, c.cfg.URL+"/api/v2/computer-groups/smart-group-membership/"+url.PathEscape(c.rule.SmartGroup), &m); err != nil {
			return nil, err
		}
		if m.Members == nil {
			return nil, errors.New("Jamf Pro: the smart group membership has no members list")
		}
		members = make(map[string]bool, len(*m.Members))
		for _, id := range *m.Members {
			members[strconv.FormatInt(id, 10)] = true
		}
	}
	var out []store.Device
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, errors.New("Jamf Pro: too many pages")
		}
		q := url.Values{"section": jamfSections, "page": {strconv.Itoa(page)}, "page-size": {strconv.Itoa(c.cfg.PageSize)}, "sort": {"id:asc"}}
		var p struct {
			TotalCount *int           `json:"totalCount"`
			Results    []jamfComputer `json:"results"`
		}
		if err := c.f.getJSON(ctx, c.cfg.URL+"/api/v1/computers-inventory?"+q.Encode(), &p); err != nil {
			return nil, err
		}
		if p.TotalCount == nil || p.Results == nil {
			return nil, fmt.Errorf("Jamf Pro: page %d has no totalCount or results", page)
		}
		if *p.TotalCount > MaxDevices {
			return nil, fmt.Errorf("Jamf Pro lists more than %d computers; clinicgate does not sync that many", MaxDevices)
		}
		for _, jc := range p.Results {
			out = append(out, c.record(jc, members))
		}
		if len(out) >= *p.TotalCount {
			return out, nil
		}
		if len(p.Results) < c.cfg.PageSize {
			// A short page before the end: the list changed or the
			// answer was cut; a partial list must not be applied.
			return nil, fmt.Errorf("Jamf Pro: page %d has %d computers, %d of %d read so far: the list is incomplete", page, len(p.Results), len(out), *p.TotalCount)
		}
	}
}

func (c *Jamf) record(jc jamfComputer, members map[string]bool) store.Device {
	d := store.Device{
		SourceID: jc.ID, Description: jc.General.Name, Serial: jc.Hardware.SerialNumber,
		UserName: jc.UserAndLocation.Email, LastSeen: parseTime(jc.General.LastContactTime),
		MACs: macs(c.log, store.SourceJamf, jc.ID, jc.Hardware.MacAddress, jc.Hardware.AltMacAddress),
	}
	if d.UserName == "" {
		d.UserName = jc.UserAndLocation.Username
	}
	if c.rule.SmartGroup != "" {
		if members[jc.ID] {
			d.Compliance, d.ComplianceReason = store.Compliant, "member of smart group "+c.rule.SmartGroup
		} else {
			d.Compliance, d.ComplianceReason = store.Noncompliant, "not a member of smart group "+c.rule.SmartGroup
		}
		return d
	}
	var reasons []string
	fail, unknown := false, false
	if c.rule.FileVault {
		st := jc.DiskEncryption.BootPartitionEncryptionDetails.PartitionFileVault2State
		switch st {
		case "ENCRYPTED":
		case "", "UNKNOWN":
			unknown = true
			st = "UNKNOWN"
		default:
			fail = true
		}
		reasons = append(reasons, "partitionFileVault2State="+st)
	}
	if c.rule.Firewall {
		fw := jc.Security.FirewallEnabled
		switch {
		case fw == nil:
			unknown = true
			reasons = append(reasons, "firewallEnabled unknown")
		case !*fw:
			fail = true
			reasons = append(reasons, "firewallEnabled=false")
		default:
			reasons = append(reasons, "firewallEnabled=true")
		}
	}
	if c.rule.MinOS != nil {
		v := jc.OperatingSystem.Version
		have, err := parseVersion(v)
		switch {
		case v == "" || err != nil:
			unknown = true
			reasons = append(reasons, "OS version unknown")
		case !versionAtLeast(have, c.rule.MinOS):
			fail = true
			reasons = append(reasons, "OS "+v+" is older than "+joinVersion(c.rule.MinOS))
		default:
			reasons = append(reasons, "OS "+v)
		}
	}
	switch {
	case fail:
		d.Compliance = store.Noncompliant
	case unknown:
		d.Compliance = store.Unknown
	default:
		d.Compliance = store.Compliant
	}
	d.ComplianceReason = strings.Join(reasons, ", ")
	return d
}

func joinVersion(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ".")
}
