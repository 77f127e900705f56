package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// copySharedSecrets copies the files the docs tell operators to copy.
func copySharedSecrets(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range SharedSecretFiles() {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A replica with other secrets than the database's is told which differ
// and what to copy; one with a copy of the first's agrees.
func TestSecretsMismatch_namesTheSecretThatDiffersAndWhatToCopy(t *testing.T) {
	first := Config{DataDir: t.TempDir(), AdminPassword: "pw"}
	if _, _, _, err := ensureSharedSecrets(first); err != nil {
		t.Fatal(err)
	}
	recorded, err := secretsFingerprint(first.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(recorded, "pw") {
		t.Fatalf("the fingerprint shows the admin password: %s", recorded)
	}

	copied := Config{DataDir: filepath.Join(t.TempDir(), "copy"), AdminPassword: "pw"}
	copySharedSecrets(t, first.DataDir, copied.DataDir)
	if _, _, _, err := ensureSharedSecrets(copied); err != nil {
		t.Fatal(err)
	}
	mine, err := secretsFingerprint(copied.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := secretsMismatch(copied.DataDir, mine, recorded); err != nil {
		t.Fatalf("a copy of the first's secrets: %v", err)
	}

	for _, tc := range []struct {
		name, file string
		want, not  []string
	}{
		{"uaa key", "uaa-key.pem", []string{"uaa-key.pem (the UAA token signing key)"}, []string{"secrets.key ("}},
		{"admin password", "admin-password", []string{"admin-password (the admin password)"}, []string{"uaa-key.pem ("}},
		// The others are keyed by the encryption key: only it is named.
		{"encryption key", "secrets.key", []string{"secrets.key (the key that encrypts"}, []string{"uaa-key.pem ("}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := Config{DataDir: filepath.Join(t.TempDir(), "other"), AdminPassword: "pw"}
			copySharedSecrets(t, first.DataDir, other.DataDir)
			if err := os.Remove(filepath.Join(other.DataDir, tc.file)); err != nil {
				t.Fatal(err)
			}
			if tc.file == "admin-password" {
				other.AdminPassword = "another"
			}
			if _, _, _, err := ensureSharedSecrets(other); err != nil {
				t.Fatal(err)
			}
			mine, err := secretsFingerprint(other.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			err = secretsMismatch(other.DataDir, mine, recorded)
			if err == nil {
				t.Fatal("no mismatch reported")
			}
			msg := err.Error()
			for _, w := range append(tc.want, "copy "+strings.Join(SharedSecretFiles(), ", "), other.DataDir) {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q: %s", w, msg)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(msg, n) {
					t.Errorf("the error names %q, which is the same: %s", n, msg)
				}
			}
		})
	}
}

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A second `pando api` on the leader's database does not exit: it logs
// that it is a standby naming the leader, serves nothing, and takes over
// (serving the same CCDB, the same admin) once the leader stops.
func TestRunAPI_secondOnOneDatabaseIsAStandbyUntilTheLeaderStops(t *testing.T) {
	dsn := pgtest.URL(t)
	readyA := make(chan [2]string, 1)
	cfgA := platformConfig(t, readyA)
	cfgA.DatabaseURL = dsn
	leader, addrsA := boot(t, func(ctx context.Context) error { return RunAPI(ctx, cfgA) }, readyA)
	c := login(t, addrsA[0], cfgA.AdminPassword)
	if a := c.ask(http.MethodPost, "/v3/organizations", `{"name":"made-on-the-leader"}`); a.status != http.StatusCreated {
		t.Fatalf("create org: %+v", a)
	}

	readyB := make(chan [2]string, 1)
	cfgB := platformConfig(t, readyB)
	cfgB.DatabaseURL = dsn
	cfgB.AdminPassword = ""
	copySharedSecrets(t, cfgA.DataDir, cfgB.DataDir)
	var logs logBuffer
	cfgB.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	standby := start(t, func(ctx context.Context) error { return RunAPI(ctx, cfgB) })
	awaitStandby(t, "the standby", standby, &logs, readyB)
	if line := logs.String(); !strings.Contains(line, "api "+addrsA[0]) {
		t.Errorf("the standby does not name the leader (api %s): %s", addrsA[0], line)
	}

	// A standby stopped while it waits returns nil (a clean stop).
	cfgC := platformConfig(t, make(chan [2]string, 1))
	cfgC.DatabaseURL, cfgC.AdminPassword = dsn, ""
	copySharedSecrets(t, cfgA.DataDir, cfgC.DataDir)
	var logsC logBuffer
	cfgC.Logger = slog.New(slog.NewTextHandler(&logsC, nil))
	third := start(t, func(ctx context.Context) error { return RunAPI(ctx, cfgC) })
	awaitStandby(t, "the third", third, &logsC, nil)
	third.stop(t)

	leader.stop(t)
	var addrsB [2]string
	select {
	case addrsB = <-readyB:
	case err := <-standby.done:
		standby.done = nil
		t.Fatalf("the standby returned instead of taking over: %v", err)
	case <-time.After(bootTimeout):
		t.Fatalf("the standby did not take over within %s; logs:\n%s", bootTimeout, logs.String())
	}
	// The same admin (admin-password copied) sees what the leader made.
	c = login(t, addrsB[0], cfgA.AdminPassword)
	var orgs struct {
		Resources []struct{ Name string } `json:"resources"`
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addrsB[0]+"/v3/organizations?names=made-on-the-leader", nil)
	if status := c.do(req, &orgs); status != http.StatusOK || len(orgs.Resources) != 1 {
		t.Fatalf("the new leader's orgs: %d %+v", status, orgs)
	}
	standby.stop(t)
}

// A `pando api` whose data dir holds other secrets than the database's
// refuses to start, saying which and what to copy.
func TestRunAPI_refusesOtherSecretsThanTheDatabases(t *testing.T) {
	dsn := pgtest.URL(t)
	readyA := make(chan [2]string, 1)
	cfgA := platformConfig(t, readyA)
	cfgA.DatabaseURL = dsn
	boot(t, func(ctx context.Context) error { return RunAPI(ctx, cfgA) }, readyA)

	cfgB := platformConfig(t, make(chan [2]string, 1))
	cfgB.DatabaseURL = dsn
	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	err := RunAPI(ctx, cfgB)
	if err == nil || !strings.Contains(err.Error(), "secrets.key (the key that encrypts credentials in the CCDB)") || !strings.Contains(err.Error(), "copy secrets.key, uaa-key.pem") {
		t.Fatalf("RunAPI with a fresh data dir on the leader's database: %v; want it to name secrets.key and what to copy", err)
	}
}

// A standby whose secrets differ from the fingerprint the leader records
// while it waits (both started on a new database) stops then, not when
// the leader is gone.
func TestRunAPI_standbyRefusesSecretsRecordedWhileItWaits(t *testing.T) {
	dsn := pgtest.URL(t)
	ctx := t.Context()
	leader, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	if err := leader.AwaitClaim(ctx, "leader-host", 10*time.Millisecond, func(string, bool) error { return nil }); err != nil {
		t.Fatal(err)
	}
	cfg := platformConfig(t, make(chan [2]string, 1))
	cfg.DatabaseURL = dsn
	var logs logBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	standby := start(t, func(ctx context.Context) error { return RunAPI(ctx, cfg) })
	awaitStandby(t, "the standby", standby, &logs, nil)
	other := Config{DataDir: t.TempDir(), AdminPassword: "another"}
	if _, _, _, err := ensureSharedSecrets(other); err != nil {
		t.Fatal(err)
	}
	fp, err := secretsFingerprint(other.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.PutServerState(ctx, sqlstore.StateSecretsFingerprint, fp); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-standby.done:
		standby.done = nil
		if err == nil || !strings.Contains(err.Error(), "secrets.key (the key that encrypts") {
			t.Fatalf("the standby returned %v; want it to name secrets.key", err)
		}
	case <-time.After(bootTimeout):
		t.Fatalf("the standby kept waiting with other secrets than the database's")
	}
}

// The fingerprint's HMACs are keyed by nothing it shows: whoever reads
// the database cannot test guesses of the admin password (or of the other
// secrets) against it, the right guess included.
func TestSecretsFingerprint_letsNoReaderTestAGuessOfTheAdminPassword(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := ensureSharedSecrets(Config{DataDir: dir, AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	fp, err := secretsFingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	guess, err := os.ReadFile(filepath.Join(dir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(fp)[1:] {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	for name, shown := range fields {
		key, err := hex.DecodeString(shown)
		if err != nil {
			t.Fatalf("field %s: %v", name, err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte("admin-password\x00"))
		m.Write(guess)
		if hex.EncodeToString(m.Sum(nil)) == fields["admin-password"] {
			t.Fatalf("the admin password's HMAC is keyed by the fingerprint's %s field: a reader of the database can test guesses", name)
		}
	}
}

// A fingerprint of another scheme is not read as other secrets: the
// error says so and how to record it anew.
func TestSecretsMismatch_aFingerprintOfAnotherSchemeSaysHowToRecordItAnew(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := ensureSharedSecrets(Config{DataDir: dir, AdminPassword: "pw"}); err != nil {
		t.Fatal(err)
	}
	mine, err := secretsFingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := "v1" + strings.TrimPrefix(mine, fingerprintVersion)
	err = secretsMismatch(dir, mine, old)
	if err == nil || !strings.Contains(err.Error(), "another scheme") || !strings.Contains(err.Error(), "DELETE FROM server_state WHERE name = 'secrets_fingerprint'") {
		t.Fatalf("secretsMismatch with a v1 fingerprint: %v; want it to name the scheme and the row to delete", err)
	}
}

// awaitStandby waits until n logs that it is a standby; it fails t if n
// returns first or serves (ready, when given, reports).
func awaitStandby(t *testing.T, what string, n *node, logs *logBuffer, ready <-chan [2]string) {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for !strings.Contains(logs.String(), "is a standby") {
		select {
		case err := <-n.done:
			n.done = nil
			t.Fatalf("%s returned: %v", what, err)
		case <-ready:
			t.Fatalf("%s serves while the leader runs", what)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say it waits within %s; logs:\n%s", what, bootTimeout, logs.String())
		}
	}
}
