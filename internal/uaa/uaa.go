// Package uaa is Pando's UAA-compatible authorization server: users with
// bcrypt passwords, RS256 JWT access and refresh tokens signed with a key kept
// in the data dir (so tokens survive restarts), the /login, /oauth/token and
// /token_keys endpoints the cf CLI uses, and the check the API runs on every
// request's bearer token.
package uaa

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"golang.org/x/crypto/bcrypt"
)

// UserStore is the part of the CCDB the auth server needs. pando.Store
// satisfies it.
type UserStore interface {
	GetUserByName(ctx context.Context, name string) (pando.User, error)
	GetUser(ctx context.Context, guid string) (pando.User, error)
	CreateUser(ctx context.Context, u pando.User) error
	UpdateUser(ctx context.Context, u pando.User) error
	ListUsers(ctx context.Context, guids, names []string) ([]pando.User, error)
	DeleteUser(ctx context.Context, guid string) error
}

// Defaults. The access token lifetime is the cf client's in a stock CF
// (expires_in 1199 in the recorded traces); the refresh token lifetime is
// UAA's default for the cf client (30 days).
const (
	DefaultAccessTTL  = 20 * time.Minute
	DefaultRefreshTTL = 30 * 24 * time.Hour
	// ClientID is the only OAuth client: the cf CLI's (and Pando's own CLI).
	ClientID = "cf"
)

// Config configures the auth server.
type Config struct {
	Users UserStore
	// TrustedProxies are peers (a TLS proxy in front of the API) whose
	// X-Forwarded-For names the real client for login protection; from
	// anyone else the header is ignored.
	TrustedProxies []netip.Prefix
	// KeyPath is the RSA private key (PEM). It is created 0600 on first use
	// and reused afterwards.
	KeyPath string
	// Issuer is the token issuer, e.g. "http://127.0.0.1:9022/oauth/token".
	Issuer     string
	AccessTTL  time.Duration // default 20 min
	RefreshTTL time.Duration // default 30 days
	// Lockout: after LockoutFailures bad passwords for one user from one
	// client address within LockoutWindow, password grants for that user
	// from that address are refused for LockoutDuration (UAA's defaults:
	// 5 in 5 min, locked 5 min). Loopback clients are never locked out.
	LockoutFailures int
	LockoutWindow   time.Duration
	LockoutDuration time.Duration
	// Password grants per client address: LoginBurst at once, then one
	// more every LoginInterval (default 10, then one every 6 s); past that
	// 429 before any password is compared.
	LoginBurst    int
	LoginInterval time.Duration
	// Failed password grants per user name from addresses other than
	// loopback, whatever the address: UserFailBurst, then one more every
	// UserFailInterval (default 30, then one every 2 s). Past that, such
	// attempts for the user get 429 before any password check; the
	// server's own machine is never held back. This bounds guessing one
	// password from many addresses.
	UserFailBurst    int
	UserFailInterval time.Duration
	// Password comparisons (bcrypt) running at once, across all clients:
	// default half the CPUs (at least 1), so logins leave the API CPU. At
	// most BcryptQueue more wait (default 8 per slot), each at most
	// BcryptMaxWait (default 2 s); others get 429 at once.
	BcryptConcurrency int
	BcryptQueue       int
	BcryptMaxWait     time.Duration
	// BcryptCost for new password hashes; default bcrypt.DefaultCost.
	BcryptCost int
	Logger     *slog.Logger
	Now        func() time.Time
}

// Service issues and verifies tokens.
type Service struct {
	users      UserStore
	key        *rsa.PrivateKey
	kid        string
	issuer     string
	accessTTL  time.Duration
	refreshTTL time.Duration
	bcryptCost int
	log        *slog.Logger
	now        func() time.Time
	lockout    *lockout
	limiter    *rateLimiter
	userFails  *rateLimiter // failed remote logins per user name
	bcryptGate *gate
	live       *liveUsers     // users whose tokens are still honoured
	trusted    []netip.Prefix // proxies whose X-Forwarded-For is believed
	// dummyHash is compared against when the user does not exist, so a
	// wrong user name costs as much time as a wrong password.
	dummyHash []byte
}

