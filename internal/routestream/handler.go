package routestream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// Defaults of the stream's timing.
const (
	// DefaultHeartbeat is how often a quiet stream says it is alive; a
	// follower gives up on a stream silent for a few of them.
	DefaultHeartbeat = 10 * time.Second
	// DefaultWriteTimeout bounds one batch's write to a router: one that
	// stops reading is cut off (it reconnects and gets a snapshot).
	DefaultWriteTimeout = 30 * time.Second
)

// HandlerConfig configures the stream's HTTP handler.
type HandlerConfig struct {
	// Authorize says whether a request may read the table (required).
	Authorize    func(r *http.Request) error
	Heartbeat    time.Duration
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Handler serves the Hub's stream (GET Path) to routers. The stream ends
// when the request's context does.
func (h *Hub) Handler(cfg HandlerConfig) http.Handler {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			wireerr.Write(w, pando.EBadRequest, "the routing table is read with GET")
			return
		}
		if cfg.Authorize == nil {
			wireerr.Write(w, pando.EUnauthenticated, "routing table: no router may read it")
			return
		}
		if err := cfg.Authorize(r); err != nil {
			log.Info("routing table request refused", "remote_addr", r.RemoteAddr, "err", err)
			wireerr.Write(w, pando.ErrorKindOf(err), err.Error())
			return
		}
		sub, err := h.Subscribe()
		if err != nil {
			wireerr.Write(w, pando.EUnavailable, err.Error())
			return
		}
		defer sub.Close()
		log.Info("router following the routing table", "remote_addr", r.RemoteAddr)
		err = stream(r, w, sub, cfg)
		log.Info("router stopped following the routing table", "remote_addr", r.RemoteAddr, "err", err)
	})
}

// stream writes sub's batches and heartbeats to w until the request ends
// or a write fails.
func stream(r *http.Request, w http.ResponseWriter, sub *Subscription, cfg HandlerConfig) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// The router learns it is in at once, even from a held Hub.
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("write routing table: %w", err)
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	write := func(msgs []Message) error {
		// A deadline per batch: a router that reads, however slowly,
		// is served; one that stops is cut off.
		if err := rc.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		for i := range msgs {
			if err := enc.Encode(&msgs[i]); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	beat := time.NewTicker(cfg.Heartbeat)
	defer beat.Stop()
	batches := make(chan []Message)
	errc := make(chan error, 1)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	// Next blocks; the heartbeat must not wait behind it.
	go func() {
		defer close(done)
		for {
			msgs, err := sub.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case batches <- msgs:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	for {
		var err error
		select {
		case err = <-errc:
			return err
		case msgs := <-batches:
			err = write(msgs)
		case <-beat.C:
			err = write([]Message{{Type: TypeHeartbeat}})
		}
		if err != nil {
			return fmt.Errorf("write routing table: %w", err)
		}
	}
}
