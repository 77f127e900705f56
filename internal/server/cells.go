package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/cellapi"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/connlimit"
	"github.com/pandoplatform/pando/internal/routestream"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// Caps of the cell listener: a cell holds a few connections (reports,
// logs, parallel blob transfers), anyone may open a TLS handshake.
const (
	maxCellConns        = 4096
	maxCellConnsPerCell = 128
)

// cellAPIAddr is --cell-api-addr, or the API's host on the API's port
// plus one (127.0.0.1:9023 for the default API address), so servers on
// different API ports do not collide.
func cellAPIAddr(cfg Config) string {
	if cfg.CellAPIAddr != "" {
		return cfg.CellAPIAddr
	}
	host, port, err := net.SplitHostPort(cfg.APIAddr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n <= 0 || n >= 65535 {
		return "127.0.0.1:9023"
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// cellAPI is the server's side of joined cells: the CA, the join token
// and the mutual-TLS listener cells report, fetch blobs and ship logs on.
type cellAPI struct {
	ca     *cellauth.CA
	addr   string // the listener's actual address
	ln     net.Listener
	srv    *http.Server
	grants *cellapi.Grants
	// rsKey seals route service signatures: derived from the router
	// token, so every router that follows the table shares it.
	rsKey []byte
}

// listenCellAPI creates (or loads) the CA, the join token and the router
// token in the data dir and listens for cells, and for routers in other
// processes following routes.
func listenCellAPI(cfg Config, board *bbs.BBS, blobs pando.Blobstore, logSink pando.LogSink, routes *routestream.Hub, log *slog.Logger) (*cellAPI, error) {
	ca, err := cellauth.LoadOrCreateCA(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	tok, err := cellauth.LoadOrCreateToken(filepath.Join(cfg.DataDir, cellauth.TokenFile), ca)
	if err != nil {
		return nil, err
	}
	routerTok, err := cellauth.LoadOrCreateRouterToken(filepath.Join(cfg.DataDir, cellauth.RouterTokenFile), ca)
	if err != nil {
		return nil, err
	}
	cert, err := ca.ServerCertificate()
	if err != nil {
		return nil, fmt.Errorf("cell API certificate: %w", err)
	}
	addr := cellAPIAddr(cfg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &cellListenError{addr: addr, err: err}
	}
	grants := cellapi.NewGrants()
	h, err := cellapi.NewServerHandler(cellapi.ServerConfig{
		CA: ca, Token: tok, Cells: board, Reporter: board, Owners: board,
		Blobs: blobs, Logs: logSink, Grants: grants,
		RepHTTP:     cellapi.RepHTTPClient(cert, ca.Pool()),
		PresenceTTL: board.CellPresenceTTL(),
		Logger:      log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	// Routers read the routing table with the router token's secret, over
	// TLS with the server's certificate; they get no client certificate,
	// so nothing else here serves them.
	authorizeRouter := func(r *http.Request) error {
		if !routerTok.MatchSecret(routestream.BearerSecret(r)) {
			// Said to the route stream and the log shipper alike.
			return pando.Errorf(pando.EUnauthenticated, "router refused: wrong or missing router token: start the router with the server's current <data-dir>/%s", cellauth.RouterTokenFile)
		}
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+routestream.Path, routes.Handler(routestream.HandlerConfig{
		Authorize: authorizeRouter,
		Logger:    log.With("component", "route-stream"),
	}))
	mux.Handle("POST "+routestream.LogsPath, routerLogs(authorizeRouter, routes, logSink, log))
	mux.Handle("/", h)
	srv := internalServer(mux, log)
	return &cellAPI{ca: ca, addr: ln.Addr().String(), ln: tls.NewListener(connlimit.Wrap(ln, maxCellConns, maxCellConnsPerCell, "the cell API"), cellauth.ServerTLS(cert, ca.Pool())), srv: srv, grants: grants, rsKey: routerTok.RouteServiceKey()}, nil
}

// joinRoute answers joining cells on the API (cellauth.JoinInfoPath).
// cellListenError is a cell API address that cannot be listened on.
type cellListenError struct {
	addr string
	err  error
}

func (e *cellListenError) Error() string {
	return fmt.Sprintf("listen on cell API address %s: %v (use --cell-api-addr)", e.addr, e.err)
}

func (e *cellListenError) Unwrap() error { return e.err }

// routerLogs takes a separate router's access log lines (PostLogs's
// form): RTR lines of apps in the routing table only.
func routerLogs(authorize func(*http.Request) error, routes *routestream.Hub, sink pando.LogSink, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := authorize(r); err != nil {
			log.Info("router log lines refused", "remote_addr", r.RemoteAddr, "err", err)
			wireerr.Write(w, pando.ErrorKindOf(err), err.Error())
			return
		}
		refused, err := cellapi.ReadLogs(r.Body, func(e pando.LogEnvelope) bool {
			if e.SourceType != pando.LogSourceRouter || !routes.HasApp(e.SourceID) {
				return false
			}
			sink.Emit(e)
			return true
		})
		if err != nil {
			wireerr.Write(w, pando.ErrorKindOf(err), err.Error())
			return
		}
		if refused > 0 {
			log.Debug("dropped router log lines: not RTR lines of a routed app", "remote_addr", r.RemoteAddr, "lines", refused)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// joinRoute and serve do nothing on a nil cellAPI (a server whose derived
// cell API port was taken: no cell can join it).
func (c *cellAPI) joinRoute(mux *http.ServeMux) {
	if c == nil {
		return
	}
	mux.Handle("GET "+cellauth.JoinInfoPath, cellapi.JoinInfoHandler(c.ca, c.addr))
}

func (c *cellAPI) serve(ctx context.Context) error {
	if c == nil {
		return nil
	}
	// Routing table streams end when the server stops, not 10 s later.
	c.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	return serveUntil(ctx, c.srv, c.ln)
}

// routeServiceKey is the route service key routers in other processes
// share, or nil (the router makes one of its own) when none can follow.
func (c *cellAPI) routeServiceKey() []byte {
	if c == nil {
		return nil
	}
	return c.rsKey
}

// address is where cells join, or "" when they cannot.
func (c *cellAPI) address() string {
	if c == nil {
		return ""
	}
	return c.addr
}

// cellStats reads an instance's stats from the cell it is on, local or
// joined.
type cellStats struct{ board *bbs.BBS }

func (c cellStats) InstanceStats(ctx context.Context, cellID, instanceGUID string) (pando.InstanceStats, error) {
	cell, ok := c.board.Cell(cellID)
	if !ok {
		return pando.InstanceStats{}, pando.Errorf(pando.ENotFound, "cell %s not found", cellID)
	}
	return cell.Stats(ctx, instanceGUID)
}
