package s3

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pandoplatform/pando/internal/blobstore/blobtest"
	"github.com/pandoplatform/pando/internal/blobstore/s3/fakes3"
)

var storeSeq atomic.Int64

// newStore opens a store on a fresh prefix of a fake S3's bucket, with the
// smallest part size S3 allows so that multipart uploads are exercised.
func newStore(t *testing.T, fake *fakes3.Server) *Store {
	t.Helper()
	cfg, err := ParseURL(fmt.Sprintf("s3://pando-blobs/install-%d", storeSeq.Add(1)) +
		"?endpoint=http://" + fake.Endpoint + "&region=" + fakes3.Region + "&path_style=true&part_size_mb=5")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, Options{Getenv: fake.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore_contract(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	blobtest.Run(t, blobtest.Harness{
		New: func(t *testing.T) blobtest.Store { return newStore(t, fake) },
		PutAt: func(t *testing.T, s blobtest.Store, key string, data []byte, at time.Time) {
			t.Helper()
			fake.SetNow(at)
			defer fake.SetNow(time.Time{})
			if _, err := s.Put(t.Context(), key, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
		},
		Leftovers: func(t *testing.T, bs blobtest.Store) []string {
			s := bs.(*Store)
			return append(leftovers(t, s), fake.Objects(t, s.cfg.Bucket, s.cfg.Prefix+"/"+tempDir+"/")...)
		},
		BigSize: 11 << 20, // three parts of 5 MiB
	})
}

// leftovers lists the store's unfinished multipart uploads (the contract
// also counts its temporary objects).
func leftovers(t *testing.T, s *Store) []string {
	t.Helper()
	res, err := s.core.ListMultipartUploads(t.Context(), s.cfg.Bucket, s.cfg.Prefix+"/", "", "", "", 1000)
	if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
		return nil // the fake's answer when the bucket never had an upload
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range res.Uploads {
		out = append(out, u.Key+" "+u.UploadID)
	}
	return out
}

// TestStore_keysLiveUnderThePrefix: installations sharing a bucket each
// see their own blobs only.
func TestStore_keysLiveUnderThePrefix(t *testing.T) {
	fake := fakes3.Start(t, "shared")
	open := func(prefix string) *Store {
		cfg, err := ParseURL("s3://shared/" + prefix + "?endpoint=" + fake.Endpoint + "&insecure=true&region=" + fakes3.Region)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(t.Context(), cfg, Options{Getenv: fake.Getenv})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open("east/pando"), open("west")
	ctx := t.Context()
	if _, err := a.Put(ctx, "droplets/d1", strings.NewReader("east's")); err != nil {
		t.Fatal(err)
	}
	if got := fake.Objects(t, "shared", ""); len(got) != 1 || got[0] != "east/pando/droplets/d1" {
		t.Fatalf("bucket holds %v, want east/pando/droplets/d1", got)
	}
	if ok, err := b.Exists(ctx, "droplets/d1"); ok || err != nil {
		t.Fatalf("the other installation sees the blob: %v, %v", ok, err)
	}
	if _, err := b.Put(ctx, "resources/r", strings.NewReader(strings.Repeat("x", 100))); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Trim(ctx, "resources/", 0); n != 0 || err != nil {
		t.Fatalf("Trim reached the other installation's cache: %d, %v", n, err)
	}
}

func TestNew_failsClearlyAtStart(t *testing.T) {
	fake := fakes3.Start(t, "pando-blobs")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	// No shared credentials file, and an instance metadata service on
	// loopback that refuses: nothing leaves the machine.
	home := t.TempDir()
	env := func(id, secret string) func(string) string {
		return func(k string) string {
			return map[string]string{"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret,
				"HOME": home, "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://" + closed}[k]
		}
	}
	good := env(fakes3.AccessKeyID, fakes3.SecretAccessKey)
	for _, tc := range []struct {
		name, url string
		getenv    func(string) string
		want      string
	}{
		{"missing bucket", "s3://nope?endpoint=http://" + fake.Endpoint, good,
			"blobstore: bucket nope not found at " + fake.Endpoint},
		{"unreachable endpoint", "s3://pando-blobs?endpoint=http://" + closed, good,
			"blobstore: bucket pando-blobs at " + closed + ": endpoint unreachable"},
		{"unknown key", "s3://pando-blobs?endpoint=http://" + fake.Endpoint, env("AKIAWRONG", fakes3.SecretAccessKey),
			"access denied (InvalidAccessKeyId): check the credentials (AWS_ACCESS_KEY_ID"},
		{"wrong secret", "s3://pando-blobs?endpoint=http://" + fake.Endpoint, env(fakes3.AccessKeyID, "not-the-secret"),
			"access denied (SignatureDoesNotMatch)"},
		{"no credentials", "s3://pando-blobs?endpoint=http://" + fake.Endpoint, env("", ""),
			"no credentials: tried AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (not set); the shared credentials file "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseURL(tc.url + "&region=" + fakes3.Region)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			_, err = New(ctx, cfg, Options{Getenv: tc.getenv})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), fakes3.SecretAccessKey) || strings.Contains(err.Error(), "not-the-secret") {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	yes, no := true, false
	good := []struct {
		url  string
		want Config
	}{
		{"s3://bkt", Config{Bucket: "bkt", Endpoint: "s3.amazonaws.com"}},
		{"s3://my-bucket/pando/prod/?endpoint=minio.lan:9000&region=eu-west-1",
			Config{Bucket: "my-bucket", Prefix: "pando/prod", Endpoint: "minio.lan:9000", Region: "eu-west-1"}},
		{"s3://bkt?endpoint=http://127.0.0.1:9000", Config{Bucket: "bkt", Endpoint: "127.0.0.1:9000", Insecure: true}},
		{"s3://bkt?endpoint=https://s3.example.com/", Config{Bucket: "bkt", Endpoint: "s3.example.com"}},
		{"s3://bkt?endpoint=h:1&insecure=true&path_style=true", Config{Bucket: "bkt", Endpoint: "h:1", Insecure: true, PathStyle: &yes}},
		{"s3://bkt?path_style=false&part_size_mb=64", Config{Bucket: "bkt", Endpoint: "s3.amazonaws.com", PathStyle: &no, PartSize: 64 << 20}},
	}
	for _, tc := range good {
		got, err := ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%s): %v", tc.url, err)
			continue
		}
		if got.Bucket != tc.want.Bucket || got.Prefix != tc.want.Prefix || got.Endpoint != tc.want.Endpoint ||
			got.Region != tc.want.Region || got.Insecure != tc.want.Insecure || got.PartSize != tc.want.PartSize ||
			(got.PathStyle == nil) != (tc.want.PathStyle == nil) || got.PathStyle != nil && *got.PathStyle != *tc.want.PathStyle {
			t.Errorf("ParseURL(%s) = %+v, want %+v", tc.url, got, tc.want)
		}
	}
	bad := []struct{ url, want string }{
		{"s3://AKIA:hunter2@bkt?endpoint=h:1", "must not carry credentials"},
		{"gs://b", `unsupported scheme "gs"`},
		{"s3://", "invalid bucket name"},
		{"s3://Bad_Bucket", "invalid bucket name"},
		{"s3://bkt/../x", "invalid key prefix"},
		{"s3://bkt/a//b", "invalid key prefix"},
		{"s3://bkt?endpont=h:1", `unknown parameter "endpont"`},
		{"s3://bkt?insecure=yes please", "insecure="},
		{"s3://bkt?part_size_mb=1", "part_size_mb="},
		{"s3://bkt?part_size_mb=4096", "part_size_mb="},
		{"s3://bkt?endpoint=ftp://h", `endpoint scheme "ftp"`},
		{"s3://bkt?endpoint=h/path", "want HOST[:PORT]"},
		{"s3://bkt?endpoint=", "want HOST[:PORT]"},
	}
	for _, tc := range bad {
		_, err := ParseURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%s) = %v, want an error containing %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%s) repeats the secret: %v", tc.url, err)
		}
	}
}

