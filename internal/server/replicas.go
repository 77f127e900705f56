package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/secrets"
	"github.com/pandoplatform/pando/internal/sqlstore"
	"github.com/pandoplatform/pando/internal/uaa"
)

// sharedSecrets are the data-dir files every `pando api` on one database
// must hold alike: clients, cells and routers trust what they sign, and
// the CCDB holds what they seal. They stay in the data dirs: the key may
// not go into the database it protects. The database keeps a fingerprint
// of them (secretsFingerprint) so that a replica with others refuses.
var sharedSecrets = []struct{ file, what string }{
	{"secrets.key", "the key that encrypts credentials in the CCDB"},
	{"uaa-key.pem", "the UAA token signing key"},
	{"cell-ca.pem", "the cell CA's certificate"},
	{"cell-ca-key.pem", "the cell CA's key"},
	{cellauth.TokenFile, "the cell join token"},
	{cellauth.RouterTokenFile, "the router token"},
	{"admin-password", "the admin password"},
}

// SharedSecretFiles are the names of the data-dir files API replicas on
// one database share (docs/operating.md).
func SharedSecretFiles() []string {
	names := make([]string, len(sharedSecrets))
	for i, s := range sharedSecrets {
		names[i] = s.file
	}
	return names
}

// fingerprintVersion starts a fingerprint, for a later change of scheme.
const fingerprintVersion = "v2"

// ensureSharedSecrets creates the shared secrets the data dir lacks (as
// the first start of a server does) and returns the sealer and the admin
// password (created: generated just now).
func ensureSharedSecrets(cfg Config) (sealer *secrets.Box, password string, created bool, err error) {
	sealer, err = secrets.LoadOrCreate(filepath.Join(cfg.DataDir, "secrets.key"))
	if err != nil {
		return nil, "", false, err
	}
	if err := uaa.EnsureKey(filepath.Join(cfg.DataDir, "uaa-key.pem")); err != nil {
		return nil, "", false, fmt.Errorf("UAA signing key: %w", err)
	}
	ca, err := cellauth.LoadOrCreateCA(cfg.DataDir)
	if err != nil {
		return nil, "", false, err
	}
	if _, err := cellauth.LoadOrCreateToken(filepath.Join(cfg.DataDir, cellauth.TokenFile), ca); err != nil {
		return nil, "", false, err
	}
	if _, err := cellauth.LoadOrCreateRouterToken(filepath.Join(cfg.DataDir, cellauth.RouterTokenFile), ca); err != nil {
		return nil, "", false, err
	}
	password, created, err = adminPassword(cfg)
	if err != nil {
		return nil, "", false, err
	}
	return sealer, password, created, nil
}

// secretsFingerprint fingerprints the shared secrets in dataDir: one
// NAME=HEX field per file. The encryption key's is a SHA-256 of it; the
// others' are HMACs under another SHA-256 of it, which the fingerprint
// does not show, so the database's readers cannot test guesses of the
// admin password against it. (v1 keyed them with the digest it showed.)
func secretsFingerprint(dataDir string) (string, error) {
	fields := []string{fingerprintVersion}
	var key []byte
	for _, s := range sharedSecrets {
		b, err := os.ReadFile(filepath.Join(dataDir, s.file))
		if err != nil {
			return "", fmt.Errorf("fingerprint the shared secrets: %w", err)
		}
		var sum []byte
		if key == nil {
			shown := sha256.Sum256(append([]byte("pando secrets fingerprint\x00"), b...))
			hidden := sha256.Sum256(append([]byte("pando secrets fingerprint hmac key\x00"), b...))
			sum, key = shown[:], hidden[:]
		} else {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(s.file + "\x00"))
			m.Write(b)
			sum = m.Sum(nil)
		}
		fields = append(fields, s.file+"="+hex.EncodeToString(sum))
	}
	return strings.Join(fields, " "), nil
}

