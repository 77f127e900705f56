package cellapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/stackprobe"
)

// startLRPRequest is the body of POST /v1/lrps.
type startLRPRequest struct {
	LRP          pando.DesiredLRP `json:"lrp"`
	Index        int              `json:"index"`
	InstanceGUID string           `json:"instance_guid"`
}

// NewRepHandler serves a cell's rep (pando.Cell) to the server: only
// requests with the server's certificate pass.
func NewRepHandler(c pando.Cell) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/state", route(func(w http.ResponseWriter, r *http.Request) error {
		s, err := c.State(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, s)
		return nil
	}))
	mux.Handle("POST /v1/lrps", route(func(w http.ResponseWriter, r *http.Request) error {
		var req startLRPRequest
		if err := readJSON(r, &req); err != nil {
			return err
		}
		return noContent(w, c.StartLRP(r.Context(), req.LRP, req.Index, req.InstanceGUID))
	}))
	mux.Handle("DELETE /v1/lrps/{process_guid}/{instance_guid}", route(func(w http.ResponseWriter, r *http.Request) error {
		return noContent(w, c.StopLRP(r.Context(), r.PathValue("process_guid"), r.PathValue("instance_guid")))
	}))
	mux.Handle("POST /v1/tasks", route(func(w http.ResponseWriter, r *http.Request) error {
		var t pando.Task
		if err := readJSON(r, &t); err != nil {
			return err
		}
		return noContent(w, c.RunTask(r.Context(), t))
	}))
	mux.Handle("DELETE /v1/tasks/{guid}", route(func(w http.ResponseWriter, r *http.Request) error {
		return noContent(w, c.CancelTask(r.Context(), r.PathValue("guid")))
	}))
	mux.Handle("GET /v1/stats/{instance_guid}", route(func(w http.ResponseWriter, r *http.Request) error {
		s, err := c.Stats(r.Context(), r.PathValue("instance_guid"))
		if err != nil {
			return err
		}
		writeJSON(w, s)
		return nil
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := peer(r, func(p cellauth.Peer) bool { return p.Server }); err != nil {
			writeError(w, err)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// RepClient is a joined cell as the BBS sees it: pando.Cell over the
// cell's rep API. Grants, when set, learns the blobs and apps each piece
// of work entitles the cell to.
type RepClient struct {
	id     string
	base   string
	hc     *http.Client
	grants *Grants
}

var _ pando.Cell = (*RepClient)(nil)

// NewRepClient calls cell id's rep at baseURL (https://ADDR) with hc,
// whose transport presents the server's certificate and verifies the
// cell's (cellauth.ClientTLS with cellauth.CellName(id)).
func NewRepClient(id, baseURL string, hc *http.Client, grants *Grants) *RepClient {
	return &RepClient{id: id, base: strings.TrimRight(baseURL, "/"), hc: hc, grants: grants}
}

func (c *RepClient) ID() string { return c.id }

// URL is the rep's base URL.
func (c *RepClient) URL() string { return c.base }

func (c *RepClient) State(ctx context.Context) (pando.CellState, error) {
	var s pando.CellState
	err := call(ctx, c.hc, "GET", c.base+"/v1/state", nil, &s)
	// Shown to users (pando stacks): only runtimes as a cell reports them.
	s.Runtimes = stackprobe.CleanReport(s.Stacks, s.Runtimes)
	return s, err
}

func (c *RepClient) StartLRP(ctx context.Context, lrp pando.DesiredLRP, index int, instanceGUID string) error {
	c.grants.grantLRP(c.id, lrp)
	return call(ctx, c.hc, "POST", c.base+"/v1/lrps", startLRPRequest{LRP: lrp, Index: index, InstanceGUID: instanceGUID}, nil)
}

func (c *RepClient) StopLRP(ctx context.Context, processGUID, instanceGUID string) error {
	return call(ctx, c.hc, "DELETE", c.base+"/v1/lrps/"+url.PathEscape(processGUID)+"/"+url.PathEscape(instanceGUID), nil, nil)
}

func (c *RepClient) RunTask(ctx context.Context, t pando.Task) error {
	c.grants.grantTask(c.id, t)
	return call(ctx, c.hc, "POST", c.base+"/v1/tasks", t, nil)
}

func (c *RepClient) CancelTask(ctx context.Context, guid string) error {
	return call(ctx, c.hc, "DELETE", c.base+"/v1/tasks/"+url.PathEscape(guid), nil, nil)
}

func (c *RepClient) Stats(ctx context.Context, instanceGUID string) (pando.InstanceStats, error) {
	var s pando.InstanceStats
	err := call(ctx, c.hc, "GET", c.base+"/v1/stats/"+url.PathEscape(instanceGUID), nil, &s)
	return s, err
}
