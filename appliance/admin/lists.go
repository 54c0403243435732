package admin

import (
	"context"
	"errors"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// HasTOTP reports whether the user has enrolled a TOTP factor.
func (s *Service) HasTOTP(ctx context.Context, userID int64) (bool, error) {
	_, err := s.Store.TOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// UserDevices lists the devices bound to one user (every device when
// user is empty).
func (s *Service) UserDevices(ctx context.Context, user string) ([]store.Device, error) {
	return s.Store.Devices(ctx, user)
}

// AdminKeys lists the admins who may open the console over SSH.
func (s *Service) AdminKeys(ctx context.Context) ([]store.AdminKey, error) {
	return s.Store.AdminKeys(ctx)
}
