package server

import (
	"context"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

// A node whose S3 blobstore cannot be used does not start: it says why
// (the bucket is missing, the keys are refused), never showing the
// secret, and gives back what it had opened.
func TestRunAPI_refusesAnS3BlobstoreItCannotUse(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	for _, tc := range []struct {
		name, url, secret, want string
	}{
		{"missing bucket", "s3://no-such-bucket?endpoint=http://" + fake.Endpoint, fakes3.SecretAccessKey,
			"blobstore: bucket no-such-bucket not found at " + fake.Endpoint},
		{"wrong secret", "s3://pando-blobs?endpoint=http://" + fake.Endpoint, "wrong-secret-123",
			"access denied (SignatureDoesNotMatch)"},
		{"bad URL", "s3://pando-blobs?endpoint=http://" + fake.Endpoint + "&regoin=x", fakes3.SecretAccessKey,
			`--blobstore: unknown parameter "regoin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := platformConfig(t, nil)
			cfg.APIAddr, cfg.RouterAddr, cfg.CellAPIAddr = freeAddr(t), freeAddr(t), freeAddr(t)
			cfg.Blobstore = tc.url + "&region=" + fakes3.Region
			cfg.BlobstoreGetenv = func(k string) string {
				return map[string]string{"AWS_ACCESS_KEY_ID": fakes3.AccessKeyID, "AWS_SECRET_ACCESS_KEY": tc.secret}[k]
			}
			err := RunAPI(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RunAPI = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the error shows the secret: %v", err)
			}
			requireReleased(t, cfg.DataDir, cfg.APIAddr, cfg.RouterAddr)
		})
	}
}
