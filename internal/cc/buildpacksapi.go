package cc

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
)

// Admin buildpacks: zips in the blobstore with a position in the detect
// order. Positions always run 1..N without gaps: creating or moving one
// shifts the others, deleting one closes the gap.

// validBuildpackName: 1 to 250 of A-Z, a-z, 0-9, '_', '.', '-'.
func validBuildpackName(s string) bool { return len(s) <= 250 && nameChars(s, true) }

// maxBuildpackEntries bounds the number of files in a buildpack zip.
const maxBuildpackEntries = 100000

func (a *API) presentBuildpack(b pando.Buildpack) map[string]any {
	return map[string]any{
		"guid":       b.GUID,
		"name":       b.Name,
		"stack":      nilIfEmpty(b.Stack),
		"position":   b.Position,
		"enabled":    b.Enabled,
		"locked":     b.Locked,
		"state":      b.State,
		"filename":   nilIfEmpty(b.Filename),
		"lifecycle":  "buildpack",
		"created_at": ts(b.CreatedAt),
		"updated_at": ts(b.UpdatedAt),
		"metadata":   metadata(),
		"links": map[string]any{
			"self":   link(a.url("/v3/buildpacks/%s", b.GUID)),
			"upload": map[string]any{"href": a.url("/v3/buildpacks/%s/upload", b.GUID), "method": "POST"},
		},
	}
}

func buildpackNameTaken(name, stack string) error {
	if stack == "" {
		return pando.Errorf(pando.EConflict, "Buildpack with name '%s' and an unassigned stack already exists", name)
	}
	return pando.Errorf(pando.EConflict, "Buildpack with name '%s' and stack '%s' already exists", name, stack)
}

// checkBuildpackNameFree fails when another buildpack has name on stack.
func checkBuildpackNameFree(ctx context.Context, st pando.Store, guid, name, stack string) error {
	same, err := st.ListBuildpacks(ctx, []string{name})
	if err != nil {
		return fmt.Errorf("list buildpacks: %w", err)
	}
	for _, b := range same {
		if b.GUID != guid && b.Stack == stack {
			return buildpackNameTaken(name, stack)
		}
	}
	return nil
}

// placeBuildpack writes bp at position pos (clamped to 1..N+1) and
// renumbers every buildpack 1..N, keeping the others' relative order. bp
// is created when create is set, else updated.
func (a *API) placeBuildpack(ctx context.Context, tx pando.Store, bp pando.Buildpack, pos int, create bool) (pando.Buildpack, error) {
	all, err := tx.ListBuildpacks(ctx, nil)
	if err != nil {
		return bp, fmt.Errorf("list buildpacks: %w", err)
	}
	others := slices.DeleteFunc(all, func(b pando.Buildpack) bool { return b.GUID == bp.GUID })
	pos = max(1, min(pos, len(others)+1))
	bp.Position = pos
	ordered := slices.Insert(others, pos-1, bp)
	for i, b := range ordered {
		if b.GUID == bp.GUID || b.Position == i+1 {
			continue
		}
		b.Position = i + 1
		if err := tx.UpdateBuildpack(ctx, b); err != nil {
			return bp, fmt.Errorf("move buildpack %s: %w", b.Name, err)
		}
	}
	if create {
		err = tx.CreateBuildpack(ctx, bp)
	} else {
		err = tx.UpdateBuildpack(ctx, bp)
	}
	if err != nil {
		if pando.ErrorKindOf(err) == pando.EConflict {
			return bp, buildpackNameTaken(bp.Name, bp.Stack)
		}
		return bp, fmt.Errorf("save buildpack %s: %w", bp.Name, err)
	}
	return bp, nil
}

// compactBuildpacks renumbers positions 1..N after a deletion.
func compactBuildpacks(ctx context.Context, tx pando.Store) error {
	all, err := tx.ListBuildpacks(ctx, nil)
	if err != nil {
		return fmt.Errorf("list buildpacks: %w", err)
	}
	for i, b := range all {
		if b.Position != i+1 {
			b.Position = i + 1
			if err := tx.UpdateBuildpack(ctx, b); err != nil {
				return fmt.Errorf("move buildpack %s: %w", b.Name, err)
			}
		}
	}
	return nil
}

// buildpackCreate is a request to create a buildpack. Position 0 means last.
type buildpackCreate struct {
	Name     string
	Stack    string
	Position int
	Enabled  bool
	Locked   bool
}