// TestPut_memoryPerUploadIsOnePart: however large the blob, a Put holds
// at most one part.
func TestPut_memoryPerUploadIsOnePart(t *testing.T) {
	p := &partBuffer{max: 5 << 20}
	src := bytes.NewReader(make([]byte, 23<<20))
	for {
		full, err := p.fill(t.Context(), src)
		if err != nil {
			t.Fatal(err)
		}
		if cap(p.buf) > p.max {
			t.Fatalf("part buffer grew to %d bytes, past the part size %d", cap(p.buf), p.max)
		}
		if !full {
			break
		}
	}
	small := &partBuffer{max: 5 << 20}
	if _, err := small.fill(t.Context(), strings.NewReader("a small resource")); err != nil {
		t.Fatal(err)
	}
	if cap(small.buf) > initialPart {
		t.Fatalf("a 16-byte blob took a %d-byte buffer", cap(small.buf))
	}
}

// TestLeftovers_seesUnfinishedUploads keeps the contract's "nothing left
// behind" honest: an upload nobody completed or aborted is listed.
func TestLeftovers_seesUnfinishedUploads(t *testing.T) {
	s := newStore(t, fakes3.Start(t, "pando-blobs"))
	if _, err := s.core.NewMultipartUpload(t.Context(), s.cfg.Bucket, s.cfg.Prefix+"/droplets/x", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, s); len(left) != 1 {
		t.Fatalf("leftovers = %v, want the unfinished upload", left)
	}
}
