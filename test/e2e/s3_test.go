package e2e

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

// s3Blobstore starts an S3 endpoint holding the bucket pando-blobs and
// returns the server flags and environment that put a server's blobs in
// it under prefix.
func s3Blobstore(t *testing.T, prefix string) (fake *fakes3.Server, args, env []string) {
	t.Helper()
	fake = fakes3.Start(t, "pando-blobs")
	args = []string{"--blobstore", "s3://pando-blobs/" + prefix + "?endpoint=http://" + fake.Endpoint + "&region=" + fakes3.Region}
	env = []string{"AWS_ACCESS_KEY_ID=" + fakes3.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + fakes3.SecretAccessKey}
	return fake, args, env
}

// requireBlobsInBucket checks that the app's package and droplet are
// objects under prefix and that the data dir holds no blob.
func requireBlobsInBucket(t *testing.T, s *server, fake *fakes3.Server, prefix string) {
	t.Helper()
	objects := fake.Objects(t, "pando-blobs", prefix+"/")
	kinds := map[string]int{}
	for _, o := range objects {
		kinds[strings.Split(strings.TrimPrefix(o, prefix+"/"), "/")[0]]++
	}
	if kinds["packages"] == 0 || kinds["droplets"] == 0 {
		t.Fatalf("the bucket holds %v, want the app's package and droplet under %s/", objects, prefix)
	}
	var local []string
	filepath.WalkDir(filepath.Join(s.dataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			local = append(local, p)
		}
		return nil
	})
	if len(local) != 0 {
		t.Fatalf("blobs in the data dir with an S3 blobstore: %v", local)
	}
}

// With --blobstore s3://..., a push's package and droplet land in the
// bucket, not the data dir; the local cell downloads them from there, and
// after a restart the app is served again from the bucket's droplet.
func TestS3Blobstore_serverKeepsAppsInTheBucketAcrossARestart(t *testing.T) {
	t.Parallel()
	fake, args, env := s3Blobstore(t, "server")
	s := ownServerWithEnv(t, env, args...)
	const name = "on-s3"
	r := s.mustPando(t, "push", name, "-p", staticSite(t, "from the bucket\n"))
	requireOutput(t, r, `Exit status 0`, `Uploading droplet`, `web: 1 of 1 instances running`)
	if body := s.curlRoute(t, name+".localhost", "/"); body != "from the bucket\n" {
		t.Fatalf("GET / = %q", body)
	}
	requireBlobsInBucket(t, s, fake, "server")

	if err := s.stop(); err != nil {
		t.Fatalf("stop the server: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("start the server again: %v", err)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != "from the bucket\n" {
		t.Fatalf("after the restart GET / = %q", body)
	}
}

// A cell joined to a `pando api` on S3 gets its package and droplet
// through the API's cell listener, streamed from the bucket.
func TestS3Blobstore_joinedCellStagesAndRunsFromTheBucket(t *testing.T) {
	t.Parallel()
	fake, args, env := s3Blobstore(t, "api")
	s := ownNode(t, "api", env, func(*server) []string { return args })
	s.joinCell(t, "cell-s3", "127.0.0.2", "--memory", "4G")
	const name = "joined-s3"
	r := s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "128M")
	requireOutput(t, r, `Exit status 0`, `Uploading droplet`, `web: 1 of 1 instances running`)
	if body := s.curlRoute(t, name+".localhost", "/"); body != "binary app index=0 greeting=\n" {
		t.Fatalf("GET / through the api's router = %q", body)
	}
	requireBlobsInBucket(t, s, fake, "api")
}
