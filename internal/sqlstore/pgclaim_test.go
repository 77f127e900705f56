package sqlstore

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// blackHole forwards TCP connections to target until freeze, which makes
// the connections open at that moment drop every byte both ways without
// closing (a network that fails under an idle session); later connections
// are forwarded again.
type blackHole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen map[net.Conn]bool
	open   []net.Conn
}

func startBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, target: target, frozen: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.open {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			b.mu.Lock()
			b.open = append(b.open, c, up)
			b.mu.Unlock()
			go b.pipe(c, up, c)
			go b.pipe(up, c, c)
		}
	}()
	return b
}

// pipe copies from src to dst until either fails, dropping what it reads
// once client (the accepted side) is frozen.
func (b *blackHole) pipe(dst io.Writer, src io.Reader, client net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		b.mu.Lock()
		frozen := b.frozen[client]
		b.mu.Unlock()
		if n > 0 && !frozen {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !frozen {
				if c, ok := dst.(net.Conn); ok {
					c.Close()
				}
			}
			return
		}
	}
}

func (b *blackHole) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 0; i < len(b.open); i += 2 {
		b.frozen[b.open[i]] = true
	}
}

// A network failure under the idle claim session ends it on the server's
// side only: PostgreSQL still sees the old session holding the claim when
// the server tries to take it again. That is this server's own session,
// not another server: HoldClaim ends it and takes the claim again, and
// the server keeps running.
func TestPostgres_aClaimStillHeldByItsOwnLostSessionIsTakenAgain(t *testing.T) {
	dsn := pgURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	hole := startBlackHole(t, u.Host)
	u.Host = hole.ln.Addr().String()
	ctx := t.Context()
	s := openTemp(t, u.String())
	s.claimPing = 200 * time.Millisecond
	if err := s.ClaimDatabase(ctx, 0); err != nil {
		t.Fatal(err)
	}
	s.claimMu.Lock()
	first := s.claimSession
	s.claimMu.Unlock()

	hole.freeze()
	hctx, cancel := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { held <- s.HoldClaim(hctx, 50*time.Millisecond) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.claimMu.Lock()
		again := s.claim != nil && s.claimSession != first
		s.claimMu.Unlock()
		if again {
			break
		}
		select {
		case err := <-held:
			t.Fatalf("HoldClaim returned: %v; want it to take the claim again", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim was not taken again within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// One server per database still holds: another Store is refused.
	if err := openTemp(t, dsn).ClaimDatabase(ctx, 0); err == nil {
		t.Fatal("a second Store claimed the database the first took again")
	}
	cancel()
	if err := <-held; err != nil {
		t.Fatalf("HoldClaim: %v", err)
	}
}