func (a *API) createBuildpack(ctx context.Context, in buildpackCreate) (pando.Buildpack, error) {
	if !validBuildpackName(in.Name) {
		return pando.Buildpack{}, invalid("Name must be 1 to 250 letters, digits, '_', '-' or '.'")
	}
	if in.Position < 0 {
		return pando.Buildpack{}, invalid("Position must be greater than or equal to 1")
	}
	if in.Stack != "" {
		if err := a.checkStack(ctx, in.Stack); err != nil {
			return pando.Buildpack{}, err
		}
	}
	now := a.now()
	bp := pando.Buildpack{
		GUID: a.newGUID(), Name: in.Name, Stack: in.Stack, Enabled: in.Enabled, Locked: in.Locked,
		State: pando.BuildpackAwaitingUpload, CreatedAt: now, UpdatedAt: now,
	}
	pos := in.Position
	if pos == 0 {
		pos = 1 << 30 // last
	}
	err := a.store.InTx(ctx, func(tx pando.Store) error {
		if err := checkBuildpackNameFree(ctx, tx, "", bp.Name, bp.Stack); err != nil {
			return err
		}
		var err error
		bp, err = a.placeBuildpack(ctx, tx, bp, pos, true)
		return err
	})
	if err != nil {
		return pando.Buildpack{}, fmt.Errorf("create buildpack %s: %w", in.Name, err)
	}
	return bp, nil
}

// zipError is CF's BuildpackZipError, which the cf CLI reports as such.
func zipError(format string, args ...any) error {
	return &pando.Error{Kind: pando.EBadZip, Code: 390013, Title: "CF-BuildpackZipError", Message: "Buildpack zip error: " + fmt.Sprintf(format, args...)}
}

// validateBuildpackZip checks that f is a zip whose entries stay inside the
// buildpack directory, whose expanded size is bounded, and which holds the
// buildpack's scripts at its root.
func validateBuildpackZip(f io.ReaderAt, size, maxExpanded int64) error {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return zipError("not a valid zip file: %v", err)
	}
	if len(zr.File) > maxBuildpackEntries {
		return zipError("more than %d files", maxBuildpackEntries)
	}
	var total uint64
	have := map[string]bool{}
	for _, zf := range zr.File {
		name := strings.ReplaceAll(zf.Name, "\\", "/")
		clean := path.Clean(name)
		if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
			return zipError("entry %q points outside the buildpack", zf.Name)
		}
		total += zf.UncompressedSize64
		if total > uint64(maxExpanded) {
			return zipError("expands to more than %d bytes", maxExpanded)
		}
		have[strings.TrimPrefix(clean, "./")] = true
	}
	if !have["bin/compile"] && !have["bin/supply"] && !have["bin/finalize"] {
		return zipError("no bin/compile, bin/supply or bin/finalize at the zip's root; zip the buildpack directory's contents, not the directory itself")
	}
	return nil
}

// storeBuildpackBits validates the zip in f, stores it and marks bp READY.
func (a *API) storeBuildpackBits(ctx context.Context, bp pando.Buildpack, f *os.File, size int64, filename string) (pando.Buildpack, error) {
	if err := validateBuildpackZip(f, size, a.cfg.MaxPackageBytes); err != nil {
		return bp, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return bp, fmt.Errorf("rewind buildpack %s: %w", bp.Name, err)
	}
	info, err := a.blobs.Put(ctx, pando.BuildpackBlobKey(bp.GUID), f)
	if err != nil {
		return bp, fmt.Errorf("store buildpack %s: %w", bp.Name, err)
	}
	// Re-read in the write's transaction: the position, name or flags
	// may have changed while the bits streamed in.
	var cur pando.Buildpack
	err = a.store.InTx(ctx, func(tx pando.Store) error {
		c, err := tx.GetBuildpack(ctx, bp.GUID)
		if err != nil {
			return asNotFound(err, "Buildpack")
		}
		cur = c
		cur.State = pando.BuildpackReady
		cur.Filename = filename
		cur.SHA256 = info.SHA256
		cur.Size = info.Size
		cur.UpdatedAt = a.now()
		if err := tx.UpdateBuildpack(ctx, cur); err != nil {
			return fmt.Errorf("update buildpack %s: %w", bp.Name, err)
		}
		return nil
	})
	if err != nil {
		return bp, err
	}
	return cur, nil
}

