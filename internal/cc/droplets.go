package cc

import (
	"net/http"

	"github.com/pandoplatform/pando"
)

func (a *API) paginateDroplets(w http.ResponseWriter, r *http.Request, drops []pando.Droplet) {
	paginate(a, w, r, drops, func(d pando.Droplet) sortable {
		return sortable{createdAt: d.CreatedAt, updatedAt: d.UpdatedAt}
	}, func(d pando.Droplet) any { return a.presentDroplet(d) })
}

func (a *API) listDroplets(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	drops, err := a.store.ListDroplets(r.Context(), splitList(q, "app_guids"), splitList(q, "states"))
	if err != nil {
		return err
	}
	if guids := splitList(q, "guids"); len(guids) > 0 {
		keep := drops[:0]
		for _, d := range drops {
			if contains(guids, d.GUID) {
				keep = append(keep, d)
			}
		}
		drops = keep
	}
	a.paginateDroplets(w, r, drops)
	return nil
}

func (a *API) getDroplet(w http.ResponseWriter, r *http.Request) error {
	d, err := a.store.GetDroplet(r.Context(), r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Droplet")
	}
	writeJSON(w, http.StatusOK, a.presentDroplet(d))
	return nil
}

func (a *API) downloadDroplet(w http.ResponseWriter, r *http.Request) error {
	d, err := a.store.GetDroplet(r.Context(), r.PathValue("guid"))
	if err != nil {
		return asNotFound(err, "Droplet")
	}
	if d.State != pando.DropletStaged || d.LifecycleType == pando.LifecycleDocker {
		return invalid("Droplet is not a staged buildpack droplet")
	}
	if app, err := a.store.GetApp(r.Context(), d.AppGUID); err == nil {
		a.recordAppEvent(r.Context(), identityFrom(r.Context()), "audit.app.droplet.download", app, map[string]any{"droplet_guid": d.GUID})
	}
	return a.streamBlob(w, r, pando.DropletBlobKey(d.GUID), "application/gzip", d.GUID+".tgz")
}
