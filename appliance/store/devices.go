package store

import (
	"context"
	"fmt"
	"time"
)

// Device is a MAC address bound to a user.
type Device struct {
	ID          int64
	MAC         string // canonical aa:bb:cc:dd:ee:ff
	UserID      int64
	UserName    string
	Description string
	CreatedAt   time.Time
}

// AddDevice binds a MAC address to a user.
func (tx *Tx) AddDevice(ctx context.Context, d Device, now time.Time) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `INSERT INTO devices (mac, user_id, description, created_at) VALUES (?, ?, ?, ?)`, d.MAC, d.UserID, d.Description, now.Unix())
	if err != nil {
		return 0, fmt.Errorf("device %s: %w", d.MAC, mapErr(err))
	}
	return res.LastInsertId()
}

// DeleteDevice removes a device by MAC address.
func (tx *Tx) DeleteDevice(ctx context.Context, mac string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM devices WHERE mac = ?`, mac)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeviceByMAC finds a device by canonical MAC address.
func (s *Store) DeviceByMAC(ctx context.Context, mac string) (Device, error) {
	var d Device
	var created int64
	err := s.q.QueryRowContext(ctx, `SELECT d.id, d.mac, d.user_id, u.name, d.description, d.created_at FROM devices d JOIN users u ON u.id = d.user_id WHERE d.mac = ?`, mac).
		Scan(&d.ID, &d.MAC, &d.UserID, &d.UserName, &d.Description, &created)
	if err != nil {
		return Device{}, mapErr(err)
	}
	d.CreatedAt = time.Unix(created, 0).UTC()
	return d, nil
}

// Devices lists devices, all or those of one user (by name).
func (s *Store) Devices(ctx context.Context, userName string) ([]Device, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT d.id, d.mac, d.user_id, u.name, d.description, d.created_at FROM devices d JOIN users u ON u.id = d.user_id WHERE ? = '' OR u.name = ? ORDER BY u.name, d.mac`, userName, userName)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		var created int64
		if err := rows.Scan(&d.ID, &d.MAC, &d.UserID, &d.UserName, &d.Description, &created); err != nil {
			return nil, mapErr(err)
		}
		d.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, d)
	}
	return out, mapErr(rows.Err())
}
