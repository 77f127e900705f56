package cellapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cellauth"
)

// CellRegistry is where joined cells register (the BBS).
type CellRegistry interface {
	RegisterCell(c pando.Cell)
	HeartbeatCell(id string) error
	UnregisterCell(id string)
	DrainCell(ctx context.Context, id string) error
	Cell(id string) (pando.Cell, bool)
	// CellSynced takes what a cell runs when it registers with a server
	// that did not know it (after a restart): the runtime adopts what it
	// still wants there and stops the rest.
	CellSynced(ctx context.Context, id string, inv pando.CellInventory) error
	// SyncCell answers a cell's periodic inventory: what it is to stop,
	// and what the runtime adopted (every other item is kept).
	SyncCell(ctx context.Context, id string, inv pando.CellInventory) (pando.CellSyncAnswer, error)
	// AwaitingCell says whether the runtime still waits for the cell's
	// inventory after a restart: a blob refused to it then may be one its
	// work needs that the server has not heard of yet, and the cell is
	// told to try again.
	AwaitingCell(id string) bool
}

// ownerReader tells which cell an instance or a task is on, so a cell's
// reports only touch its own work.
type ownerReader interface {
	ActualLRPs(ctx context.Context, processGUID string) ([]pando.ActualLRP, error)
	DesiredLRP(ctx context.Context, processGUID string) (pando.DesiredLRP, error)
	Task(ctx context.Context, guid string) (pando.Task, error)
}

// ServerConfig configures the server's cell API. All fields but Logger
// are required.
type ServerConfig struct {
	CA       *cellauth.CA
	Token    cellauth.Token
	Cells    CellRegistry
	Reporter pando.CellReporter
	Owners   ownerReader
	Blobs    pando.Blobstore
	Logs     pando.LogSink
	Grants   *Grants
	// RepHTTP returns the client that calls cell id's rep: it presents
	// the server's certificate and verifies the cell's (RepHTTPClient).
	RepHTTP func(cellID string) *http.Client
	// PresenceTTL, when set, is the BBS's cell presence TTL, told to cells
	// in each presence answer: they renew at a third of it.
	PresenceTTL time.Duration
	Logger      *slog.Logger
}

// Presence is a cell's registration and heartbeat.
type Presence struct {
	// RepURL is where the cell's rep API listens (https://ADDR).
	RepURL string `json:"rep_url"`
	// State is the cell's capacity when it sent this (for the log; the
	// BBS asks the rep for it).
	State pando.CellState `json:"state"`
	// Session is random per cell process. A known cell that presents a
	// new one (or a new RepURL) was restarted: what the server placed on
	// it before is gone (a cell cleans up its containers at start).
	Session string `json:"session,omitempty"`
}

// PresenceAnswer answers a presence. Registered says the server did not
// know the cell (its first presence, or the server forgot it: the cell
// was lost, e.g. behind a network partition, and its instances were
// placed elsewhere): the cell then reports its instances again, and the
// server stops those it no longer wants there.
type PresenceAnswer struct {
	Registered bool `json:"registered"`
	// TTLMillis is the server's presence TTL: a cell renews at a third
	// of it (KeepPresence). Absent from older servers.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
}

// removedReport is the body of an instance removal report.
type removedReport struct {
	ProcessGUID  string `json:"process_guid"`
	InstanceGUID string `json:"instance_guid"`
}

// Wire paths of the server's cell API.
const (
	presencePath      = "/v1/presence"
	drainPath         = "/v1/drain"
	actualChangedPath = "/v1/reports/actual_lrp_changed"
	actualRemovedPath = "/v1/reports/actual_lrp_removed"
	taskCompletedPath = "/v1/reports/task_completed"
	inventoryPath     = "/v1/reports/inventory"
	syncPath          = "/v1/reports/sync"
	blobsPath         = "/v1/blobs/"
	logsPath          = "/v1/logs"
	// checksumTrailer carries a blob's SHA-256 after its bytes, both ways.
	checksumTrailer = "X-Pando-Sha256"
	maxLogLine      = 256 << 10
	// maxJoining bounds join requests handled at once.
	maxJoining = 4
)

