package cc

import (
	"context"
	"net/http"
	"time"

	"github.com/pandoplatform/pando"
)

// jobRetention is how long finished jobs are kept, as CF's pollable job
// cleanup (90 days): each push and delete makes one.
const jobRetention = 90 * 24 * time.Hour

// runJob records a job and runs fn before answering, so the job is already
// COMPLETE or FAILED when the client first polls it (the cf CLI waits 3 s
// per poll; finishing synchronously saves those seconds). The work is
// short: it only touches the CCDB and the BBS.
func (a *API) runJob(ctx context.Context, op, resourceType, resourceGUID string, fn func(context.Context) error) pando.Job {
	now := a.now()
	job := pando.Job{
		GUID: a.newGUID(), Operation: op, State: pando.JobProcessing, ResourceType: resourceType, ResourceGUID: resourceGUID,
		UserGUID: identityFrom(ctx).UserGUID, CreatedAt: now, UpdatedAt: now,
	}
	if err := a.store.CreateJob(ctx, job); err != nil {
		a.log.Error("create job", "operation", op, "err", err)
	}
	if now, ok := a.hourly(&a.jobsPrunedAt); ok {
		if err := a.store.DeleteFinishedJobsBefore(ctx, now.Add(-jobRetention)); err != nil {
			a.log.Warn("prune jobs", "err", err)
		}
	}
	// The work must finish even if the client hangs up mid-request.
	ctx = context.WithoutCancel(ctx)
	err := fn(ctx)
	job.UpdatedAt = a.now()
	if err != nil {
		job.State = pando.JobFailed
		ce, detail := cfErrorFor(err)
		if ce.status >= 500 {
			a.log.Error("job failed", "operation", op, "err", err)
		}
		job.Errors = []pando.JobError{{Code: ce.code, Title: ce.title, Detail: detail}}
	} else {
		job.State = pando.JobComplete
	}
	if err := a.store.UpdateJob(ctx, job); err != nil {
		a.log.Error("update job", "operation", op, "err", err)
	}
	return job
}

func (a *API) writeJobAccepted(w http.ResponseWriter, job pando.Job) {
	w.Header().Set("Location", a.url("/v3/jobs/%s", job.GUID))
	w.WriteHeader(http.StatusAccepted)
}

func (a *API) presentJob(j pando.Job) map[string]any {
	errs := make([]any, 0, len(j.Errors))
	for _, e := range j.Errors {
		errs = append(errs, map[string]any{"code": e.Code, "title": e.Title, "detail": e.Detail})
	}
	links := map[string]any{"self": link(a.url("/v3/jobs/%s", j.GUID))}
	if j.ResourceType != "" && j.ResourceGUID != "" {
		links[j.ResourceType] = link(a.url("/v3/%ss/%s", j.ResourceType, j.ResourceGUID))
	}
	return map[string]any{
		"guid":       j.GUID,
		"operation":  j.Operation,
		"state":      j.State,
		"errors":     errs,
		"warnings":   []any{},
		"created_at": ts(j.CreatedAt),
		"updated_at": ts(j.UpdatedAt),
		"links":      links,
	}
}

// getJob is GET /v3/jobs/:guid. A job names the resource it worked on and
// its errors name others (an org's spaces, a route's host), so only the
// user who started it and those who read everything see it; others get
// the 404 of a job that does not exist.
func (a *API) getJob(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, err := a.store.GetJob(ctx, r.PathValue("guid"))
	if err == nil && !permsFrom(ctx).readAll && (j.UserGUID == "" || j.UserGUID != identityFrom(ctx).UserGUID) {
		err = pando.Errorf(pando.ENotFound, "job %s is not the caller's", j.GUID)
	}
	if err != nil {
		return asNotFound(err, "Job")
	}
	writeJSON(w, http.StatusOK, a.presentJob(j))
	return nil
}
