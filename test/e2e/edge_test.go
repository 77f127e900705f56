package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogin_wrongAdminPasswordsDoNotLockOutTheServersMachine: five wrong
// admin passwords from this machine, then `pando login` still works (a
// stranger elsewhere gets locked out; the operator on the server never).
func TestLogin_wrongAdminPasswordsDoNotLockOutTheServersMachine(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	for i := range 5 {
		r := s.pando(t, "login", "-a", "http://"+s.apiAddr, "-u", "admin", "-p", "wrong-password")
		if r.code == 0 {
			t.Fatalf("login %d with a wrong password succeeded\n%s", i+1, r)
		}
	}
	r := s.mustPando(t, "login", "-a", "http://"+s.apiAddr, "-u", "admin", "-p", s.password)
	requireOutput(t, r, "OK")
	s.mustPando(t, "apps")
}

// TestKill9DuringUpload_restartLeavesNoTempFile: a server killed while a
// package upload streams in leaves the partial upload in <data-dir>/tmp;
// the next start removes it.
func TestKill9DuringUpload_restartLeavesNoTempFile(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	tmpDir := filepath.Join(s.dataDir, "tmp")

	var spaces struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	s.api(t, "/v3/spaces", &spaces)
	if len(spaces.Resources) == 0 {
		t.Fatal("no space")
	}
	app := s.apiPost(t, "/v3/apps", fmt.Sprintf(`{"name":"killed-upload","relationships":{"space":{"data":{"guid":%q}}}}`, spaces.Resources[0].GUID))
	pkg := s.apiPost(t, "/v3/packages", fmt.Sprintf(`{"type":"bits","relationships":{"app":{"data":{"guid":%q}}}}`, app))

	// An upload of 64 MiB that sends its first 8 MiB and then stalls,
	// with the server writing it to disk.
	token, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	const boundary = "pandoe2eboundary"
	req, err := http.NewRequest("POST", "http://"+s.apiAddr+"/v3/packages/"+pkg+"/upload", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 64 << 20
	req.Header.Set("Authorization", "bearer "+token)
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	uploadDone := make(chan struct{})
	go func() {
		defer close(uploadDone)
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	go func() {
		fmt.Fprintf(pw, "--%s\r\nContent-Disposition: form-data; name=\"bits\"; filename=\"app.zip\"\r\nContent-Type: application/zip\r\n\r\n", boundary)
		pw.Write(bytes.Repeat([]byte("z"), 8<<20))
	}()
	eventually(t, "the partial upload is on disk in "+tmpDir, waitTimeout, func() (bool, string) {
		size, seen := dirSize(tmpDir)
		return size >= 8<<20, seen
	})

	s.killAll()
	pw.CloseWithError(io.ErrClosedPipe)
	<-uploadDone
	if size, seen := dirSize(tmpDir); size < 8<<20 {
		t.Fatalf("after kill -9 the temp dir holds %d bytes, want the partial upload:\n%s", size, seen)
	}

	logAt := s.logSize()
	if err := s.start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if size, seen := dirSize(tmpDir); size != 0 || seen != "" {
		t.Errorf("after the restart the temp dir still holds %d bytes:\n%s", size, seen)
	}
	var strays []string
	filepath.WalkDir(filepath.Join(s.dataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".put-") {
			strays = append(strays, p)
		}
		return nil
	})
	if len(strays) > 0 {
		t.Errorf("in-flight blob files among the blobs: %v", strays)
	}
	if log := s.logTail(logAt, 64<<10); !strings.Contains(log, "removed temp files a previous run left") {
		t.Errorf("the restart did not report the sweep; log:\n%s", log)
	}
}

// apiPost POSTs a JSON body to the API as admin and returns the created
// resource's guid.
func (s *server) apiPost(t *testing.T, path, body string) string {
	t.Helper()
	token, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", "http://"+s.apiAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		GUID string `json:"guid"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil || out.GUID == "" {
		t.Fatalf("POST %s: %s: %s", path, resp.Status, b)
	}
	return out.GUID
}

// dirSize is the bytes of the regular files under dir, and their list.
func dirSize(dir string) (int64, string) {
	var size int64
	var seen strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if info.Mode().IsRegular() {
			size += info.Size()
		}
		fmt.Fprintf(&seen, "%s %d\n", p, info.Size())
		return nil
	})
	return size, seen.String()
}