type server struct {
	cfg     ServerConfig
	log     *slog.Logger
	joins   chan struct{} // join slots
	mux     *http.ServeMux
	refused sync.Map // cell id -> struct{}: log lines refused (logged once)

	// presenceMu serialises presences, so that a cell's registration and
	// its session are decided together.
	presenceMu sync.Mutex
	sessions   map[string]string // cell id -> the session of its last presence
}

// NewServerHandler serves the cell API on the server's cell listener (its
// TLS config from cellauth.ServerTLS).
func NewServerHandler(cfg ServerConfig) (http.Handler, error) {
	if cfg.CA == nil || cfg.Cells == nil || cfg.Reporter == nil || cfg.Owners == nil || cfg.Blobs == nil ||
		cfg.Logs == nil || cfg.Grants == nil || cfg.RepHTTP == nil || cfg.Token.Secret == "" {
		return nil, errors.New("cellapi: incomplete ServerConfig")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), joins: make(chan struct{}, maxJoining),
		sessions: map[string]string{}}
	s.mux.Handle("POST "+cellauth.JoinPath, route(s.join))
	cells := map[string]func(w http.ResponseWriter, r *http.Request, id string) error{
		"POST " + presencePath:           s.presence,
		"DELETE " + presencePath:         s.leave,
		"POST " + drainPath:              s.drain,
		"POST " + actualChangedPath:      s.actualChanged,
		"POST " + actualRemovedPath:      s.actualRemoved,
		"POST " + taskCompletedPath:      s.taskCompleted,
		"POST " + inventoryPath:          s.inventory,
		"POST " + syncPath:               s.sync,
		"GET " + blobsPath + "{key...}":  s.getBlob,
		"HEAD " + blobsPath + "{key...}": s.headBlob,
		"PUT " + blobsPath + "{key...}":  s.putBlob,
		"POST " + logsPath:               s.logs,
	}
	for pattern, fn := range cells {
		s.mux.Handle(pattern, route(func(w http.ResponseWriter, r *http.Request) error {
			p, err := peer(r, func(p cellauth.Peer) bool { return p.CellID != "" })
			if err != nil {
				s.log.Info("cell API request refused", "remote_addr", r.RemoteAddr, "path", r.URL.Path, "err", err)
				return err
			}
			return fn(w, r, p.CellID)
		}))
	}
	return s.mux, nil
}

// RepHTTPClient returns, per cell, a client of its rep that presents
// the server's certificate and accepts only that cell's.
func RepHTTPClient(serverCert tls.Certificate, pool *x509.CertPool) func(cellID string) *http.Client {
	return func(id string) *http.Client {
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig:     cellauth.ClientTLS(&serverCert, pool, cellauth.CellName(id)),
			Proxy:               nil,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}}
	}
}

// JoinInfoHandler answers cellauth.JoinInfoPath on the API: the CA and
// where the cell listener is.
func JoinInfoHandler(ca *cellauth.CA, cellAPIAddr string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, cellauth.JoinInfo{CAPEM: string(ca.PEM), CellAPIAddr: cellAPIAddr})
	}
}

func (s *server) join(w http.ResponseWriter, r *http.Request) error {
	var jr cellauth.JoinRequest
	if err := readJSON(r, &jr); err != nil {
		return err
	}
	// A few joins at a time, and a wrong secret holds its slot for a
	// second: guessing the secret stays hopeless, the log stays readable.
	select {
	case s.joins <- struct{}{}:
		defer func() { <-s.joins }()
	default:
		return pando.Errorf(pando.EUnavailable, "too many cells joining at once: try again")
	}
	if c, ok := s.cfg.Cells.Cell(jr.CellID); ok {
		if _, remote := c.(*RepClient); !remote {
			return pando.Errorf(pando.EConflict, "cell id %q is the server's own cell: join with another --id", jr.CellID)
		}
	}
	resp, err := s.cfg.CA.HandleJoin(s.cfg.Token, jr)
	if err != nil {
		s.log.Warn("cell join refused", "cell_id", jr.CellID, "remote_addr", r.RemoteAddr, "err", err)
		if pando.ErrorKindOf(err) == pando.EUnauthenticated {
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
			}
		}
		return err
	}
	s.log.Info("cell joined: certificate issued", "cell_id", jr.CellID, "remote_addr", r.RemoteAddr)
	writeJSON(w, resp)
	return nil
}

