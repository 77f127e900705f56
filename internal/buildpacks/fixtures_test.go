package buildpacks_test

import (
	"sync"
	"testing"
)

// fixtures holds what several tests build the same way (a jar, a wheel),
// built once per test binary by the first test that asks: compiling them
// is slower than most of the stagings that use them.
var fixtures fixtureCache

type fixtureCache struct {
	mu    sync.Mutex
	built map[string]*fixture
}

type fixture struct {
	once sync.Once
	b    []byte
	err  error
}

// get returns the fixture named key, built by build on first use; a build
// that failed fails every test that asks for it.
func (c *fixtureCache) get(t *testing.T, key string, build func() ([]byte, error)) []byte {
	t.Helper()
	c.mu.Lock()
	if c.built == nil {
		c.built = map[string]*fixture{}
	}
	f := c.built[key]
	if f == nil {
		f = &fixture{}
		c.built[key] = f
	}
	c.mu.Unlock()
	f.once.Do(func() { f.b, f.err = build() })
	if f.err != nil {
		t.Fatalf("%s: %v", key, f.err)
	}
	return f.b
}