// secretsMismatch says which shared secrets of mine (this data dir's
// fingerprint) differ from the database's (recorded), and how to fix it;
// nil when they agree.
func secretsMismatch(dataDir, mine, recorded string) error {
	if mine == recorded {
		return nil
	}
	if v, _, _ := strings.Cut(recorded, " "); v != fingerprintVersion {
		return &secretsDiffer{msg: fmt.Sprintf("the database's fingerprint of the shared secrets is of another scheme (%s; this server makes %s), so this server cannot check its data dir %s against it. "+
			"If every server of this database holds the same %s, delete it (DELETE FROM server_state WHERE name = '%s') and start this server again: the first leader records it anew (docs/operating.md, \"Several API replicas\")",
			v, fingerprintVersion, dataDir, strings.Join(SharedSecretFiles(), ", "), sqlstore.StateSecretsFingerprint)}
	}
	parse := func(fp string) map[string]string {
		m := map[string]string{}
		for _, f := range strings.Fields(fp) {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	a, b := parse(mine), parse(recorded)
	var differ []string
	for _, s := range sharedSecrets {
		if a[s.file] != b[s.file] {
			differ = append(differ, fmt.Sprintf("%s (%s)", s.file, s.what))
		}
		if s.file == sharedSecrets[0].file && len(differ) > 0 {
			break // the others' fingerprints are keyed by it: unknown
		}
	}
	if len(differ) == 0 { // another scheme: say all
		for _, s := range sharedSecrets {
			differ = append(differ, s.file)
		}
	}
	files := SharedSecretFiles()
	return &secretsDiffer{msg: fmt.Sprintf("this server's data dir %s holds other secrets than the servers of this database; not the same: %s. "+
		"Every `pando api` on one database needs the same ones: stop this server, copy %s from the first server's data dir into %s (keeping them 0600), and start it again (docs/operating.md, \"Several API replicas\")",
		dataDir, strings.Join(differ, ", "), strings.Join(files, ", "), dataDir)}
}

// secretsDiffer is a data dir's shared secrets not matching the
// database's fingerprint.
type secretsDiffer struct{ msg string }

func (e *secretsDiffer) Error() string { return e.msg }

// checkSharedSecrets compares this data dir's secrets with the database's
// fingerprint; record, once this server holds the claim, stores it when
// the database has none (its first server).
func checkSharedSecrets(ctx context.Context, store *sqlstore.Store, dataDir string, record bool) error {
	mine, err := secretsFingerprint(dataDir)
	if err != nil {
		return err
	}
	recorded, ok, err := store.ServerState(ctx, sqlstore.StateSecretsFingerprint)
	if err != nil {
		return fmt.Errorf("check the shared secrets: %w", err)
	}
	if ok {
		return secretsMismatch(dataDir, mine, recorded)
	}
	if !record {
		return nil
	}
	if err := store.PutServerState(ctx, sqlstore.StateSecretsFingerprint, mine); err != nil {
		return fmt.Errorf("record the shared secrets' fingerprint: %w", err)
	}
	return nil
}

// holderName names this server to standbys: its host and the addresses
// it serves.
func holderName(apiAddr, cellAddr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	parts := []string{host, "api " + apiAddr}
	if cellAddr != "" {
		parts = append(parts, "cell api "+cellAddr)
	}
	if ips := hostIPs(); len(ips) > 0 {
		parts = append(parts, "addresses "+strings.Join(ips, ","))
	}
	return strings.Join(parts, ", ")
}

// hostIPs are the machine's non-loopback addresses, at most 4.
func hostIPs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			ips = append(ips, n.IP.String())
		}
	}
	slices.Sort(ips)
	return ips[:min(len(ips), 4)]
}

// standbyRetry is how often a standby tries to take the database's claim:
// it takes over within about this long of the leader's session ending.
const standbyRetry = time.Second

// awaitLeadership makes this `pando api` the leader of its database: it
// refuses other secrets than the database's, waits as a standby (its
// listeners closed) while another server holds the claim, and once it
// holds it records the fingerprint if the database had none.
func (p *platform) awaitLeadership(ctx context.Context) error {
	cfg, log := p.cfg, p.log
	if err := checkSharedSecrets(ctx, p.store, cfg.DataDir, false); err != nil {
		return err
	}
	err := p.store.AwaitClaim(ctx, holderName(cfg.APIAddr, cellAPIAddr(cfg)), standbyRetry, func(holder string, changed bool) error {
		// The leader may have recorded the fingerprint meanwhile (they
		// started together): refuse now, not when it is gone. A failed
		// read (PostgreSQL away a moment) is no answer: the wait goes on.
		if err := checkSharedSecrets(ctx, p.store, cfg.DataDir, false); errors.As(err, new(*secretsDiffer)) {
			return err
		}
		if !changed {
			return nil
		}
		if holder == "" {
			holder = "another Pando server (it did not say which)"
		}
		log.Info(p.verb+" is a standby: another server holds this database's claim; this one keeps its listeners closed and takes over when the leader's session ends",
			"leader", holder, "api", cfg.APIAddr)
		return nil
	})
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("open CCDB: %w", err)
	}
	return checkSharedSecrets(ctx, p.store, cfg.DataDir, true)
}
