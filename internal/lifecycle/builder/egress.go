package builder

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// egressWait bounds how long the builder waits for the cell's egress
// proxy, which the cell starts in the container's network namespace just
// after the container itself.
const egressWait = 10 * time.Second

// awaitEgress waits until the staging egress proxy (HTTP_PROXY in env,
// when PANDO_STAGING_EGRESS=on) accepts connections, so that no buildpack
// finds it missing. If it never does, it says so on stderr and staging
// goes on (downloads then fail with the tools' own errors).
func awaitEgress(ctx context.Context, env []string, stderr io.Writer) {
	var on bool
	var proxy string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PANDO_STAGING_EGRESS":
			on = v == "on"
		case "HTTP_PROXY":
			proxy = v
		}
	}
	if !on || proxy == "" {
		return
	}
	u, err := url.Parse(proxy)
	if err != nil || u.Host == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, egressWait)
	defer cancel()
	var d net.Dialer
	delay := 5 * time.Millisecond
	for {
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "       Warning: the staging egress proxy (%s) did not answer: %v\n", u.Host, err)
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}
