package admin

import (
	"context"

	"github.com/clinicgate/clinicgate/appliance"
)

// Settings returns every site setting, as stored or else its default.
func (s *Service) Settings(ctx context.Context) (map[string]string, error) {
	return appliance.SiteValues(ctx, s.Store)
}
