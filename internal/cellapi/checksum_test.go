package cellapi

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestCheckedBody_failsAtTheEndUnlessTheTrailerMatches(t *testing.T) {
	for _, c := range []struct {
		trailer string
		ok      bool
	}{{sum("droplet"), true}, {sum("droplet!"), false}, {"", false}} {
		b := &checkedBody{rc: io.NopCloser(strings.NewReader("droplet")), h: sha256.New(),
			trailer: http.Header{checksumTrailer: {c.trailer}}, key: "droplets/x"}
		got, err := io.ReadAll(b)
		if (err == nil) != c.ok {
			t.Errorf("trailer %q: read %q, %v; want ok=%v", c.trailer, got, err, c.ok)
		}
	}
}

func TestVerifyingReader_refusesAnUploadThatDoesNotMatch(t *testing.T) {
	for _, c := range []struct {
		trailer string
		ok      bool
	}{{sum("cache"), true}, {sum("other"), false}, {"", false}} {
		v := &verifyingReader{r: strings.NewReader("cache"), h: sha256.New(), want: func() string { return c.trailer }}
		_, err := io.ReadAll(v)
		if (err == nil) != c.ok {
			t.Errorf("trailer %q: %v; want ok=%v", c.trailer, err, c.ok)
		}
	}
}
