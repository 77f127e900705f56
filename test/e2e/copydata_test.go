package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// An operator moves a server from SQLite and the data dir's blobs to
// PostgreSQL and S3: copy-data is refused while the server runs; once it
// is stopped the copy runs, and the server started on PostgreSQL and S3
// with the same data dir serves the app pushed before, still logged in
// (the UAA key stayed in the data dir), and a restart of the app runs the
// droplet from the bucket.
func TestCopyData_movesAServerToPostgreSQLAndS3(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	const name = "moved"
	host := name + ".localhost"
	s.mustPando(t, "push", name, "-p", staticSite(t, "moved to postgres and s3\n"))
	if body := s.curlRoute(t, host, "/"); body != "moved to postgres and s3\n" {
		t.Fatalf("GET / = %q", body)
	}
	guid := s.appGUID(t, name)

	dsn := pgtest.URL(t)
	fake, s3args, s3env := s3Blobstore(t, "moved")
	copyArgs := []string{"server", "copy-data", "--to-database-url", dsn, "--to-blobstore", s3args[1]}
	s.cliEnv = append(s.cliEnv, s3env...)
	r := s.pando(t, copyArgs...)
	if r.code == 0 || !strings.Contains(r.stderr, "stop the server first") {
		t.Fatalf("copy-data while the server runs: %s", r)
	}

	if err := s.stop(); err != nil {
		t.Fatalf("stop the server: %v", err)
	}
	r = s.pando(t, append(copyArgs, "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "would copy apps: 1 rows") || !strings.Contains(r.stdout, "would copy droplets/") {
		t.Fatalf("dry run: %s", r)
	}
	if objs := fake.Objects(t, "pando-blobs", ""); len(objs) != 0 {
		t.Fatalf("the dry run uploaded %v", objs)
	}
	r = s.pando(t, copyArgs...)
	if r.code != 0 || !strings.Contains(r.stdout, "CCDB copied") || !strings.Contains(r.stdout, "blobstore copied") {
		t.Fatalf("copy-data: %s", r)
	}
	kinds := map[string]bool{}
	for _, o := range fake.Objects(t, "pando-blobs", "moved/") {
		kinds[strings.Split(strings.TrimPrefix(o, "moved/"), "/")[0]] = true
	}
	if !kinds["packages"] || !kinds["droplets"] {
		t.Fatalf("the bucket holds %v, want the app's package and droplet", slices.Sorted(func(yield func(string) bool) {
			for k := range kinds {
				if !yield(k) {
					return
				}
			}
		}))
	}
	// A second run resumes: the database is refused as filled, the blobs
	// are all there.
	r = s.pando(t, "server", "copy-data", "--to-blobstore", s3args[1])
	if r.code != 0 || !strings.Contains(r.stdout, "0 blobs uploaded and read back") {
		t.Fatalf("second blob copy: %s", r)
	}

	s.args = append(s.args, "--database-url", dsn, "--blobstore", s3args[1])
	s.env = append(s.env, s3env...)
	if err := s.start(); err != nil {
		t.Fatalf("start the server on PostgreSQL and S3: %v", err)
	}
	answers := func(status int, body string) bool { return status == 200 && body == "moved to postgres and s3\n" }
	s.waitRoute(t, host, "/", "the app answering on PostgreSQL and S3", answers)
	if got := s.appGUID(t, name); got != guid {
		t.Fatalf("after the move the app is %s, want %s", got, guid)
	}
	s.mustPando(t, "restart", name)
	s.waitRoute(t, host, "/", "the app answering after a restart from the bucket's droplet", answers)
}
