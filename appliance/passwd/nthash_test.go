package passwd

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"layeh.com/radius/rfc2759"
)

// TestNTHash uses RFC 2759 §9.2's example ("clientPass") and the empty
// password's well-known hash; passwords outside ASCII (a surrogate pair
// among them) must hash their UTF-16 form, as layeh's encoder makes it.
func TestNTHash(t *testing.T) {
	for _, tc := range []struct{ pw, want string }{
		{"clientPass", "44EBBA8D5312B8D611474411F56989AE"},
		{"", "31D6CFE0D16AE931B73C59D7E0C089C0"},
	} {
		got := NTHash([]byte(tc.pw))
		if h := strings.ToUpper(hex.EncodeToString(got[:])); h != tc.want {
			t.Errorf("NTHash(%q): got %s, want %s", tc.pw, h, tc.want)
		}
	}
	for _, pw := range []string{"Müller-Lüdenscheidt", "пароль 1", "key 🔑 2026"} {
		u, err := rfc2759.ToUTF16([]byte(pw))
		if err != nil {
			t.Fatal(err)
		}
		got := NTHash([]byte(pw))
		if want := rfc2759.NTPasswordHash(u); !bytes.Equal(got[:], want) {
			t.Errorf("NTHash(%q): got %x, want %x", pw, got, want)
		}
	}
}
