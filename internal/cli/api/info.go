package api

import (
	"context"
	"net/http"
)

// Info is the part of GET /v3/info the CLI reads.
type Info struct {
	Custom struct {
		// MaxUploadBytes is Pando's bound on a package upload (0: not
		// published, as by Cloud Foundry).
		MaxUploadBytes int64 `json:"pando_max_upload_bytes"`
	} `json:"custom"`
}

// Info reads the platform's /v3/info.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var in Info
	if _, err := c.do(ctx, http.MethodGet, "/v3/info", nil, &in); err != nil {
		return nil, err
	}
	return &in, nil
}
