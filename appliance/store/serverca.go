package store

import (
	"context"
	"fmt"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// ServerCA is the CA of the appliance's own TLS server certificates
// (migrations/015_server_ca.sql): its DER certificate, and its PKCS#8 key
// in plaintext here, sealed in the store.
type ServerCA struct {
	Cert      []byte
	Key       secrets.Secret
	CreatedAt time.Time
}

const serverCAKeyContext = "server-ca-key"

// ServerCA reads the server CA, or ErrNotFound before it is made.
func (s *Store) ServerCA(ctx context.Context) (ServerCA, error) {
	var ca ServerCA
	var key []byte
	var at int64
	err := s.q.QueryRowContext(ctx, `SELECT cert, key, created_at FROM server_ca WHERE id = 1`).Scan(&ca.Cert, &key, &at)
	if err != nil {
		return ServerCA{}, mapErr(err)
	}
	if ca.Key, err = s.sealer.Open(key, serverCAKeyContext); err != nil {
		return ServerCA{}, fmt.Errorf("server CA key: %w", err)
	}
	ca.CreatedAt = time.Unix(at, 0).UTC()
	return ca, nil
}

// CreateServerCA stores the server CA, sealing its key; ErrConflict when
// there is one already (another process made it first).
func (tx *Tx) CreateServerCA(ctx context.Context, ca ServerCA, now time.Time) error {
	key, err := tx.s.sealer.Seal(ca.Key, serverCAKeyContext)
	if err != nil {
		return err
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO server_ca (id, cert, key, created_at) VALUES (1, ?, ?, ?)`, ca.Cert, key, now.Unix())
	if err != nil {
		return fmt.Errorf("server CA: %w", mapErr(err))
	}
	return nil
}
