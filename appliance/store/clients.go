package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// Client is a system that asks clinicgate questions: a RADIUS NAS (Wi-Fi
// controller, VPN gateway) or, later, an LDAP client.
type Client struct {
	ID        int64
	Name      string
	Door      string       // "radius"
	Prefix    netip.Prefix // source address or network, masked
	Secret    secrets.Secret
	Policy    policy.Policy
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

func secretContext(door, name string) string { return "client-secret:" + door + ":" + name }

func (s *Store) scanClient(sc interface{ Scan(...any) error }) (Client, error) {
	var c Client
	var addr, pol string
	var sealed []byte
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.Name, &c.Door, &addr, &sealed, &pol, &c.Version, &created, &updated); err != nil {
		return Client{}, mapErr(err)
	}
	var err error
	if c.Prefix, err = netip.ParsePrefix(addr); err != nil {
		return Client{}, fmt.Errorf("client %q: stored address %q: %w", c.Name, addr, err)
	}
	c.Policy = policy.Default()
	if err := json.Unmarshal([]byte(pol), &c.Policy); err != nil {
		return Client{}, fmt.Errorf("client %q: stored policy: %w", c.Name, err)
	}
	plain, err := s.sealer.Open(sealed, secretContext(c.Door, c.Name))
	if err != nil {
		return Client{}, fmt.Errorf("client %q: shared secret: %w", c.Name, err)
	}
	c.Secret = plain
	c.CreatedAt, c.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return c, nil
}

const clientCols = `id, name, door, address, secret, policy, version, created_at, updated_at`

// Clients lists every client of a door ("" for all), by name.
func (s *Store) Clients(ctx context.Context, door string) ([]Client, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+clientCols+` FROM clients WHERE ? = '' OR door = ? ORDER BY name`, door, door)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		c, err := s.scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// ClientByName finds a client by name, ignoring case.
func (s *Store) ClientByName(ctx context.Context, name string) (Client, error) {
	return s.scanClient(s.q.QueryRowContext(ctx, `SELECT `+clientCols+` FROM clients WHERE name = ?`, name))
}

// ClientByName finds a client inside the transaction.
func (tx *Tx) ClientByName(ctx context.Context, name string) (Client, error) {
	return tx.s.scanClient(tx.q.QueryRowContext(ctx, `SELECT `+clientCols+` FROM clients WHERE name = ?`, name))
}

// CreateClient inserts c, sealing its secret.
func (tx *Tx) CreateClient(ctx context.Context, c Client, now time.Time) (int64, error) {
	sealed, pol, err := tx.s.encodeClient(c)
	if err != nil {
		return 0, err
	}
	res, err := tx.q.ExecContext(ctx, `INSERT INTO clients (name, door, address, secret, policy, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.Name, c.Door, c.Prefix.Masked().String(), sealed, pol, now.Unix(), now.Unix())
	if err != nil {
		return 0, fmt.Errorf("client %q: %w", c.Name, mapErr(err))
	}
	return res.LastInsertId()
}

// UpdateClient writes c's address, secret and policy if its version is
// still c.Version.
func (tx *Tx) UpdateClient(ctx context.Context, c Client, now time.Time) error {
	sealed, pol, err := tx.s.encodeClient(c)
	if err != nil {
		return err
	}
	res, err := tx.q.ExecContext(ctx, `UPDATE clients SET address = ?, secret = ?, policy = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
		c.Prefix.Masked().String(), sealed, pol, now.Unix(), c.ID, c.Version)
	if err != nil {
		return fmt.Errorf("client %q: %w", c.Name, mapErr(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("client %q: %w", c.Name, ErrConflict)
	}
	return nil
}

func (s *Store) encodeClient(c Client) ([]byte, string, error) {
	if c.Door == "" {
		return nil, "", fmt.Errorf("client %q: no door", c.Name)
	}
	sealed, err := s.sealer.Seal(c.Secret, secretContext(c.Door, c.Name))
	if err != nil {
		return nil, "", err
	}
	pol, err := json.Marshal(c.Policy)
	if err != nil {
		return nil, "", err
	}
	return sealed, string(pol), nil
}

// DeleteClient removes a client by name.
func (tx *Tx) DeleteClient(ctx context.Context, name string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM clients WHERE name = ?`, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ClientsVersion is a number that changes whenever any client row changes
// (in this process or another), so a cache can tell when to reload.
func (s *Store) ClientsVersion(ctx context.Context) (string, error) {
	var n, sum, last int64
	err := s.q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(version * 31 + id), 0), COALESCE(MAX(updated_at), 0) FROM clients`).Scan(&n, &sum, &last)
	if err != nil {
		return "", mapErr(err)
	}
	return fmt.Sprintf("%d/%d/%d", n, sum, last), nil
}
