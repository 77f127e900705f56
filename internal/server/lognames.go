package server

import (
	"context"

	"github.com/pandoplatform/pando"
)

// appNamer names the app a log source (an app GUID) belongs to, for the
// log-cache API's app_name tag.
func appNamer(store pando.Store) func(ctx context.Context, sourceID string) string {
	return func(ctx context.Context, sourceID string) string {
		app, err := store.GetApp(ctx, sourceID)
		if err != nil {
			return ""
		}
		return app.Name
	}
}
