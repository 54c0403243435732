package eap

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/clinicgate/clinicgate/internal/reload"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// ClientCAFile is the default file of EAP-TLS trust anchors in the data
// directory: when it is there, EAP-TLS is on.
const ClientCAFile = "eap-client-ca.pem"

// LoadClientCAs reads a PEM bundle of EAP-TLS trust anchors. Every
// certificate in it must be a CA: a device certificate put there by
// mistake would otherwise trust nothing, silently.
func LoadClientCAs(path string) (*x509.CertPool, []*x509.Certificate, error) {
	all, err := selfcert.ReadCerts(path)
	if err != nil {
		return nil, nil, fmt.Errorf("EAP-TLS trust anchors: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range all {
		if !c.IsCA {
			return nil, nil, fmt.Errorf("EAP-TLS trust anchors %s: %q is not a CA certificate; put the CA that issues the devices' certificates there", path, c.Subject.String())
		}
		pool.AddCert(c)
	}
	return pool, all, nil
}

// ParseCRLs reads revocation lists in PEM ("X509 CRL" blocks) or one in DER.
func ParseCRLs(b []byte) ([]*x509.RevocationList, error) {
	var crls []*x509.RevocationList
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", len(crls)+1, err)
		}
		crls = append(crls, crl)
	}
	if len(crls) > 0 {
		return crls, nil
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, errors.New("neither a PEM CRL nor a DER one: " + err.Error())
	}
	return []*x509.RevocationList{crl}, nil
}

// CRLFile is a CRL file, read again when it changes (its size or time),
// at most once a second. A file that breaks after a good read keeps the
// last good lists in force and is logged once; one that cannot be read at
// start is an error.
type CRLFile struct {
	path string
	v    *reload.Value[crlState]
}

type crlState struct {
	mod  time.Time
	size int64
	crls []*x509.RevocationList
	err  error // the last read's, when it failed after a good one
}

// OpenCRLFile reads path once, failing if it cannot.
func OpenCRLFile(ctx context.Context, path string, log *slog.Logger) (*CRLFile, error) {
	return openCRLFile(ctx, path, log, nil)
}

func openCRLFile(ctx context.Context, path string, log *slog.Logger, now func() time.Time) (*CRLFile, error) {
	f := &CRLFile{path: path}
	f.v = reload.New(time.Second, now, func(_ context.Context, last crlState, have bool) (crlState, error) {
		st, err := os.Stat(path)
		if err == nil && have && st.ModTime().Equal(last.mod) && st.Size() == last.size {
			return last, nil
		}
		var crls []*x509.RevocationList
		if err == nil {
			var b []byte
			if b, err = os.ReadFile(path); err == nil {
				crls, err = ParseCRLs(b)
			}
		}
		if err != nil {
			if have {
				// Keep revoking what was revoked, and say so once.
				if last.err == nil {
					log.Error("the EAP-TLS CRL file changed and cannot be read; the last good one stays in force until it is fixed", "file", path, "err", err)
				}
				last.err = err
				return last, nil
			}
			return crlState{}, fmt.Errorf("EAP-TLS CRL %s: %w", path, err)
		}
		if have {
			log.Info("EAP-TLS CRL reloaded", "file", path, "crls", len(crls))
		}
		return crlState{mod: st.ModTime(), size: st.Size(), crls: crls}, nil
	})
	if _, err := f.v.Get(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// CRLs is the current lists, for Server.CRLs.
func (f *CRLFile) CRLs() ([]*x509.RevocationList, error) {
	st, err := f.v.Get(context.Background())
	return st.crls, err
}
