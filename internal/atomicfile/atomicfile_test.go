package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range ents {
		ns = append(ns, e.Name())
	}
	return ns
}

func TestWrite_leavesContentAndMode(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	cases := []struct {
		name  string
		perm  fs.FileMode
		old   []byte // content already there, if any
		data  []byte
		opts  []Option
		write bool // through Write's callback, in small pieces
	}{
		{name: "secret", perm: 0o600, data: []byte("key\n")},
		{name: "shared", perm: 0o644, data: []byte("cert\n")},
		{name: "executable", perm: 0o755, data: []byte("#!/bin/sh\n")},
		{name: "empty", perm: 0o600, data: []byte{}},
		{name: "replaces", perm: 0o644, old: []byte("an older and longer content"), data: []byte("new")},
		{name: "replace tightens mode", perm: 0o600, old: []byte("was 0644"), data: []byte("now 0600")},
		{name: "durable", perm: 0o600, data: []byte("synced"), opts: []Option{Durable()}},
		{name: "stream", perm: 0o644, data: big, write: true},
		{name: "durable stream", perm: 0o640, data: big, write: true, opts: []Option{Durable()}},
		{name: "prefix", perm: 0o600, data: []byte("x"), opts: []Option{TempPrefix(".put-")}},
		{name: "no replace of nothing", perm: 0o600, data: []byte("first"), opts: []Option{NoReplace(), Durable()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			if tc.old != nil {
				if err := os.WriteFile(path, tc.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if tc.write {
				err = Write(path, tc.perm, func(w io.Writer) error {
					for b := tc.data; len(b) > 0; b = b[min(len(b), 1000):] {
						if _, err := w.Write(b[:min(len(b), 1000)]); err != nil {
							return err
						}
					}
					return nil
				}, tc.opts...)
			} else {
				err = WriteFile(path, tc.data, tc.perm, tc.opts...)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("content %d bytes %.20q, want %d bytes %.20q", len(got), got, len(tc.data), tc.data)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != tc.perm {
				t.Errorf("mode %v, want %v", st.Mode(), tc.perm)
			}
			if ns := names(t, dir); !slices.Equal(ns, []string{"file"}) {
				t.Errorf("dir holds %q, want only the file", ns)
			}
		})
	}
}

func TestWrite_failureLeavesOldFileAndNoTemp(t *testing.T) {
	errWriter := errors.New("writer failed")
	cases := []struct {
		name    string
		opts    []Option
		write   func(io.Writer) error
		wantErr error // matched with errors.Is; nil: any error
	}{
		{name: "writer fails at once", write: func(io.Writer) error { return errWriter }, wantErr: errWriter},
		{name: "writer fails midway", wantErr: errWriter, write: func(w io.Writer) error {
			if _, err := w.Write(bytes.Repeat([]byte("half"), 10000)); err != nil {
				return err
			}
			return fmt.Errorf("read the rest: %w", errWriter)
		}},
		{name: "durable writer fails", opts: []Option{Durable()}, wantErr: errWriter, write: func(w io.Writer) error {
			io.WriteString(w, "partial")
			return errWriter
		}},
		{name: "no replace of a file", opts: []Option{NoReplace()}, wantErr: fs.ErrExist, write: func(w io.Writer) error {
			_, err := io.WriteString(w, "would replace")
			return err
		}},
		{name: "writer panics", write: func(w io.Writer) error {
			io.WriteString(w, "partial")
			panic("writer panicked")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, existing := range []bool{true, false} {
				if !existing && tc.wantErr == fs.ErrExist {
					continue // nothing to refuse
				}
				dir := t.TempDir()
				path := filepath.Join(dir, "state.json")
				old := []byte(`{"old":true}`)
				if existing {
					if err := os.WriteFile(path, old, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				err := func() (err error) {
					defer func() {
						if p := recover(); p != nil {
							err = fmt.Errorf("panic: %v", p)
						}
					}()
					return Write(path, 0o644, tc.write, tc.opts...)
				}()
				if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("existing=%v: error %v, want %v", existing, err, tc.wantErr)
				}
				want := []string(nil)
				if existing {
					want = []string{"state.json"}
					got, rerr := os.ReadFile(path)
					if rerr != nil || !bytes.Equal(got, old) {
						t.Errorf("old file after failed write: %q, %v; want %q", got, rerr, old)
					}
					if st, _ := os.Stat(path); st == nil || st.Mode() != 0o600 {
						t.Errorf("old file's mode changed: %v", st)
					}
				}
				if ns := names(t, dir); !slices.Equal(ns, want) {
					t.Errorf("existing=%v: dir holds %q, want %q (no temp file)", existing, ns, want)
				}
			}
		})
	}
}

func TestWrite_missingDirIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "file")
	err := WriteFile(path, []byte("x"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want one matching fs.ErrNotExist", err)
	}
}

func TestWrite_tempDirHoldsTheTempFile(t *testing.T) {
	dir, tmpDir := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "blob")
	var during []string
	err := Write(path, 0o644, func(w io.Writer) error {
		during = names(t, tmpDir)
		_, err := io.WriteString(w, "blob")
		return err
	}, TempDir(tmpDir), TempPrefix(".put-"), Durable())
	if err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 || len(during[0]) <= len(".put-") || during[0][:5] != ".put-" {
		t.Errorf("temp dir during the write holds %q, want one .put-* file", during)
	}
	if ns := names(t, tmpDir); len(ns) != 0 {
		t.Errorf("temp dir after the write holds %q", ns)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "blob" {
		t.Errorf("file holds %q, %v", got, err)
	}
}

// Writers racing on one path, with readers watching: every read and the
// final file hold one writer's whole content, and no temp file remains.
func TestWrite_concurrentWritersLeaveOneWholeContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "table.json")
	const writers, rounds, size = 8, 10, 64 << 10
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	whole := func(b []byte) bool {
		return len(b) == size && bytes.Count(b, b[:1]) == size
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds+1)
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil || !whole(b) {
				errs <- fmt.Errorf("a reader saw %d bytes (%v), not one whole content", len(b), err)
				return
			}
		}
	}()
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := WriteFile(path, contents[i], 0o644); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !whole(b) {
		t.Errorf("final file: %d bytes, %v: not one writer's whole content", len(b), err)
	}
	if ns := names(t, dir); !slices.Equal(ns, []string{"table.json"}) {
		t.Errorf("dir holds %q, want only the file", ns)
	}
}

func TestWrite_noReplaceLetsOneOfManyWin(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	const writers = 8
	var wg sync.WaitGroup
	results := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = WriteFile(path, []byte{byte('a' + i)}, 0o600, NoReplace())
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range results {
		switch {
		case err == nil && won >= 0:
			t.Errorf("writers %d and %d both created the file", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want fs.ErrExist", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer created the file")
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, []byte{byte('a' + won)}) {
		t.Errorf("file holds %q, %v; want the winner's %q", b, err, []byte{byte('a' + won)})
	}
	if ns := names(t, dir); !slices.Equal(ns, []string{"key"}) {
		t.Errorf("dir holds %q, want only the key", ns)
	}
}
