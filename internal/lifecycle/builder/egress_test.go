package builder

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestAwaitEgress_waitsForTheProxyToListen(t *testing.T) {
	// Reserve a port, then listen on it only after a while.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := []string{"PANDO_STAGING_EGRESS=on", "HTTP_PROXY=http://" + addr}
	listening := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		close(listening)
		defer l.Close()
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	var stderr bytes.Buffer
	awaitEgress(context.Background(), env, &stderr)
	select {
	case <-listening:
	default:
		t.Fatal("awaitEgress returned before the proxy listened")
	}
	if stderr.Len() != 0 {
		t.Fatalf("stderr %q", stderr.String())
	}
}

func TestAwaitEgress_givesUpWithAWarningAndIgnoresEgressOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var stderr bytes.Buffer
	awaitEgress(ctx, []string{"PANDO_STAGING_EGRESS=on", "HTTP_PROXY=http://127.0.0.1:1"}, &stderr)
	if !strings.Contains(stderr.String(), "did not answer") {
		t.Fatalf("stderr %q", stderr.String())
	}
	stderr.Reset()
	awaitEgress(context.Background(), []string{"PANDO_STAGING_EGRESS=off", "HTTP_PROXY=http://127.0.0.1:1"}, &stderr)
	if stderr.Len() != 0 {
		t.Fatalf("egress off: stderr %q", stderr.String())
	}
}
