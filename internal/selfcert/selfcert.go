// Package selfcert makes and keeps the appliance's own self-signed TLS
// certificates (the LDAP door's, the EAP server's) in the data directory,
// and names a certificate by its SHA-256 fingerprint, the form the
// console shows and pins. It imports nothing of clinicgate but atomicfile.
package selfcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
)

// Names are what a generated certificate names besides this host.
type Names struct {
	DNS []string
	IPs []net.IP
	// LocalAddrs adds this machine's non-loopback, non-link-local
	// addresses (a client that connects by IP then finds it named).
	LocalAddrs bool
}

// Ensure returns the paths of certFile and keyFile in dir, generating a
// self-signed ECDSA P-256 pair named for this host on first use. A pair
// that no longer loads (a power cut on a file system that lost it, a hand
// edit) is made again rather than leaving the appliance unable to start;
// renewed then says so, for the log: whoever trusts the old certificate
// must be given the new one.
func Ensure(dir, certFile, keyFile string, n Names) (certPath, keyPath string, renewed bool, err error) {
	certPath, keyPath = filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	_, statErr := os.Stat(certPath)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		err = generate(certPath, keyPath, n)
	case statErr != nil:
		err = statErr
	default:
		if _, lerr := tls.LoadX509KeyPair(certPath, keyPath); lerr != nil {
			renewed = true
			err = generate(certPath, keyPath, n)
		}
	}
	return certPath, keyPath, renewed, err
}

// Fingerprint is the SHA-256 of the first certificate in a PEM file, as
// FingerprintDER gives it.
func Fingerprint(certPath string) (string, error) {
	b, err := os.ReadFile(certPath)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", fmt.Errorf("%s holds no PEM certificate", certPath)
	}
	return FingerprintDER(blk.Bytes), nil
}

// FingerprintDER is how the appliance names a certificate: the SHA-256 of
// its DER, upper-case hex in colon-separated pairs.
func FingerprintDER(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, sha256.Size)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func generate(certPath, keyPath string, n Names) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "clinicgate"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host, Organization: []string{"clinicgate appliance"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     append([]string{host}, n.DNS...),
		IPAddresses:  append([]net.IP(nil), n.IPs...),
		// Self-signed: the certificate is its own CA, so a client (an
		// EHR, a Wi-Fi profile) can be told to trust exactly this file.
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	if n.LocalAddrs {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && !ip.IP.IsLinkLocalUnicast() {
					tmpl.IPAddresses = append(tmpl.IPAddresses, ip.IP)
				}
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key first: a cut between the two leaves no certificate, which
	// the next start makes again with a new key.
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
