package server

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pandoplatform/pando"

	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	s3blob "github.com/pandoplatform/pando/internal/blobstore/s3"
	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// copy-data refuses a data dir a server holds, saying to stop it, and
// copies nothing; once the lock is free it copies the blobs, and a second
// run finds them all there.
func TestCopyData_refusesWhileTheServerRunsThenCopiesTheBlobs(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	dataDir := t.TempDir()
	blobs, err := fsblob.New(filepath.Join(dataDir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Put(t.Context(), "droplets/d-1", strings.NewReader("a droplet")); err != nil {
		t.Fatal(err)
	}
	url := "s3://pando-blobs/moved?endpoint=http://" + fake.Endpoint + "&region=" + fakes3.Region
	var out bytes.Buffer
	cfg := CopyDataConfig{DataDir: dataDir, Blobstore: url, BlobstoreGetenv: fake.Getenv, Out: &out}

	release, err := lockDataDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	err = CopyData(t.Context(), cfg)
	release()
	if err == nil || !strings.Contains(err.Error(), "stop the server first") || !strings.Contains(err.Error(), "in use by another pando process") {
		t.Fatalf("copy-data while the data dir is locked: %v", err)
	}
	if objs := fake.Objects(t, "pando-blobs", ""); len(objs) != 0 {
		t.Fatalf("copy-data refused but the bucket holds %v", objs)
	}

	if err := CopyData(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	s3cfg, err := s3blob.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := s3blob.New(t.Context(), s3cfg, s3blob.Options{Getenv: fake.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := dst.Get(t.Context(), "droplets/d-1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "a droplet" {
		t.Fatalf("droplets/d-1 in S3 = %q", got)
	}
	if !strings.Contains(out.String(), "1 blobs uploaded and read back, 0 already there") {
		t.Errorf("first run said:\n%s", out.String())
	}
	out.Reset()
	if err := CopyData(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 blobs uploaded and read back, 1 already there") {
		t.Errorf("second run said:\n%s", out.String())
	}
}

// Bad requests are refused before anything is read.
func TestCopyData_badRequests(t *testing.T) {
	dataDir := t.TempDir()
	for _, tc := range []struct {
		cfg  CopyDataConfig
		want string
	}{
		{CopyDataConfig{DataDir: dataDir}, "nothing to copy"},
		{CopyDataConfig{DataDir: dataDir, DatabaseURL: "mysql://x/y"}, "--to-database-url: want a postgres://"},
		{CopyDataConfig{DataDir: dataDir, Blobstore: "s3://bucket?regoin=x"}, `--to-blobstore: unknown parameter "regoin"`},
		{CopyDataConfig{DataDir: filepath.Join(dataDir, "none"), Blobstore: "s3://bucket"}, "no data dir at"},
		{CopyDataConfig{DataDir: dataDir, DatabaseURL: "postgres://127.0.0.1:1/x"}, "no CCDB at"},
	} {
		err := CopyData(t.Context(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CopyData(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "ccdb.sqlite")); !os.IsNotExist(err) {
		t.Errorf("copy-data made a CCDB in the data dir (%v)", err)
	}
}

// With both targets, a blob copy that fails leaves the database empty, so
// the same command run again copies the CCDB and the rest of the blobs.
func TestCopyData_bothResumeAfterABlobFailure(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	fake := fakes3.StartWith(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && refuse.Load() {
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>denied</Message></Error>`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, "pando-blobs")
	dbURL := pgtest.URL(t)
	dataDir := t.TempDir()
	ccdb, err := sqlstore.Open(t.Context(), filepath.Join(dataDir, "ccdb.sqlite"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ccdb.CreateOrg(t.Context(), pando.Org{GUID: "org-1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	ccdb.Close()
	blobs, err := fsblob.New(filepath.Join(dataDir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Put(t.Context(), "droplets/d-1", strings.NewReader("a droplet")); err != nil {
		t.Fatal(err)
	}
	url := "s3://pando-blobs/moved?endpoint=http://" + fake.Endpoint + "&region=" + fakes3.Region
	cfg := CopyDataConfig{DataDir: dataDir, DatabaseURL: dbURL, Blobstore: url, BlobstoreGetenv: fake.Getenv}

	if err := CopyData(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "copy the blobstore") {
		t.Fatalf("copy-data with the bucket refusing uploads: %v, want a blobstore error", err)
	}
	refuse.Store(false)
	var out bytes.Buffer
	cfg.Out = &out
	if err := CopyData(t.Context(), cfg); err != nil {
		t.Fatalf("the same copy-data run again: %v\n%s", err, out.String())
	}
	dst, err := sqlstore.Open(t.Context(), dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if o, err := dst.GetOrg(t.Context(), "org-1"); err != nil || o.Name != "one" {
		t.Fatalf("org-1 in PostgreSQL = %+v, %v", o, err)
	}
	if objs := fake.Objects(t, "pando-blobs", ""); len(objs) != 1 {
		t.Fatalf("bucket holds %v, want the one blob", objs)
	}
}