// New loads (or creates) the signing key and returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Users == nil {
		return nil, errors.New("uaa: Users is required")
	}
	if cfg.KeyPath == "" {
		return nil, errors.New("uaa: KeyPath is required")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://127.0.0.1:9022/oauth/token"
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.LockoutFailures <= 0 {
		cfg.LockoutFailures = 5
	}
	if cfg.LockoutWindow <= 0 {
		cfg.LockoutWindow = 5 * time.Minute
	}
	if cfg.LockoutDuration <= 0 {
		cfg.LockoutDuration = 5 * time.Minute
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = 10
	}
	if cfg.UserFailBurst <= 0 {
		cfg.UserFailBurst = 30
	}
	if cfg.UserFailInterval <= 0 {
		cfg.UserFailInterval = 2 * time.Second
	}
	if cfg.LoginInterval <= 0 {
		cfg.LoginInterval = 6 * time.Second
	}
	if cfg.BcryptConcurrency <= 0 {
		cfg.BcryptConcurrency = max(1, runtime.NumCPU()/2)
	}
	if cfg.BcryptQueue <= 0 {
		cfg.BcryptQueue = 8 * cfg.BcryptConcurrency
	}
	if cfg.BcryptMaxWait <= 0 {
		cfg.BcryptMaxWait = 2 * time.Second
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key, err := loadOrCreateKey(cfg.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("uaa: signing key: %w", err)
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("uaa: signing key: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(uuid.NewString()), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("uaa: %w", err)
	}
	return &Service{
		trusted:    cfg.TrustedProxies,
		users:      cfg.Users,
		key:        key,
		kid:        kid,
		issuer:     cfg.Issuer,
		accessTTL:  cfg.AccessTTL,
		refreshTTL: cfg.RefreshTTL,
		bcryptCost: cfg.BcryptCost,
		log:        cfg.Logger,
		now:        cfg.Now,
		lockout:    newLockout(cfg.LockoutFailures, cfg.LockoutWindow, cfg.LockoutDuration),
		limiter:    newRateLimiter(cfg.LoginBurst, cfg.LoginInterval),
		userFails:  newRateLimiter(cfg.UserFailBurst, cfg.UserFailInterval),
		live:       newLiveUsers(liveTTL),
		bcryptGate: newGate(cfg.BcryptConcurrency, cfg.BcryptQueue, cfg.BcryptMaxWait),
		dummyHash:  dummy,
	}, nil
}

// HashPassword returns a bcrypt hash for a new user's password.
func (s *Service) HashPassword(password string) (string, error) {
	if len(password) > 72 {
		// bcrypt ignores bytes past 72; refuse rather than silently
		// accept a longer password that a prefix would also match.
		return "", pando.Errorf(pando.EInvalid, "password is longer than 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// EnsureAdmin creates the admin user with this password when no user of
// that name exists. An existing user is left as it is: the store cannot
// change passwords, so a different password is only reported in the log.
func (s *Service) EnsureAdmin(ctx context.Context, name, password string) error {
	if name == "" || password == "" {
		return errors.New("ensure admin: name and password are required")
	}
	u, err := s.users.GetUserByName(ctx, name)
	if err == nil {
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil {
			return nil
		}
		// The operator chose a new password: apply it. Refresh tokens are
		// bound to the old hash, so they stop working.
		if u.PasswordHash, err = s.HashPassword(password); err != nil {
			return fmt.Errorf("ensure admin %q: %w", name, err)
		}
		if err := s.users.UpdateUser(ctx, u); err != nil {
			return fmt.Errorf("ensure admin %q: update password: %w", name, err)
		}
		s.log.Info("admin password changed", "user_name", name)
		return nil
	}
	if !pando.IsNotFound(err) {
		return fmt.Errorf("ensure admin %q: %w", name, err)
	}
	hash, err := s.HashPassword(password)
	if err != nil {
		return fmt.Errorf("ensure admin %q: %w", name, err)
	}
	err = s.users.CreateUser(ctx, pando.User{
		GUID:         uuid.NewString(),
		Name:         name,
		PasswordHash: hash,
		Admin:        true,
		CreatedAt:    s.now().UTC(),
	})
	if pando.ErrorKindOf(err) == pando.EConflict {
		return nil // another API replica created it first
	}
	if err != nil {
		return fmt.Errorf("ensure admin %q: %w", name, err)
	}
	s.log.Info("created admin user", "user_name", name)
	return nil
}

// adminPasswordFile is where the generated admin password is kept.
const adminPasswordFile = "admin-password"

// LoadOrCreateAdminPassword returns the admin password stored in
// <dataDir>/admin-password, or generates a random 24-character one and
// stores it there (mode 0600). created tells the caller to print it once.
func LoadOrCreateAdminPassword(dataDir string) (password string, created bool, err error) {
	path := filepath.Join(dataDir, adminPasswordFile)
	if b, err := readSmallFile(path, 4096); err == nil {
		if p := strings.TrimSpace(string(b)); p != "" {
			return p, false, nil
		}
		return "", false, fmt.Errorf("admin password file %s is empty; delete it to generate a new password", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin password: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("create data dir: %w", err)
	}
	p, err := randomPassword(24)
	if err != nil {
		return "", false, fmt.Errorf("generate admin password: %w", err)
	}
	won, err := createExclusive(path, []byte(p+"\n"))
	if err != nil {
		return "", false, fmt.Errorf("write admin password: %w", err)
	}
	if !won {
		// Another process wrote it between our read and our create.
		return LoadOrCreateAdminPassword(dataDir)
	}
	return p, true, nil
}

// randomPassword draws n characters from an unambiguous alphabet.
func randomPassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	max := big.NewInt(int64(len(alphabet)))
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b), nil
}

// readSmallFile reads a file that must not exceed limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// createExclusive writes data to path (mode 0600) only if path does not
// exist yet, atomically: readers never see a partial file. It reports
// whether this call created the file.
func createExclusive(path string, data []byte) (bool, error) {
	err := atomicfile.WriteFile(path, data, 0o600, atomicfile.Durable(), atomicfile.NoReplace())
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	return err == nil, err
}
