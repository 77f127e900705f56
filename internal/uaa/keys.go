package uaa

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
)

const keyBits = 2048

// loadOrCreateKey reads the PEM RSA key at path, or generates one and
// stores it 0600. Two processes racing on first start end up with the same
// key: the loser of the exclusive create reads the winner's file.
func loadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	for range 2 {
		b, err := readSmallFile(path, 64<<10)
		if err == nil {
			return parseKey(path, b)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		key, err := rsa.GenerateKey(rand.Reader, keyBits)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("marshal: %w", err)
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		won, err := createExclusive(path, data)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		if won {
			return key, nil
		}
	}
	return nil, fmt.Errorf("%s: could not read or create the key", path)
}

func parseKey(path string, b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an RSA key (%T)", path, k)
		}
		return rk, nil
	default:
		return nil, fmt.Errorf("%s: unexpected PEM block %q", path, block.Type)
	}
}

// keyID names the key by its public key's fingerprint, so it is stable
// across restarts and changes when the key file is replaced.
func keyID(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "key-" + base64.RawURLEncoding.EncodeToString(sum[:9]), nil
}

// JWK is a token verification key as UAA's /token_keys lists it.
type JWK struct {
	Kty   string `json:"kty"`
	Alg   string `json:"alg"`
	Use   string `json:"use"`
	Kid   string `json:"kid"`
	N     string `json:"n"`
	E     string `json:"e"`
	Value string `json:"value"` // PEM public key, as UAA adds
}

// PublicKey returns the verification key.
func (s *Service) PublicKey() JWK {
	pub := &s.key.PublicKey
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for an RSA key
	return JWK{
		Kty:   "RSA",
		Alg:   "RS256",
		Use:   "sig",
		Kid:   s.kid,
		N:     base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:     base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		Value: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}
}

// EnsureKey creates the signing key at path (0600) unless there is one:
// servers that must share it make it before they compare it.
func EnsureKey(path string) error {
	_, err := loadOrCreateKey(path)
	return err
}
