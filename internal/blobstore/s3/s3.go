// Package s3 is the S3-compatible blobstore: pando.Blobstore on a bucket
// (AWS S3, MinIO, Ceph RGW, ...), chosen with --blobstore
// s3://BUCKET[/PREFIX]?endpoint=HOST:PORT so that several API processes
// share one store. A key "droplets/<guid>" is the object
// "<PREFIX>/droplets/<guid>"; a Put lands whole or not at all (one PUT, or
// a multipart upload to "<PREFIX>/.put/<random>" completed only once every
// part is in, then copied into place with its digests).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/blobstore"
)

const (
	// DefaultPartSize is the size of one part of a multipart upload, and
	// so the memory one Put holds: blobs up to it go up in one PUT, larger
	// ones in parts of it (S3 allows 10,000 parts: 156 GiB at 16 MiB).
	DefaultPartSize = 16 << 20
	// minPartSize and maxPartSize are S3's bounds on a part (the last may
	// be smaller); part_size_mb stays within them and a sane memory use.
	minPartSize = 5 << 20
	maxPartSize = 512 << 20
	// maxParts is S3's bound on the parts of one upload.
	maxParts = 10_000
	// defaultEndpoint is AWS S3's, when the URL names none.
	defaultEndpoint = "s3.amazonaws.com"
	// checkTimeout bounds the start-up check of the bucket.
	checkTimeout = 30 * time.Second
)

// Config says where the blobs live. ParseURL builds it from --blobstore.
type Config struct {
	Bucket   string
	Prefix   string // key prefix without slashes at either end; "" for none
	Endpoint string // HOST[:PORT]
	Region   string // "": the client asks the endpoint
	// Insecure speaks plain HTTP to the endpoint (a test or in-cluster
	// MinIO); credentials are then readable on the network.
	Insecure bool
	// PathStyle addresses the bucket as ENDPOINT/BUCKET/KEY; false
	// addresses it as BUCKET.ENDPOINT/KEY; nil lets the client choose
	// (virtual hosts on AWS, paths elsewhere).
	PathStyle *bool
	PartSize  int64 // 0: DefaultPartSize
}

// ParseURL parses s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R with the
// optional insecure=true (or an http:// endpoint), path_style=true|false
// and part_size_mb=N. Credentials never go in the URL: a URL with them is
// refused (without repeating them). Errors name no flag: callers add it.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, errors.New("not a URL (want s3://BUCKET[/PREFIX]?endpoint=HOST:PORT)")
	}
	if u.User != nil {
		return Config{}, errors.New("the URL must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment, or use ~/.aws/credentials or a role")
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("unsupported scheme %q (want s3://BUCKET[/PREFIX]?endpoint=HOST:PORT)", u.Scheme)
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Endpoint: defaultEndpoint}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return Config{}, fmt.Errorf("invalid bucket name %q: %v", cfg.Bucket, err)
	}
	if cfg.Prefix != "" {
		if err := blobstore.ValidateKey(cfg.Prefix); err != nil {
			return Config{}, fmt.Errorf("invalid key prefix %q: letters, digits and . _ / - in non-empty segments not starting with '.'", cfg.Prefix)
		}
	}
	for name, vals := range u.Query() {
		v := vals[len(vals)-1]
		switch name {
		case "endpoint":
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "insecure":
			if cfg.Insecure, err = strconv.ParseBool(v); err != nil {
				return Config{}, fmt.Errorf("insecure=%q: want true or false", v)
			}
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("path_style=%q: want true or false", v)
			}
			cfg.PathStyle = &b
		case "part_size_mb":
			mb, err := strconv.Atoi(v)
			if err != nil || int64(mb)<<20 < minPartSize || int64(mb)<<20 > maxPartSize {
				return Config{}, fmt.Errorf("part_size_mb=%q: want %d to %d", v, minPartSize>>20, maxPartSize>>20)
			}
			cfg.PartSize = int64(mb) << 20
		default:
			return Config{}, fmt.Errorf("unknown parameter %q (want endpoint, region, insecure, path_style, part_size_mb)", name)
		}
	}
	// An endpoint may be given as a URL: http:// means plain HTTP.
	if scheme, rest, ok := strings.Cut(cfg.Endpoint, "://"); ok {
		switch scheme {
		case "http":
			cfg.Insecure = true
		case "https":
		default:
			return Config{}, fmt.Errorf("endpoint scheme %q: want http or https", scheme)
		}
		cfg.Endpoint = strings.TrimSuffix(rest, "/")
	}
	if cfg.Endpoint == "" || strings.ContainsAny(cfg.Endpoint, "/?#@") {
		return Config{}, fmt.Errorf("endpoint %q: want HOST[:PORT]", cfg.Endpoint)
	}
	return cfg, nil
}

// Options are what New takes besides the Config.
type Options struct {
	// Getenv reads where the credentials are (see credentialChain);
	// nil is os.Getenv.
	Getenv func(string) string
	// Transport carries the requests; nil is a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// TrackUse are key prefixes (e.g. "resources/") whose blobs count as
	// used when a Get or Exists finds them, for Trim: see touch.go.
	TrackUse []string
}

