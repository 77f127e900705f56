package cli

import (
	"context"
	"fmt"
)

// checkUploadLimit refuses, before anything is zipped, files to upload that
// together exceed the upload limit the API publishes in /v3/info; a server
// that publishes none (Cloud Foundry) or cannot say is left to answer the
// upload itself.
func (s *session) checkUploadLimit(ctx context.Context, upload []appFile, uploadBytes int64) error {
	info, err := s.c.Info(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return nil
	}
	limit := info.Custom.MaxUploadBytes
	if limit <= 0 || uploadBytes <= limit {
		return nil
	}
	return fmt.Errorf("the files to upload (%s) exceed the server's upload limit (%s); largest files: %s. "+
		"Leave out what the app does not need at run time with a .cfignore file", iecBytes(uploadBytes), iecBytes(limit), largestFiles(upload, 3))
}
