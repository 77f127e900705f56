// Package fakes3 runs an S3 endpoint in process on 127.0.0.1 for tests:
// gofakes3's in-memory S3 behind a SigV4 check of the request signature
// with the server's own credentials, as AWS checks them, so tests talk to
// it as a deployment talks to a real bucket (wrong keys are refused).
package fakes3

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Credentials the server accepts.
const (
	AccessKeyID     = "AKIAPANDOTEST0000001"
	SecretAccessKey = "pando-test-secret/0123456789abcdefghijklmn"
	Region          = "us-east-1"
)

// Server is a running fake S3.
type Server struct {
	// Endpoint is HOST:PORT (plain HTTP).
	Endpoint string
	clock    *clock
	backend  *s3mem.Backend
	srv      *httptest.Server
}

// Start runs a fake S3 holding the given (empty) buckets until t ends.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	return StartWith(t, nil, buckets...)
}

// StartWith is Start with wrap (when not nil) in front of the S3 handler:
// it sees every request first, to count them or inject faults.
func StartWith(t testing.TB, wrap func(http.Handler) http.Handler, buckets ...string) *Server {
	t.Helper()
	c := &clock{}
	backend := s3mem.New(s3mem.WithTimeSource(c))
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()), gofakes3.WithTimeSource(c),
		gofakes3.WithTimeSkewLimit(0)) // the clock may be set back; the signature check is ours
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	h := checkSigV4(faker.Server())
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{Endpoint: strings.TrimPrefix(srv.URL, "http://"), clock: c, backend: backend, srv: srv}
}

// Getenv returns the environment a Pando process reads its credentials
// from, with the server's keys.
func (s *Server) Getenv(name string) string {
	switch name {
	case "AWS_ACCESS_KEY_ID":
		return AccessKeyID
	case "AWS_SECRET_ACCESS_KEY":
		return SecretAccessKey
	}
	return ""
}

// SetNow makes the objects stored from now on look last modified at t
// (the zero time: the real clock again).
func (s *Server) SetNow(t time.Time) { s.clock.set(t) }

// Objects lists the keys under prefix in bucket.
func (s *Server) Objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	res, err := s.backend.ListBucket(bucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: true}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range res.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

// PutPlain stores an object as a tool other than Pando would: no user
// metadata (gofakes3 would merge an old object's: it is deleted first).
func (s *Server) PutPlain(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	if _, err := s.backend.DeleteObject(bucket, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.backend.PutObject(bucket, key, map[string]string{"Last-Modified": s.clock.Now().UTC().Format(http.TimeFormat)}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
}

// clock is the fake's time: real unless set.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.at = t; c.mu.Unlock() }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return time.Now()
	}
	return c.at
}

func (c *clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// checkSigV4 refuses requests not signed with the server's credentials
// (AWS Signature Version 4, header form), with S3's error codes.
func checkSigV4(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, msg := verify(r); code != "" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func verify(r *http.Request) (code, msg string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "AccessDenied", "a SigV4 Authorization header is required"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[3] != "s3" {
		return "AuthorizationHeaderMalformed", "bad credential scope"
	}
	if scope[0] != AccessKeyID {
		return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
	}
	if scope[2] != Region {
		return "AuthorizationHeaderMalformed", "the region is wrong; expecting " + Region
	}
	date := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(date, scope[1]) {
		return "AccessDenied", "X-Amz-Date does not match the credential scope"
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-content-sha256") || !slices.Contains(signed, "x-amz-date") {
		return "AccessDenied", "host, x-amz-content-sha256 and x-amz-date must be signed"
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n" + r.URL.EscapedPath() + "\n" + canonicalQuery(r.URL.Query()) + "\n")
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			v = strings.Join(r.Header.Values(h), ",")
		}
		canon.WriteString(h + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n" + r.Header.Get("X-Amz-Content-Sha256"))
	sum := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + date + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + SecretAccessKey)
	for _, part := range append(scope[1:], toSign) {
		key = hmacSHA256(key, part)
	}
	if !hmac.Equal([]byte(hex.EncodeToString(key)), []byte(fields["Signature"])) {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalQuery is SigV4's: names and values URI-encoded, sorted.
func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
