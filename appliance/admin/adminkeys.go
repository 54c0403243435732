package admin

import (
	"context"
	"errors"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// AddAdminKey registers an SSH public key (one authorized_keys line) under
// a name; its holder may open the console over SSH.
func (s *Service) AddAdminKey(ctx context.Context, name, line string) (string, error) {
	if err := CheckName("admin", name); err != nil {
		return "", err
	}
	line = strings.TrimSpace(line)
	if strings.Contains(line, "\n") {
		return "", invalid("give one key (one line of a .pub file)")
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", invalid("that is not an SSH public key (give the contents of a .pub file, e.g. ~/.ssh/id_ed25519.pub)")
	}
	switch pk.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
	default:
		return "", invalid("key type %s is not accepted (use ed25519, ecdsa or rsa)", pk.Type())
	}
	if pk.Type() == ssh.KeyAlgoRSA {
		if ck, ok := pk.(ssh.CryptoPublicKey); ok {
			if rk, ok := ck.CryptoPublicKey().(interface{ Size() int }); ok && rk.Size()*8 < 2048 {
				return "", invalid("RSA keys shorter than 2048 bits are refused")
			}
		}
	}
	fp := ssh.FingerprintSHA256(pk)
	k := store.AdminKey{Name: name, PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), Fingerprint: fp}
	err = s.change(ctx, audit.Entry{Reason: "admin_key_add", Detail: "SSH key " + fp + " added for admin " + name}, func(tx *store.Tx) error {
		return tx.AddAdminKey(ctx, k, s.Now())
	})
	if errors.Is(err, store.ErrConflict) {
		return "", invalid("that name or that key is registered already")
	}
	return fp, err
}

// RemoveAdminKey unregisters an admin's key.
func (s *Service) RemoveAdminKey(ctx context.Context, name string) error {
	err := s.change(ctx, audit.Entry{Reason: "admin_key_remove", Detail: "SSH key of admin " + name + " removed"}, func(tx *store.Tx) error {
		return tx.RemoveAdminKey(ctx, name)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("there is no admin %q", name)
	}
	return err
}

// AdminForKey says which admin registered the key with this SHA256
// fingerprint.
func (s *Service) AdminForKey(ctx context.Context, fingerprint string) (string, bool, error) {
	k, err := s.Store.AdminKeyByFingerprint(ctx, fingerprint)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return k.Name, true, nil
}

// As returns a copy of the service acting as another actor (one per
// console session).
func (s *Service) As(actor string) *Service {
	c := *s
	c.Actor = actor
	return &c
}
