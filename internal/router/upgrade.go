package router

import (
	"bufio"
	"context"
	"errors"
	"net"
	"time"

	"github.com/pandoplatform/pando/internal/pipe"
)

// serveUpgrade proxies a protocol switch: it sends the request to a
// backend (trying another when one cannot be reached), relays the answer
// and, on 101, joins the two connections with pipe.Join, which holds no
// buffer while the tunnel is idle and closes it after TunnelIdleTimeout.
// The client connection ends with the tunnel, or after a declined switch.
func (r *Router) serveUpgrade(cc *clientConn, st *request) (int, int64) {
	cc.closeAfter = true
	ctx := cc.srv.base
	var (
		conn net.Conn
		ep   *endpoint
		err  error
	)
	for attempt := 0; attempt < r.cfg.MaxAttempts; attempt++ {
		if ep = r.pick(st); ep == nil {
			break
		}
		st.tried = append(st.tried, ep)
		st.served = ep
		dctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
		conn, err = r.cfg.Dial(dctx, "tcp", ep.Addr)
		cancel()
		if err == nil {
			break
		}
		ep.failedUntil.Store(r.now().Add(r.cfg.FailTimeout).UnixNano())
		conn = nil
		if ctx.Err() != nil {
			break
		}
	}
	if conn == nil {
		if err == nil {
			err = errors.New("no backend left to try")
		}
		return r.proxyError(cc, st, err)
	}
	// Closing conn when the router shuts down also ends the tunnel below.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	bc := &backendConn{Conn: conn, addr: ep.Addr, br: bufio.NewReaderSize(conn, 4096), bw: bufio.NewWriterSize(conn, 4096)}
	x := &proxied{cc: cc, st: st, upgrade: true, start: r.now().UnixMilli()}
	_ = conn.SetDeadline(time.Now().Add(r.cfg.DialTimeout + r.cfg.BodyTimeout))
	x.writeHead(bc.bw, ep)
	if err := x.writeBody(bc.bw); err != nil {
		return r.proxyError(cc, st, err)
	}
	for {
		if err := bc.resp.readResponse(bc.br, r.heads); err != nil {
			return r.proxyError(cc, st, err)
		}
		if bc.resp.status >= 200 || bc.resp.status == 101 {
			break
		}
	}
	if bc.resp.status != 101 {
		// The backend declined the switch: relay its answer as is.
		_ = conn.SetDeadline(time.Time{})
		cc.backend.Store(bc)
		status, n, _ := cc.relay(bc)
		cc.backend.Store(nil)
		return status, n
	}
	cc.state.Store(stateTunnel)
	cc.beginAnswer()
	_ = conn.SetDeadline(time.Now().Add(r.cfg.BodyTimeout))
	b := cc.bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\n"...)
	for _, f := range bc.resp.fields {
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	cc.armWrite()
	if _, err := cc.bw.Write(b); err != nil {
		return 101, 0
	}
	if err := cc.bw.Flush(); err != nil {
		return 101, 0
	}
	// Bytes either side sent early sit in the readers' buffers.
	if n := cc.br.Buffered(); n > 0 {
		early, _ := cc.br.Peek(n)
		if _, err := conn.Write(early); err != nil {
			return 101, 0
		}
	}
	if n := bc.br.Buffered(); n > 0 {
		early, _ := bc.br.Peek(n)
		if _, err := cc.c.Write(early); err != nil {
			return 101, 0
		}
	}
	_ = conn.SetDeadline(time.Time{})
	_ = cc.c.SetDeadline(time.Time{})
	// An idle tunnel holds no buffer of either side, nor (its head gone)
	// a large-head slot: a websocket lives for hours.
	cc.br, cc.bw, cc.head.buf, cc.head.fields = nil, nil, nil, nil
	cc.headCnt.done()
	bc.br, bc.bw, bc.resp.buf, bc.resp.fields = nil, nil, nil, nil
	pipe.Join(cc.c, conn, pipe.Options{IdleTimeout: r.cfg.TunnelIdleTimeout})
	return 101, 0
}
