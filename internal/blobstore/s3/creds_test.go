package s3

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

// fakeMetadata is an EC2 instance metadata service on loopback whose role
// has the keys given.
func fakeMetadata(t *testing.T, id, secret string) (url string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	const prefix = "/latest/meta-data/iam/security-credentials/"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			fmt.Fprint(w, "imds-token")
		case r.Header.Get("X-aws-ec2-metadata-token") != "imds-token":
			http.Error(w, "no token", http.StatusUnauthorized)
		case r.URL.Path == prefix:
			fmt.Fprint(w, "pando-role")
		case r.URL.Path == prefix+"pando-role":
			_ = json.NewEncoder(w).Encode(map[string]any{"Code": "Success", "AccessKeyId": id, "SecretAccessKey": secret,
				"Token": "session-token", "Expiration": time.Now().Add(time.Hour)})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// noRoleEnv blanks the variables minio-go reads from the process to find
// a role elsewhere than the metadata service, so no test leaves loopback.
func noRoleEnv(t *testing.T) {
	for _, k := range []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
}

func writeCredentials(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Credentials come from the first place that has them, in the AWS order:
// the environment, the shared credentials file, the instance role; with
// none, the error names every place tried.
func TestNew_credentialsChain(t *testing.T) {
	noRoleEnv(t)
	fake := fakes3.Start(t, "pando-blobs")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	good := fmt.Sprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n", fakes3.AccessKeyID, fakes3.SecretAccessKey)
	goodFile := writeCredentials(t, "[default]\n"+good)
	profileFile := writeCredentials(t, "[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = x\n[pando]\n"+good)
	wrongFile := writeCredentials(t, "[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = x\n")
	goodRole, roleHits := fakeMetadata(t, fakes3.AccessKeyID, fakes3.SecretAccessKey)
	home := t.TempDir() // no .aws in it

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "": New succeeds
	}{
		{"environment", map[string]string{"AWS_ACCESS_KEY_ID": fakes3.AccessKeyID, "AWS_SECRET_ACCESS_KEY": fakes3.SecretAccessKey,
			"AWS_SHARED_CREDENTIALS_FILE": wrongFile}, ""},
		{"environment before the file", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "x",
			"AWS_SHARED_CREDENTIALS_FILE": goodFile}, "InvalidAccessKeyId"},
		{"shared file", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": goodFile, "AWS_EC2_METADATA_SERVICE_ENDPOINT": refused}, ""},
		{"shared file in HOME", map[string]string{"HOME": filepath.Dir(filepath.Dir(writeCredentialsIn(t, good))),
			"AWS_EC2_METADATA_SERVICE_ENDPOINT": refused}, ""},
		{"profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": profileFile, "AWS_PROFILE": "pando"}, ""},
		{"missing profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": goodFile, "AWS_PROFILE": "nope",
			"AWS_EC2_METADATA_SERVICE_ENDPOINT": refused}, "(profile nope"},
		{"file before the role", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": wrongFile, "AWS_EC2_METADATA_SERVICE_ENDPOINT": goodRole},
			"InvalidAccessKeyId"},
		{"instance role", map[string]string{"HOME": home, "AWS_EC2_METADATA_SERVICE_ENDPOINT": goodRole}, ""},
		{"metadata disabled", map[string]string{"HOME": home, "AWS_EC2_METADATA_SERVICE_ENDPOINT": goodRole,
			"AWS_EC2_METADATA_DISABLED": "true"}, "the EC2 instance role (AWS_EC2_METADATA_DISABLED is set)"},
		{"none", map[string]string{"HOME": home, "AWS_EC2_METADATA_SERVICE_ENDPOINT": refused},
			"no credentials: tried AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (not set); the shared credentials file " +
				filepath.Join(home, ".aws", "credentials") + " (profile default) ("},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseURL("s3://pando-blobs?endpoint=http://" + fake.Endpoint + "&region=" + fakes3.Region)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			before := roleHits.Load()
			_, err = New(ctx, cfg, Options{Getenv: func(k string) string { return tc.env[k] }})
			t.Logf("New: %v", err)
			if tc.want == "" && err != nil {
				t.Fatalf("New: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("New = %v; want an error containing %q", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), fakes3.SecretAccessKey) || strings.Contains(err.Error(), "session-token")) {
				t.Fatalf("the error shows a secret: %v", err)
			}
			asked := roleHits.Load() > before
			if wantAsked := tc.name == "instance role"; asked != wantAsked {
				t.Fatalf("the metadata service was asked: %v; want %v", asked, wantAsked)
			}
		})
	}
	t.Run("none names the role tried", func(t *testing.T) {
		cfg, _ := ParseURL("s3://pando-blobs?endpoint=http://" + fake.Endpoint)
		_, err := New(t.Context(), cfg, Options{Getenv: func(k string) string {
			return map[string]string{"HOME": home, "AWS_EC2_METADATA_SERVICE_ENDPOINT": refused}[k]
		}})
		if err == nil || !strings.Contains(err.Error(), "; the EC2 instance role at "+refused+" (") {
			t.Fatalf("New = %v; want it to name the instance role it tried", err)
		}
	})
}

// writeCredentialsIn writes HOME/.aws/credentials in a new HOME and
// returns its path.
func writeCredentialsIn(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".aws", "credentials")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("[default]\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