// --- handlers ---

func (a *API) registerBuildpackRoutes(h func(string, handlerFunc)) {
	h("GET /v3/buildpacks", a.listBuildpacks)
	h("POST /v3/buildpacks", a.postBuildpack)
	h("GET /v3/buildpacks/{guid}", a.getBuildpack)
	h("PATCH /v3/buildpacks/{guid}", a.patchBuildpack)
	h("DELETE /v3/buildpacks/{guid}", a.deleteBuildpack)
	h("POST /v3/buildpacks/{guid}/upload", a.uploadBuildpack)
}

func (a *API) listBuildpacks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	bps, err := a.store.ListBuildpacks(r.Context(), splitList(q, "names"))
	if err != nil {
		return err
	}
	if stacks, ok := rawList(q, "stacks"); ok {
		bps = slices.DeleteFunc(bps, func(b pando.Buildpack) bool { return !slices.Contains(stacks, b.Stack) })
	}
	if lc := q.Get("lifecycle"); lc != "" && lc != "buildpack" {
		bps = nil
	}
	paginate(a, w, r, bps, func(b pando.Buildpack) sortable {
		return sortable{name: b.Name, createdAt: b.CreatedAt, updatedAt: b.UpdatedAt, position: b.Position}
	}, func(b pando.Buildpack) any { return a.presentBuildpack(b) })
	return nil
}

