package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/pandoplatform/pando/internal/atomicfile"
)

// LocalAPI is the API of a `pando server` on this machine with default
// flags: the target when there is no configuration.
const LocalAPI = "http://127.0.0.1:9022"

// maxConfigSize bounds the config file.
const maxConfigSize = 1 << 20

// Config is the client configuration in ~/.pando/config.json.
type Config struct {
	Target       string `json:"target"`
	APIVersion   string `json:"api_version,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	OrgGUID      string `json:"org_guid,omitempty"`
	OrgName      string `json:"org_name,omitempty"`
	SpaceGUID    string `json:"space_guid,omitempty"`
	SpaceName    string `json:"space_name,omitempty"`
	// SkipSSLValidation: the target's certificate is not checked.
	SkipSSLValidation bool `json:"skip_ssl_validation,omitempty"`
}

// configDir is $PANDO_HOME, else ~/.pando.
func (e *env) configDir() (string, error) {
	if d := e.getenv("PANDO_HOME"); d != "" {
		return d, nil
	}
	home := e.getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find home directory (set PANDO_HOME): %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".pando"), nil
}

func (e *env) configPath() (string, error) {
	d, err := e.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "config.json"), nil
}

// loadConfig reads the config; a missing file is an empty config.
func (e *env) loadConfig() (*Config, error) {
	p, err := e.configPath()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	var cfg Config
	dec := json.NewDecoder(io.LimitReader(f, maxConfigSize))
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("read config %s: %w", p, err)
	}
	return &cfg, nil
}

// saveConfig writes the config atomically: directory 0700, file 0600 (it
// holds tokens).
func (e *env) saveConfig(cfg *Config) error {
	dir, err := e.configDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// dataDir is where a local `pando server` keeps its data (DESIGN.md §7).
func (e *env) dataDir() string {
	if d := e.getenv("PANDO_DATA_DIR"); d != "" {
		return d
	}
	if e.euid == 0 {
		return "/var/lib/pando"
	}
	home := e.getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".local", "share", "pando")
}

// localAdminPassword returns the local server's admin password from
// PANDO_ADMIN_PASSWORD or the data dir's admin-password file, or "".
func (e *env) localAdminPassword() string {
	if p := e.getenv("PANDO_ADMIN_PASSWORD"); p != "" {
		return p
	}
	f, err := os.Open(filepath.Join(e.dataDir(), "admin-password"))
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := f.Read(b)
	return strings.TrimSpace(string(b[:n]))
}

// isLocalTarget reports whether target is the default local server.
func (e *env) isLocalTarget(target string) bool {
	return strings.TrimRight(target, "/") == e.localAPI
}

// normalizeAPI accepts "host:port" or a URL and returns a URL without a
// trailing slash. Hosts without a scheme get https, except loopback ones.
func normalizeAPI(s string) (string, error) {
	s = strings.TrimSpace(strings.TrimRight(s, "/"))
	if s == "" {
		return "", errors.New("empty API URL")
	}
	if !strings.Contains(s, "://") {
		host := s
		if i := strings.IndexAny(host, "/"); i >= 0 {
			host = host[:i]
		}
		h := host
		if i := strings.LastIndex(h, ":"); i >= 0 {
			h = h[:i]
		}
		if isLoopbackHost(h) {
			s = "http://" + s
		} else {
			s = "https://" + s
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("invalid API URL %q", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// isLoopbackHost reports whether h (a host, IPv6 in brackets) is this
// machine: localhost or any loopback address (127.0.0.0/8, ::1), which a
// local server listens on over plain HTTP.
func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	return err == nil && ip.IsLoopback()
}
