package msgauth_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/clinicgate/clinicgate/internal/msgauth"
)

// The known answers below were computed outside this package, from the RFC
// text (Python's hmac and hashlib), so a mistake here cannot hide itself
// behind a test that uses the same code to sign and to check.
const (
	secret = "testing123"
	// An Access-Request, identifier 7, authenticator 00 01 … 0f,
	// User-Name "alice", Message-Authenticator zeroed.
	reqHex   = "0107002d000102030405060708090a0b0c0d0e0f0107616c696365501200000000000000000000000000000000"
	reqMAHex = "3591b0543f7b9321b84619363a178438"
	// Its Access-Accept: Message-Authenticator first, Reply-Message "hi",
	// Response Authenticator in place.
	respHex   = "0207002ada5da15756f687dfeb3970bbd5be5ebf501291f1b8ad10c16aa7c89fc5b72ab454cd12046869"
	respMAHex = "91f1b8ad10c16aa7c89fc5b72ab454cd"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignMatchesTheRFC(t *testing.T) {
	b := unhex(t, reqHex)
	if err := msgauth.Sign(b, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(b[len(b)-16:]), reqMAHex; got != want {
		t.Fatalf("got Message-Authenticator %s, want %s", got, want)
	}
	if err := msgauth.Verify(b, []byte(secret)); err != nil {
		t.Fatalf("a request signed as the RFC says was refused: %v", err)
	}
	if err := msgauth.Verify(b, []byte("another secret")); !errors.Is(err, msgauth.ErrMismatch) {
		t.Fatalf("another secret: got %v, want ErrMismatch", err)
	}
	b[10] ^= 1 // an altered authenticator
	if err := msgauth.Verify(b, []byte(secret)); !errors.Is(err, msgauth.ErrMismatch) {
		t.Fatalf("an altered packet: got %v, want ErrMismatch", err)
	}
}

func TestSignResponseMatchesTheRFC(t *testing.T) {
	req, err := radius.Parse(unhex(t, reqHex), []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	resp := req.Response(radius.CodeAccessAccept)
	if err := rfc2865.ReplyMessage_SetString(resp, "hi"); err != nil {
		t.Fatal(err)
	}
	b, err := msgauth.SignResponse(resp, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != respHex {
		t.Fatalf("got response\n%s, want\n%s", got, respHex)
	}
	if err := msgauth.VerifyResponse(b, req.Authenticator[:], []byte(secret)); err != nil {
		t.Fatalf("the response does not verify: %v", err)
	}
	if err := msgauth.VerifyResponse(b, make([]byte, 16), []byte(secret)); !errors.Is(err, msgauth.ErrMismatch) {
		t.Fatalf("against another request: got %v, want ErrMismatch", err)
	}
	if got := hex.EncodeToString(b[22:38]); got != respMAHex {
		t.Fatalf("got %s, want %s", got, respMAHex)
	}
}

func TestSignRequestSurvivesEncode(t *testing.T) {
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	copy(p.Authenticator[:], unhex(t, "000102030405060708090a0b0c0d0e0f"))
	p.Identifier = 7
	if err := rfc2865.UserName_SetString(p, "alice"); err != nil {
		t.Fatal(err)
	}
	p.Add(rfc2869.MessageAuthenticator_Type, bytes.Repeat([]byte{0xff}, 16)) // a stale one is replaced
	if err := msgauth.SignRequest(p); err != nil {
		t.Fatal(err)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b[len(b)-16:]); got != reqMAHex {
		t.Fatalf("got %s, want %s", got, reqMAHex)
	}
}

func TestMalformedIsRefused(t *testing.T) {
	good := unhex(t, reqHex)
	dup := append(bytes.Clone(good), 80, 18)
	dup = append(dup, make([]byte, 16)...)
	dup[3] = byte(len(dup))
	short := bytes.Clone(good[:len(good)-1])
	short[len(short)-16] = 17
	short[3] = byte(len(short))
	none := bytes.Clone(good[:27])
	none[3] = 27
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"none":           {none, msgauth.ErrMissing},
		"two":            {dup, msgauth.ErrMultiple},
		"wrong length":   {short, msgauth.ErrLength},
		"truncated":      {good[:10], msgauth.ErrMalformed},
		"length too big": {append([]byte{1, 7, 0xff, 0xff}, good[4:]...), msgauth.ErrMalformed},
		"attribute zero": {append(bytes.Clone(good[:20]), append([]byte{1, 0}, good[22:]...)...), msgauth.ErrMalformed},
	} {
		if err := msgauth.Verify(c.b, []byte(secret)); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}