func (a *API) postBuildpack(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name      *string `json:"name"`
		Stack     *string `json:"stack"`
		Position  *int    `json:"position"`
		Enabled   *bool   `json:"enabled"`
		Locked    *bool   `json:"locked"`
		Lifecycle *string `json:"lifecycle"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if body.Name == nil || *body.Name == "" {
		return invalid("Name must be between 1 and 250 characters")
	}
	if body.Lifecycle != nil && *body.Lifecycle != "buildpack" {
		return invalid("Lifecycle must be 'buildpack': Pando has no cloud native buildpacks")
	}
	in := buildpackCreate{Name: *body.Name, Enabled: true}
	if body.Stack != nil {
		in.Stack = *body.Stack
	}
	if body.Position != nil {
		if *body.Position < 1 {
			return invalid("Position must be greater than or equal to 1")
		}
		in.Position = *body.Position
	}
	if body.Enabled != nil {
		in.Enabled = *body.Enabled
	}
	if body.Locked != nil {
		in.Locked = *body.Locked
	}
	bp, err := a.createBuildpack(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.presentBuildpack(bp))
	return nil
}

func (a *API) getBuildpackByGUID(ctx context.Context, guid string) (pando.Buildpack, error) {
	bp, err := a.store.GetBuildpack(ctx, guid)
	if err != nil {
		return pando.Buildpack{}, asNotFound(err, "Buildpack")
	}
	return bp, nil
}

func (a *API) getBuildpack(w http.ResponseWriter, r *http.Request) error {
	bp, err := a.getBuildpackByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentBuildpack(bp))
	return nil
}

func (a *API) patchBuildpack(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	guid := r.PathValue("guid")
	var body struct {
		Name     *string `json:"name"`
		Stack    *string `json:"stack"`
		Position *int    `json:"position"`
		Enabled  *bool   `json:"enabled"`
		Locked   *bool   `json:"locked"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if body.Name != nil && !validBuildpackName(*body.Name) {
		return invalid("Name must be 1 to 250 letters, digits, '_', '-' or '.'")
	}
	if body.Position != nil && *body.Position < 1 {
		return invalid("Position must be greater than or equal to 1")
	}
	if body.Stack != nil && *body.Stack != "" {
		if err := a.checkStack(ctx, *body.Stack); err != nil {
			return err
		}
	}
	var bp pando.Buildpack
	err := a.store.InTx(ctx, func(tx pando.Store) error {
		var err error
		bp, err = tx.GetBuildpack(ctx, guid)
		if err != nil {
			return asNotFound(err, "Buildpack")
		}
		if body.Stack != nil && *body.Stack != bp.Stack {
			if bp.Stack != "" {
				return invalid("Buildpack stack cannot be changed")
			}
			bp.Stack = *body.Stack
		}
		if body.Name != nil {
			bp.Name = *body.Name
		}
		if body.Name != nil || body.Stack != nil {
			if err := checkBuildpackNameFree(ctx, tx, bp.GUID, bp.Name, bp.Stack); err != nil {
				return err
			}
		}
		if body.Enabled != nil {
			bp.Enabled = *body.Enabled
		}
		if body.Locked != nil {
			bp.Locked = *body.Locked
		}
		bp.UpdatedAt = a.now()
		pos := bp.Position
		if body.Position != nil {
			pos = *body.Position
		}
		bp, err = a.placeBuildpack(ctx, tx, bp, pos, false)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentBuildpack(bp))
	return nil
}

func (a *API) deleteBuildpack(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	bp, err := a.getBuildpackByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	job := a.runJob(ctx, "buildpack.delete", "", bp.GUID, func(ctx context.Context) error {
		ctx = context.WithoutCancel(ctx)
		err := a.store.InTx(ctx, func(tx pando.Store) error {
			if err := tx.DeleteBuildpack(ctx, bp.GUID); err != nil && !pando.IsNotFound(err) {
				return err
			}
			return compactBuildpacks(ctx, tx)
		})
		if err != nil {
			return fmt.Errorf("delete buildpack %s: %w", bp.Name, err)
		}
		// The blob goes after the row: a crash in between leaves garbage,
		// never a READY buildpack without bits.
		if err := a.blobs.Delete(ctx, pando.BuildpackBlobKey(bp.GUID)); err != nil {
			a.log.Warn("delete buildpack blob", "buildpack_guid", bp.GUID, "err", err)
		}
		return nil
	})
	a.writeJobAccepted(w, job)
	return nil
}

// multipartSlack allows for multipart headers and boundaries around the
// bits part when bounding the request body.
const multipartSlack = 1 << 20

func (a *API) uploadBuildpack(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	bp, err := a.getBuildpackByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	if bp.Locked {
		return &pando.Error{Kind: pando.EInvalid, Code: 290002, Title: "CF-BuildpackLocked", Message: "The buildpack is locked"}
	}
	f, size, filename, err := a.receiveBits(w, r)
	if err != nil {
		return err
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	job := a.runJob(ctx, "buildpack.upload", "buildpack", bp.GUID, func(ctx context.Context) error {
		var err error
		bp, err = a.storeBuildpackBits(ctx, bp, f, size, filename)
		return err
	})
	w.Header().Set("Location", a.url("/v3/jobs/%s", job.GUID))
	writeJSON(w, http.StatusAccepted, a.presentBuildpack(bp))
	return nil
}

// receiveBits streams the multipart "bits" part of r into a temporary file,
// bounded by MaxUploadBytes. The caller closes and removes the file.
func (a *API) receiveBits(w http.ResponseWriter, r *http.Request) (*os.File, int64, string, error) {
	limit := a.cfg.MaxUploadBytes
	errTooLarge := tooLarge(limit)
	if r.ContentLength > limit+multipartSlack {
		return nil, 0, "", errTooLarge
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, 0, "", invalid("A buildpack zip file must be uploaded as 'bits'")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, 0, "", invalid("A buildpack zip file must be uploaded as 'bits'")
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, 0, "", errTooLarge
			}
			return nil, 0, "", pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: %v", err)
		}
		if part.FormName() != "bits" {
			_ = part.Close()
			continue
		}
		filename := path.Base(strings.ReplaceAll(part.FileName(), "\\", "/"))
		if filename == "" || filename == "." || filename == "/" {
			return nil, 0, "", invalid("A buildpack filename must be provided")
		}
		if len(filename) > 255 {
			filename = filename[len(filename)-255:]
		}
		if path.Ext(filename) != ".zip" {
			return nil, 0, "", invalid("%s is not a zip", filename)
		}
		f, err := os.CreateTemp(a.tempDir(), "pando-buildpack-*.zip")
		if err != nil {
			return nil, 0, "", fmt.Errorf("buffer buildpack upload: %w", err)
		}
		fail := func(e error) (*os.File, int64, string, error) {
			_ = f.Close()
			_ = os.Remove(f.Name())
			return nil, 0, "", e
		}
		n, err := io.Copy(f, io.LimitReader(part, limit+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return fail(errTooLarge)
			}
			return fail(pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: %v", err))
		}
		if n > limit {
			return fail(errTooLarge)
		}
		if n == 0 {
			return fail(invalid("%s cannot be empty", filename))
		}
		return f, n, filename, nil
	}
}