func (s *server) presence(w http.ResponseWriter, r *http.Request, id string) error {
	var p Presence
	if err := readJSON(r, &p); err != nil {
		return err
	}
	u, err := url.Parse(p.RepURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" {
		return pando.Errorf(pando.EBadRequest, "rep_url %q: want https://HOST:PORT", p.RepURL)
	}
	s.presenceMu.Lock()
	defer s.presenceMu.Unlock()
	existing, known := s.cfg.Cells.Cell(id)
	restarted := false
	if known {
		rc, remote := existing.(*RepClient)
		if !remote {
			return pando.Errorf(pando.EConflict, "cell id %q is the server's own cell: join with another --id", id)
		}
		last := s.sessions[id]
		restarted = rc.URL() != p.RepURL || (last != "" && p.Session != "" && p.Session != last)
	}
	s.sessions[id] = p.Session
	if restarted {
		// Back before its presence expired, but as a new process: the
		// instances and tasks placed on it are gone with the old one.
		s.log.Warn("cell restarted: what it ran is placed again", "cell_id", id, "rep_url", p.RepURL)
		s.cfg.Cells.UnregisterCell(id)
	}
	registered := !known || restarted
	if registered {
		s.cfg.Cells.RegisterCell(NewRepClient(id, p.RepURL, s.cfg.RepHTTP(id), s.cfg.Grants))
		s.log.Info("cell registered", "cell_id", id, "rep_url", p.RepURL, "zone", p.State.Zone,
			"memory_mb", p.State.TotalMemoryMB, "disk_mb", p.State.TotalDiskMB,
			"containers", p.State.TotalContainers, "stacks", strings.Join(p.State.Stacks, ","))
	}
	if err := s.cfg.Cells.HeartbeatCell(id); err != nil {
		return err
	}
	writeJSON(w, PresenceAnswer{Registered: registered, TTLMillis: s.cfg.PresenceTTL.Milliseconds()})
	return nil
}

// leave unregisters a cell that stops: what it still had is placed
// elsewhere.
func (s *server) leave(w http.ResponseWriter, r *http.Request, id string) error {
	if c, ok := s.cfg.Cells.Cell(id); ok {
		if _, remote := c.(*RepClient); !remote {
			return pando.Errorf(pando.EConflict, "cell id %q is the server's own cell", id)
		}
		s.cfg.Cells.UnregisterCell(id)
		s.log.Info("cell left", "cell_id", id)
	}
	s.presenceMu.Lock()
	delete(s.sessions, id)
	s.presenceMu.Unlock()
	return noContent(w, nil)
}

// drain evacuates a cell that is about to stop: each of its instances
// keeps running until its replacement elsewhere is RUNNING, then the
// server stops it.
func (s *server) drain(w http.ResponseWriter, r *http.Request, id string) error {
	c, ok := s.cfg.Cells.Cell(id)
	if !ok {
		return pando.Errorf(pando.ENotFound, "cell %q is not registered", id)
	}
	if _, remote := c.(*RepClient); !remote {
		return pando.Errorf(pando.EConflict, "cell id %q is the server's own cell", id)
	}
	if err := s.cfg.Cells.DrainCell(r.Context(), id); err != nil {
		return err
	}
	s.log.Info("cell draining", "cell_id", id)
	st, ok := s.cfg.Cells.(strandedTaker)
	if !ok {
		return noContent(w, nil)
	}
	writeJSON(w, DrainAnswer{Stopping: st.TakeStranded(id)})
	return nil
}

// strandedTaker tells which of a draining cell's instances no other cell
// can take (the BBS).
type strandedTaker interface {
	TakeStranded(id string) []pando.ActualLRP
}

// DrainAnswer is the server's answer to a cell's drain: the instances no
// other cell can take, which the server stops after a short grace (each
// with the reason in PlacementError). The others move as usual.
type DrainAnswer struct {
	Stopping []pando.ActualLRP `json:"stopping,omitempty"`
}

