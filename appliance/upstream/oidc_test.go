package upstream

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

func oidcConn(t *testing.T, l *upstreamtest.LemonLDAP, secret string, mut func(*OIDCConfig)) *OIDC {
	t.Helper()
	c := OIDCConfig{Issuer: l.Issuer, ClientID: l.ClientID, Scopes: []string{"openid", "profile", "email", "groups"}}
	if mut != nil {
		mut(&c)
	}
	b, _ := json.Marshal(c)
	o, err := NewOIDC("llng", string(b), secrets.Secret(secret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

func TestOIDCPasswordGrantAgainstLemonLDAP(t *testing.T) {
	l := upstreamtest.StartLemonLDAP(t)
	o := oidcConn(t, l, l.ClientSecret, nil)
	if err := o.Probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	id, err := o.Verify(t.Context(), "dwho", secrets.Secret("dwho"))
	if err != nil {
		t.Fatalf("dwho: %v\n%s", err, l.Log())
	}
	if id.Name != "dwho" || !slices.Contains(id.Groups, "timelords") {
		t.Fatalf("got %+v, want dwho with the timelords group from the groups claim", id)
	}
	if _, err := o.Verify(t.Context(), "dwho", secrets.Secret("wrong")); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: got %v, want ErrBadCredentials (invalid_grant)", err)
	}
	if _, err := o.Verify(t.Context(), "dwho", nil); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("empty password: got %v", err)
	}
}

func TestOIDCWrongClientSecretExplained(t *testing.T) {
	l := upstreamtest.StartLemonLDAP(t)
	_, err := oidcConn(t, l, "not-the-secret", nil).Verify(t.Context(), "dwho", secrets.Secret("dwho"))
	if !errors.Is(err, ErrUpstreamRefused) || !strings.Contains(err.Error(), "client id or secret") {
		t.Fatalf("got %v, want the client secret named", err)
	}
}

func TestOIDCUnreachableIssuer(t *testing.T) {
	c := OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "x", TimeoutMS: 500}
	b, _ := json.Marshal(c)
	o, err := NewOIDC("down", string(b), secrets.Secret("s"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Verify(t.Context(), "dwho", secrets.Secret("dwho")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
}

// sign makes a compact JWS over claims with key (nil key: alg "none").
func sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	if key == nil {
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return hdr + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestForgedIDTokensRefused checks the ID-token verification against the
// real provider's discovery document and JWKS, with tokens made here: the
// provider's own key signs the ones that must pass on signature alone.
func TestForgedIDTokensRefused(t *testing.T) {
	l := upstreamtest.StartLemonLDAP(t)
	o := oidcConn(t, l, l.ClientSecret, nil)
	verifier, _, err := o.discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": l.Issuer, "aud": l.ClientID, "sub": "dwho", "preferred_username": "dwho",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	if _, err := verifier.Verify(t.Context(), sign(t, l.Key, l.KeyID, good())); err != nil {
		t.Fatalf("a well-formed token signed by the provider did not verify: %v", err)
	}
	for name, tok := range map[string]string{
		"bad signature":  sign(t, other, l.KeyID, good()),
		"unknown key id": sign(t, other, "attacker", good()),
		"wrong audience": sign(t, l.Key, l.KeyID, with("aud", "someone-else")),
		"wrong issuer":   sign(t, l.Key, l.KeyID, with("iss", "https://evil.example")),
		"expired":        sign(t, l.Key, l.KeyID, with("exp", now.Add(-time.Hour).Unix())),
		"alg none":       sign(t, nil, "", good()),
		"garbage":        "not.a.token",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := verifier.Verify(t.Context(), tok); err == nil {
				t.Fatal("got a verified token, want a refusal")
			}
		})
	}
}

func TestOIDCConfigRefusesNonsense(t *testing.T) {
	for name, c := range map[string]OIDCConfig{
		"no issuer":     {ClientID: "x"},
		"plain http":    {Issuer: "http://login.example.com", ClientID: "x"},
		"no client":     {Issuer: "https://login.example.com"},
		"no openid":     {Issuer: "https://login.example.com", ClientID: "x", Scopes: []string{"profile"}},
		"silly timeout": {Issuer: "https://login.example.com", ClientID: "x", TimeoutMS: 1},
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := json.Marshal(c)
			if _, err := NewOIDC("x", string(b), nil); err == nil {
				t.Fatal("got no error")
			}
		})
	}
}
