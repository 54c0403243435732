package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/replica"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// ReplicaSettingKey holds the off-box replication's settings (JSON, the
// credential sealed); empty or absent: replication is off.
const ReplicaSettingKey = "backup.replica"

const replicaCredContext = "backup-replica-credential"

// ReplicaInput is what the operator gives to turn replication on.
type ReplicaInput struct {
	// Target is user@host:port/path.
	Target string
	// Key (a private key, PEM) or Password logs in.
	Key      secrets.Secret
	Password secrets.Secret
	// KeyFile, instead of Key, names a private key uploaded into
	// IncomingDir over SFTP (the console's way: no shell, no paste of a
	// multi-line key); it is removed once sealed in the store.
	KeyFile string
	// HostKey, when given (SHA256:… or an authorized_keys line), must be
	// the server's; otherwise the key seen now is pinned.
	HostKey string
}

// Replica describes the replication settings, without the credential.
type Replica struct {
	Target          string    `json:"target"`
	HostKey         string    `json:"host_key"`
	HostFingerprint string    `json:"host_fingerprint"`
	Auth            string    `json:"auth"` // "key" or "password"
	SetAt           time.Time `json:"set_at"`
	SetBy           string    `json:"set_by"`
}

type replicaRecord struct {
	Replica
	Sealed []byte `json:"credential"`
}

// SetReplica checks that the appliance can log in and write at the target,
// pins the server's host key, and stores the settings with the credential
// sealed. The daemon picks them up within seconds (it restarts itself to
// apply them).
func (s *Service) SetReplica(ctx context.Context, in ReplicaInput) (Replica, error) {
	t, err := replica.ParseTarget(in.Target)
	if err != nil {
		return Replica{}, invalid("%s", err.Error())
	}
	var uploaded string
	if in.KeyFile != "" {
		if len(in.Key) > 0 {
			return Replica{}, invalid("give the SSH key once")
		}
		name := strings.TrimSpace(in.KeyFile)
		if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
			return Replica{}, invalid("give the name of the key file in %s/ (uploaded over SFTP)", IncomingDir)
		}
		uploaded = filepath.Join(s.Store.Dir(), IncomingDir, name)
		if in.Key, err = readSmall(uploaded); err != nil {
			return Replica{}, invalid("cannot read %s/%s: %v", IncomingDir, name, errors.Unwrap(err))
		}
	}
	if (len(in.Key) > 0) == (len(in.Password) > 0) {
		return Replica{}, invalid("give either an SSH key or a password for %s", t)
	}
	cred := replica.Credentials{Key: in.Key, Password: in.Password}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hk, fp, err := replica.Probe(pctx, t, cred, in.HostKey)
	if err != nil {
		return Replica{}, invalid("%s; nothing changed", err.Error())
	}
	r := replicaRecord{Replica: Replica{Target: t.String(), HostKey: hk, HostFingerprint: fp, Auth: "key", SetAt: s.Now().UTC(), SetBy: s.Actor}}
	secret := in.Key
	if len(in.Password) > 0 {
		r.Auth, secret = "password", in.Password
	}
	if r.Sealed, err = s.Store.Sealer().Seal(secret, replicaCredContext); err != nil {
		return Replica{}, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return Replica{}, err
	}
	e := audit.Entry{Reason: "backup_replicate_set", Detail: fmt.Sprintf("off-box replication to %s (sftp, %s login, host key %s)", r.Target, r.Auth, fp)}
	err = s.change(ctx, e, func(tx *store.Tx) error { return tx.SetSetting(ctx, ReplicaSettingKey, string(b)) })
	if err == nil && uploaded != "" {
		// Sealed in the store now; the plain copy goes.
		_ = os.Remove(uploaded)
	}
	return r.Replica, err
}

// readSmall reads a key file of at most 64 KiB.
func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	return b, err
}

// ReplicaOff stops the off-box replication (the replica itself stays on
// its server).
func (s *Service) ReplicaOff(ctx context.Context) error {
	if _, ok, err := s.ReplicaSettings(ctx); err != nil {
		return err
	} else if !ok {
		return invalid("off-box replication is not on")
	}
	e := audit.Entry{Reason: "backup_replicate_off", Detail: "off-box replication turned off"}
	return s.change(ctx, e, func(tx *store.Tx) error { return tx.SetSetting(ctx, ReplicaSettingKey, "") })
}

// ReplicaSettings returns the replication settings; ok is false when it
// is off.
func (s *Service) ReplicaSettings(ctx context.Context) (Replica, bool, error) {
	r, ok, _, err := s.replicaRecord(ctx)
	return r.Replica, ok, err
}

func (s *Service) replicaRecord(ctx context.Context) (replicaRecord, bool, string, error) {
	v, err := s.Store.Setting(ctx, ReplicaSettingKey)
	if errors.Is(err, store.ErrNotFound) || err == nil && v == "" {
		return replicaRecord{}, false, "", nil
	}
	if err != nil {
		return replicaRecord{}, false, "", err
	}
	var r replicaRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return replicaRecord{}, false, "", fmt.Errorf("the replication settings are unreadable (set them again): %w", err)
	}
	sum := sha256.Sum256([]byte(v))
	return r, true, hex.EncodeToString(sum[:]), nil
}

// ReplicaConfig is the running replication's configuration, the
// credential unsealed, with a version that changes whenever the settings
// do (the daemon compares it). ok is false when replication is off.
func (s *Service) ReplicaConfig(ctx context.Context) (cfg replica.Config, version string, ok bool, err error) {
	r, ok, version, err := s.replicaRecord(ctx)
	if err != nil || !ok {
		return cfg, version, false, err
	}
	if cfg.Target, err = replica.ParseTarget(r.Target); err != nil {
		return cfg, version, false, err
	}
	secret, err := s.Store.Sealer().Open(r.Sealed, replicaCredContext)
	if err != nil {
		return cfg, version, false, fmt.Errorf("the replication credential: %w", err)
	}
	cfg.HostKey = r.HostKey
	if r.Auth == "password" {
		cfg.Cred.Password = secret
	} else {
		cfg.Cred.Key = secret
	}
	return cfg, version, true, nil
}