func (s *server) actualChanged(w http.ResponseWriter, r *http.Request, id string) error {
	var a pando.ActualLRP
	if err := readJSON(r, &a); err != nil {
		return err
	}
	if a.CellID != "" && a.CellID != id {
		return pando.Errorf(pando.EForbidden, "cell %s cannot report for cell %s", id, a.CellID)
	}
	a.CellID = id
	if err := s.cfg.Reporter.ActualLRPChanged(r.Context(), a); err != nil {
		return err
	}
	s.regrant(r.Context(), id, a)
	return noContent(w, nil)
}

// regrant gives a cell the grants of an instance the runtime has on it,
// as StartLRP did: grants live in memory, so after a server restart a
// cell's running instances get theirs back (logs, droplet) from its
// reports. A report on an instance the runtime does not place there
// grants nothing.
func (s *server) regrant(ctx context.Context, id string, a pando.ActualLRP) {
	if a.State != pando.ActualRunning && a.State != pando.ActualClaimed {
		return
	}
	as, err := s.cfg.Owners.ActualLRPs(ctx, a.ProcessGUID)
	if err != nil {
		return
	}
	for _, cur := range as {
		if cur.InstanceGUID == a.InstanceGUID && cur.CellID == id {
			if d, err := s.cfg.Owners.DesiredLRP(ctx, a.ProcessGUID); err == nil {
				s.cfg.Grants.grantLRP(id, d)
			}
			return
		}
	}
}

func (s *server) actualRemoved(w http.ResponseWriter, r *http.Request, id string) error {
	var rr removedReport
	if err := readJSON(r, &rr); err != nil {
		return err
	}
	as, err := s.cfg.Owners.ActualLRPs(r.Context(), rr.ProcessGUID)
	if err != nil && !pando.IsNotFound(err) {
		return err
	}
	for _, a := range as {
		if a.InstanceGUID == rr.InstanceGUID && a.CellID != "" && a.CellID != id {
			return pando.Errorf(pando.EForbidden, "instance %s is not on cell %s", rr.InstanceGUID, id)
		}
	}
	return noContent(w, s.cfg.Reporter.ActualLRPRemoved(r.Context(), rr.ProcessGUID, rr.InstanceGUID))
}

func (s *server) taskCompleted(w http.ResponseWriter, r *http.Request, id string) error {
	var t pando.Task
	if err := readJSON(r, &t); err != nil {
		return err
	}
	cur, err := s.cfg.Owners.Task(r.Context(), t.GUID)
	switch {
	case pando.IsNotFound(err):
		// Cancelled and forgotten meanwhile, or in flight before a
		// server restart: the runtime lets the cell claim it then.
	case err != nil:
		return err
	case cur.CellID != id:
		return pando.Errorf(pando.EForbidden, "task %s is not on cell %s", t.GUID, id)
	}
	t.CellID = id
	return noContent(w, s.cfg.Reporter.TaskCompleted(r.Context(), t))
}

// maxInventoryItems bounds one inventory (instances, tasks and ending
// instances).
const maxInventoryItems = 100000

// inventory takes what a cell runs after it registered with a server that
// did not know it (restarted, or that had lost the cell): the runtime
// adopts the instances and tasks it still wants, and the cell gets their
// grants back (they live in memory).
func (s *server) inventory(w http.ResponseWriter, r *http.Request, id string) error {
	inv, err := readInventory(r, id)
	if err != nil {
		return err
	}
	if err := s.cfg.Cells.CellSynced(r.Context(), id, inv); err != nil {
		return err
	}
	for _, a := range inv.Actuals {
		s.regrant(r.Context(), id, a)
	}
	for _, t := range inv.Tasks {
		if cur, err := s.cfg.Owners.Task(r.Context(), t.GUID); err == nil && cur.CellID == id && cur.State != pando.TaskCompleted {
			s.cfg.Grants.grantTask(id, cur)
		}
	}
	return noContent(w, nil)
}

// readInventory reads a cell's inventory, bounded, as the cell's own.
func readInventory(r *http.Request, id string) (pando.CellInventory, error) {
	var inv pando.CellInventory
	if err := readJSON(r, &inv); err != nil {
		return inv, err
	}
	if n := len(inv.Actuals) + len(inv.Tasks) + len(inv.Ending); n > maxInventoryItems {
		return inv, pando.Errorf(pando.ETooLarge, "inventory of %d items: at most %d", n, maxInventoryItems)
	}
	for i := range inv.Actuals {
		if c := inv.Actuals[i].CellID; c != "" && c != id {
			return inv, pando.Errorf(pando.EForbidden, "cell %s cannot report for cell %s", id, c)
		}
		inv.Actuals[i].CellID = id
	}
	for i := range inv.Tasks {
		inv.Tasks[i].CellID = id
	}
	return inv, nil
}