// Store is a pando.Blobstore on an S3 bucket.
type Store struct {
	cfg      Config
	core     *minio.Core
	partSize int64
	log      *slog.Logger
	touch    toucher
	trimHold int // Trim's bound on the objects it holds; 0: maxTrimObjects
}

var _ pando.Blobstore = (*Store)(nil)

// New connects to cfg's bucket and checks that it exists and that the
// credentials may use it: the bucket is made beforehand, never by Pando.
func New(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle != nil {
		lookup = minio.BucketLookupDNS
		if *cfg.PathStyle {
			lookup = minio.BucketLookupPath
		}
	}
	transport := opts.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	// Credentials are looked for once here, so that none found fails the
	// start clearly, then again whenever the ones found expire.
	creds := credentials.New(credentialChain(getenv, &http.Client{Transport: transport, Timeout: roleTimeout}))
	if _, err := creds.GetWithContext(&credentials.CredContext{Context: ctx}); err != nil {
		return nil, fmt.Errorf("blobstore: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	core, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       !cfg.Insecure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
		MaxRetries:   3,
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: endpoint %s: %w", cfg.Endpoint, err)
	}
	s := &Store{cfg: cfg, core: core, partSize: cfg.PartSize, log: opts.Logger}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	for _, p := range opts.TrackUse {
		name, err := s.object(strings.TrimSuffix(p, "/"))
		if err != nil {
			return nil, fmt.Errorf("blobstore: track use of %q: %w", p, err)
		}
		s.touch.prefixes = append(s.touch.prefixes, name+"/")
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// check fails clearly when the bucket is missing, the endpoint
// unreachable or the credentials refused. It lists one key under the
// prefix, which Trim needs anyway: unlike HEAD, a GET's error says why.
func (s *Store) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	prefix := ""
	if s.cfg.Prefix != "" {
		prefix = s.cfg.Prefix + "/"
	}
	var err error
	for obj := range s.core.Client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, MaxKeys: 1}) {
		err = obj.Err
		break
	}
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("blobstore: bucket %s not found at %s: create it first", s.cfg.Bucket, s.cfg.Endpoint)
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("blobstore: bucket %s at %s: access denied (%s): check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or the role), the region and the bucket's policy", s.cfg.Bucket, s.cfg.Endpoint, codeOr(resp, "Forbidden"))
	case resp.StatusCode != 0:
		return fmt.Errorf("blobstore: bucket %s at %s: %s (HTTP %d)", s.cfg.Bucket, s.cfg.Endpoint, codeOr(resp, "error"), resp.StatusCode)
	default:
		return fmt.Errorf("blobstore: bucket %s at %s: endpoint unreachable: %w", s.cfg.Bucket, s.cfg.Endpoint, err)
	}
}

func codeOr(resp minio.ErrorResponse, def string) string {
	if resp.Code != "" {
		return resp.Code
	}
	return def
}

// String names the store in logs: no credentials.
func (s *Store) String() string {
	u := "s3://" + s.cfg.Bucket
	if s.cfg.Prefix != "" {
		u += "/" + s.cfg.Prefix
	}
	return u + " at " + s.cfg.Endpoint
}

// object is key's object name.
func (s *Store) object(key string) (string, error) {
	if err := blobstore.ValidateKey(key); err != nil {
		return "", err
	}
	if s.cfg.Prefix == "" {
		return key, nil
	}
	return s.cfg.Prefix + "/" + key, nil
}

// Get opens the blob under key; a missing blob is ENotFound.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	rc, obj, _, err := s.core.GetObject(ctx, s.cfg.Bucket, name, minio.GetObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil, pando.Errorf(pando.ENotFound, "blob %s not found", key)
		}
		return nil, fmt.Errorf("get blob %s: %w", key, err)
	}
	s.used(name, obj)
	return &wholeReader{rc: rc, key: key, left: obj.Size}, nil
}

// wholeReader reads one GET's body and fails unless it delivers the
// object's size exactly, so that a connection cut mid-body never passes
// for a shorter blob (the HTTP client already fails on a short body with
// a Content-Length; this holds whatever the transport and proxies do).
type wholeReader struct {
	rc   io.ReadCloser
	key  string
	left int64 // bytes still due; < 0 when the size is unknown
}

func (w *wholeReader) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	if w.left >= 0 {
		w.left -= int64(n)
		if w.left < 0 {
			return n, fmt.Errorf("get blob %s: more bytes than the object's size", w.key)
		}
		if errors.Is(err, io.EOF) && w.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("get blob %s: %w", w.key, err)
	}
	return n, err
}

func (w *wholeReader) Close() error { return w.rc.Close() }

// Exists reports whether a blob is stored under key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	name, err := s.object(key)
	if err != nil {
		return false, err
	}
	obj, err := s.core.StatObject(ctx, s.cfg.Bucket, name, minio.StatObjectOptions{})
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat blob %s: %w", key, err)
	}
	s.used(name, obj)
	return true, nil
}

// Delete removes the blob under key; a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.core.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	resp := minio.ToErrorResponse(err)
	return resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket"
}
