package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// MaxOverride bounds a compliance override: an exception an admin makes
// by hand must end, at the latest after a month.
const MaxOverride = 30 * 24 * time.Hour

// FindDevices finds inventory records by reference: a record id ("12" or
// "#12"), a MAC address in any form a NAS writes it, a serial number, or
// an owner's user name.
func (s *Service) FindDevices(ctx context.Context, ref string) ([]store.Device, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, invalid("name a device: its number, a MAC address, a serial number or its owner")
	}
	if id, err := strconv.ParseInt(strings.TrimPrefix(ref, "#"), 10, 64); err == nil && id > 0 {
		d, err := s.Store.DeviceByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalid("there is no device #%d", id)
		}
		return []store.Device{d}, err
	}
	if mac, err := policy.NormalizeMAC(ref); err == nil {
		ds, err := s.Store.DevicesByMAC(ctx, mac)
		if err == nil && len(ds) == 0 {
			return nil, invalid("no device has the MAC address %s", mac)
		}
		return ds, err
	}
	all, err := s.Store.Devices(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []store.Device
	for _, d := range all {
		if strings.EqualFold(d.Serial, ref) || strings.EqualFold(d.UserName, ref) || strings.EqualFold(d.Description, ref) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, invalid("no device matches %q (try its number from `clinicgate device list`)", ref)
	}
	return out, nil
}

// Inventory lists the inventory, every source or one.
func (s *Service) Inventory(ctx context.Context, source string) ([]store.Device, error) {
	if source == "" {
		return s.Store.Devices(ctx, "")
	}
	known := false
	for _, k := range store.Sources {
		known = known || k == source
	}
	if !known {
		return nil, invalid("source %q is not one of %s", source, strings.Join(store.Sources, ", "))
	}
	return s.Store.SourceDevices(ctx, source)
}

// OverrideDevice sets an admin's override of a record's compliance
// (store.Compliant or store.Noncompliant) for a while, or clears it (state
// ""). The reason is required and audited; an override to noncompliant
// ends the device's sessions where the client sends CoA (docs/coa.md).
func (s *Service) OverrideDevice(ctx context.Context, id int64, state store.Compliance, d time.Duration, reason string) error {
	reason = strings.TrimSpace(reason)
	switch state {
	case store.Compliant, store.Noncompliant:
		if d <= 0 || d > MaxOverride {
			return invalid("an override lasts from a minute to 30 days (--for), not %s", d)
		}
		if reason == "" {
			return invalid("say why (--reason): the audit keeps it")
		}
	case "":
	default:
		return invalid("an override is compliant, noncompliant or clear, not %q", state)
	}
	if len(reason) > 200 || strings.ContainsFunc(reason, unicode.IsControl) {
		return invalid("the reason must be at most 200 characters without control characters")
	}
	dev, err := s.Store.DeviceByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return invalid("there is no device #%d", id)
	}
	if err != nil {
		return err
	}
	now := s.Now()
	until := now.Add(d)
	detail := fmt.Sprintf("device #%d (%s %s): override cleared", id, dev.Source, dev.SourceID)
	if state != "" {
		detail = fmt.Sprintf("device #%d (%s %s): override %s until %s: %s", id, dev.Source, dev.SourceID, state, until.UTC().Format(time.RFC3339), reason)
	}
	return s.change(ctx, audit.Entry{User: dev.UserName, Device: dev.MAC, Reason: "device_override", Detail: detail}, func(tx *store.Tx) error {
		if err := tx.SetDeviceOverride(ctx, id, state, until, s.Actor, reason, now); err != nil {
			return err
		}
		if state != store.Noncompliant {
			return nil
		}
		return tx.AddPostureEvent(ctx, store.PostureEvent{Kind: store.EventDeviceNoncompliant, DeviceID: id,
			UserName: dev.UserName, MACs: dev.MACs, Detail: "override by " + s.Actor + ": " + reason}, now)
	})
}

// PostureEvents lists the newest posture events and what handling them did.
func (s *Service) PostureEvents(ctx context.Context, n int) ([]store.PostureEvent, error) {
	return s.Store.RecentPostureEvents(ctx, n)
}