// sync answers a cell's periodic inventory (cell.RunSync) with what it
// is to stop; an instance the runtime adopted gets its grants back.
func (s *server) sync(w http.ResponseWriter, r *http.Request, id string) error {
	inv, err := readInventory(r, id)
	if err != nil {
		return err
	}
	ans, err := s.cfg.Cells.SyncCell(r.Context(), id, inv)
	if err != nil {
		return err
	}
	adopted := map[string]bool{}
	for _, v := range ans.Actuals {
		if v.Action == pando.SyncAdopt {
			adopted[v.GUID] = true
		}
	}
	for _, a := range inv.Actuals {
		if adopted[a.InstanceGUID] {
			s.regrant(r.Context(), id, a)
		}
	}
	writeJSON(w, ans)
	return nil
}

func (s *server) blobKey(r *http.Request, id string, write bool) (string, error) {
	key := r.PathValue("key")
	ok := s.cfg.Grants.CanRead(id, key)
	if write {
		ok = s.cfg.Grants.CanWrite(id, key)
	}
	if !ok {
		if s.cfg.Cells.AwaitingCell(id) {
			return "", pando.Errorf(pando.EUnavailable, "cell %s has not reported its work to this server since it restarted: try again", id)
		}
		s.log.Warn("blob refused: the cell was given no work that needs it", "cell_id", id, "key", key, "write", write)
		return "", pando.Errorf(pando.EForbidden, "cell %s was given no work that needs blob %s", id, key)
	}
	return key, nil
}

func (s *server) headBlob(w http.ResponseWriter, r *http.Request, id string) error {
	key, err := s.blobKey(r, id, false)
	if err != nil {
		return err
	}
	ok, err := s.cfg.Blobs.Exists(r.Context(), key)
	if err != nil {
		return err
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	return noContent(w, nil)
}

// putBlob stores a blob whose SHA-256 arrives in a trailer: a body that
// does not match it is not stored.
func (s *server) putBlob(w http.ResponseWriter, r *http.Request, id string) error {
	key, err := s.blobKey(r, id, true)
	if err != nil {
		return err
	}
	body := &verifyingReader{r: r.Body, h: sha256.New(), want: func() string { return r.Trailer.Get(checksumTrailer) }}
	info, err := s.cfg.Blobs.Put(r.Context(), key, body)
	if err != nil {
		return err
	}
	s.log.Info("blob stored from cell", "cell_id", id, "key", key, "size", info.Size)
	writeJSON(w, info)
	return nil
}

// verifyingReader fails at EOF unless what passed has the SHA-256 want
// says (read only then: trailers arrive after the body).
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want func() string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		got, want := hex.EncodeToString(v.h.Sum(nil)), v.want()
		if want == "" {
			return n, pando.Errorf(pando.EBadRequest, "blob upload without its %s trailer", checksumTrailer)
		}
		if got != want {
			return n, pando.Errorf(pando.EBadRequest, "blob upload corrupted: sha256 %s, sent as %s", got, want)
		}
	}
	return n, err
}

// logs takes newline-delimited JSON envelopes into the log store; lines
// of apps the cell runs nothing of are dropped.
func (s *server) logs(w http.ResponseWriter, r *http.Request, id string) error {
	refused, err := ReadLogs(r.Body, func(e pando.LogEnvelope) bool {
		if !s.cfg.Grants.CanLog(id, e.SourceID) {
			return false
		}
		s.cfg.Logs.Emit(e)
		return true
	})
	if err != nil {
		return err
	}
	if refused > 0 {
		if _, seen := s.refused.LoadOrStore(id, struct{}{}); !seen {
			s.log.Warn("dropped log lines of apps the cell runs nothing of", "cell_id", id, "lines", refused)
		}
	}
	return noContent(w, nil)
}

// readLine reads one line of at most max bytes (without the newline).
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return line, err
	}
}
