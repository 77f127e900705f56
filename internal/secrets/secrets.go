// Package secrets seals small secrets (registry passwords) before they are
// stored in the CCDB, with AES-256-GCM under a key kept in the data dir
// (mode 0600). A sealed value is "v1:" and the base64 of nonce and
// ciphertext; the secret's purpose is bound in as additional data, so a
// value sealed for one record cannot be passed off as another's.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/pandoplatform/pando/internal/atomicfile"
)

const (
	keySize = 32
	prefix  = "v1:"
)

// Box seals and opens secrets with one key.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("secrets key: %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// LoadOrCreate reads the key file at path, creating it (0600, random) if
// it does not exist. A key file of the wrong size or readable by others is
// an error rather than silently replaced: secrets sealed with it would be
// lost.
func LoadOrCreate(path string) (*Box, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, keySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("make secrets key: %w", err)
		}
		// No replace: if another process made the key meanwhile, keep
		// theirs.
		err := atomicfile.WriteFile(path, key, 0o600, atomicfile.Durable(), atomicfile.NoReplace())
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("write secrets key: %w", err)
		}
		// Read it back: if another process made the key first, its key
		// is the one in force.
		if key, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("read secrets key: %w", err)
		}
		return New(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	return New(key)
}

// Seal encrypts plaintext for purpose (e.g. "package/<guid>/docker").
// The empty string seals to the empty string: there is nothing to hide.
func (b *Box) Seal(plaintext, purpose string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(purpose))
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrNotSealed is Open's error for a value that was not made by Seal.
var ErrNotSealed = errors.New("not a sealed secret")

// Open decrypts a value made by Seal with the same purpose.
func (b *Box) Open(sealed, purpose string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", ErrNotSealed
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", ErrNotSealed
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return "", fmt.Errorf("open secret: wrong key or purpose: %w", err)
	}
	return string(pt), nil
}
