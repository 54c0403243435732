package posture

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// Build makes the connector of a stored source, without network traffic:
// an error means its settings cannot work.
func Build(m store.MDMSource, client *http.Client, log *slog.Logger) (Connector, error) {
	switch m.Name {
	case store.SourceIntune:
		var c IntuneSettings
		if err := strictJSON(m.Settings, &c); err != nil {
			return nil, fmt.Errorf("intune settings: %w", err)
		}
		return NewIntune(c, string(m.Secret), client, log)
	case store.SourceJamf:
		var c JamfSettings
		if err := strictJSON(m.Settings, &c); err != nil {
			return nil, fmt.Errorf("jamf settings: %w", err)
		}
		return NewJamf(c, string(m.Secret), client, log)
	case store.SourceGoogle:
		var c GoogleSettings
		if err := strictJSON(m.Settings, &c); err != nil {
			return nil, fmt.Errorf("google settings: %w", err)
		}
		return NewGoogle(c, m.Secret, client, log)
	}
	return nil, fmt.Errorf("unknown MDM %q: use intune, jamf or google", m.Name)
}

func strictJSON(s string, out any) error {
	if s == "" {
		s = "{}"
	}
	return json.Unmarshal([]byte(s), out)
}

// A connector holds a credential and an access token: a careless log line
// shows only which MDM it is.

// LogValue implements slog.LogValuer.
func (c *Intune) LogValue() slog.Value { return slog.StringValue("intune connector") }

// LogValue implements slog.LogValuer.
func (c *Jamf) LogValue() slog.Value { return slog.StringValue("jamf connector") }

// LogValue implements slog.LogValuer.
func (c *Google) LogValue() slog.Value { return slog.StringValue("google connector") }
