package cc

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

func TestUploadLimiter_boundsEachUserAndThePlatform(t *testing.T) {
	l := newUploadLimiter(2, 3)
	a1, err := l.acquire("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire("alice"); pando.ErrorKindOf(err) != pando.EUnavailable || !strings.Contains(err.Error(), "You have 2 package uploads in progress") {
		t.Fatalf("alice's third upload: %v", err)
	}
	b1, err := l.acquire("bob")
	if err != nil {
		t.Fatalf("bob's first upload: %v", err)
	}
	if _, err := l.acquire("carol"); pando.ErrorKindOf(err) != pando.EUnavailable || !strings.Contains(err.Error(), "The platform is processing 3 package uploads") {
		t.Fatalf("carol's upload past the platform's bound: %v", err)
	}
	b1()
	b1() // a second release gives nothing back twice
	if _, err := l.acquire("carol"); err != nil {
		t.Fatalf("carol after bob's upload ended: %v", err)
	}
	if _, err := l.acquire("dave"); err == nil {
		t.Fatal("dave's upload past the platform's bound after a double release was taken")
	}
	a1()
	if _, err := l.acquire("alice"); err != nil {
		t.Fatalf("alice after one of hers ended: %v", err)
	}
}

// One user's uploads past maxUploadsPerUser get an immediate 503 that
// says why, while the ones in progress go on (each may write GBs to the
// data dir's disk).
func TestUpload_oneUsersParallelUploadsAreBounded(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	app := e.applyAndFind("parallel")
	ctype, body := ctUpload(t, []byte("[]"), ctRawZip(t, ctZipEntry{Name: "a.txt", Mode: 0o644, Body: "a"}))

	var wg sync.WaitGroup
	var pipes []*io.PipeWriter
	results := make(chan int, maxUploadsPerUser)
	for range maxUploadsPerUser {
		guid := e.newPackage(app)
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body, func(r *http.Request) {
				r.ContentLength = -1
				r.Body = pr
			})
			results <- r.Status
		}()
		pw.Write(body[:10]) // the upload has begun, and stalls
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.api.uploads.mu.Lock()
		n := e.api.uploads.n
		e.api.uploads.mu.Unlock()
		if n == maxUploadsPerUser {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads in progress: %d, want %d", n, maxUploadsPerUser)
		}
		time.Sleep(5 * time.Millisecond)
	}
	guid := e.newPackage(app)
	e.expectCFError(e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body), http.StatusServiceUnavailable, "",
		"You have 4 package uploads in progress, the most one user may have at once: retry when one of them has finished")

	for _, pw := range pipes {
		pw.Write(body[10:])
		pw.Close()
	}
	wg.Wait()
	close(results)
	for status := range results {
		if status != http.StatusCreated && status != http.StatusOK {
			t.Errorf("an upload within the bound answered %d", status)
		}
	}
	e.expect(e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body), http.StatusOK)
}
