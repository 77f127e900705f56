package cc

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/archive"
)

var sha1Pattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// maxResources bounds the entries of a resource match or upload manifest.
const maxResources = 100_000

// resourceEntry is one file in /v3/resource_matches and in an upload's
// `resources` part. Both CF v3 and legacy v2 field names are accepted.
type resourceEntry struct {
	Checksum *struct {
		Value string `json:"value"`
	} `json:"checksum,omitempty"`
	SHA1        string `json:"sha1,omitempty"`
	Path        string `json:"path,omitempty"`
	Fn          string `json:"fn,omitempty"`
	Mode        string `json:"mode,omitempty"`
	SizeInBytes int64  `json:"size_in_bytes"`
	Size        int64  `json:"size,omitempty"`
}

func (e resourceEntry) sha() string {
	if e.Checksum != nil && e.Checksum.Value != "" {
		return strings.ToLower(e.Checksum.Value)
	}
	return strings.ToLower(e.SHA1)
}

func (e resourceEntry) path() string {
	if e.Path != "" {
		return e.Path
	}
	return e.Fn
}

func (e resourceEntry) size() int64 {
	if e.SizeInBytes != 0 {
		return e.SizeInBytes
	}
	return e.Size
}

// fileMode parses an octal mode string; default 0644. Only permission bits
// survive, and the owner can always read.
func (e resourceEntry) fileMode() (os.FileMode, error) {
	if e.Mode == "" {
		return 0o644, nil
	}
	n, err := strconv.ParseUint(e.Mode, 8, 32)
	if err != nil {
		return 0, invalid("Resource %q has an invalid mode %q", e.path(), e.Mode)
	}
	return os.FileMode(n)&0o777 | 0o400, nil
}

func (a *API) postResourceMatches(w http.ResponseWriter, r *http.Request) error {
	resources, err := newResourceDecoder(r.Body, false).matchRequest()
	if err != nil {
		return err
	}
	matched := make([]any, 0)
	if !a.featureEnabled(r.Context(), FlagResourceMatching) {
		// CF's answer with resource matching off: nothing is cached, so
		// the client uploads every file.
		resources = nil
	}
	for _, e := range resources {
		sha := e.sha()
		if !sha1Pattern.MatchString(sha) {
			continue
		}
		ok, err := a.blobs.Exists(r.Context(), pando.ResourceBlobKey(sha))
		if err != nil {
			return fmt.Errorf("resource match: %w", err)
		}
		if !ok {
			continue
		}
		mode := e.Mode
		if mode == "" {
			mode = "644"
		}
		matched = append(matched, map[string]any{
			"checksum":      map[string]any{"value": sha},
			"size_in_bytes": e.size(),
			"path":          e.path(),
			"mode":          mode,
		})
	}
	writeJSON(w, http.StatusCreated, map[string]any{"resources": matched})
	return nil
}

func (a *API) getPackageByGUID(ctx context.Context, guid string) (pando.Package, error) {
	p, err := a.store.GetPackage(ctx, guid)
	if err != nil {
		return p, asNotFound(err, "Package")
	}
	return p, nil
}

func filterPackages(pkgs []pando.Package, r *http.Request) []pando.Package {
	q := r.URL.Query()
	states, guids, types := splitList(q, "states"), splitList(q, "guids"), splitList(q, "types")
	keep := pkgs[:0]
	for _, p := range pkgs {
		if (len(states) == 0 || contains(states, p.State)) && (len(guids) == 0 || contains(guids, p.GUID)) && (len(types) == 0 || contains(types, p.Type)) {
			keep = append(keep, p)
		}
	}
	return keep
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (a *API) paginatePackages(w http.ResponseWriter, r *http.Request, pkgs []pando.Package) {
	pkgs = visibleByApp(r.Context(), a, pkgs, func(p pando.Package) string { return p.AppGUID })
	paginate(a, w, r, pkgs, func(p pando.Package) sortable {
		return sortable{createdAt: p.CreatedAt, updatedAt: p.UpdatedAt}
	}, func(p pando.Package) any { return a.presentPackage(p) })
}

func (a *API) listPackages(w http.ResponseWriter, r *http.Request) error {
	pkgs, err := a.store.ListPackages(r.Context(), splitList(r.URL.Query(), "app_guids"))
	if err != nil {
		return err
	}
	a.paginatePackages(w, r, filterPackages(pkgs, r))
	return nil
}

func (a *API) getPackage(w http.ResponseWriter, r *http.Request) error {
	p, err := a.getPackageByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentPackage(p))
	return nil
}

func (a *API) postPackage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var body struct {
		Type string `json:"type"`
		Data struct {
			Image    string `json:"image"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"data"`
		Relationships struct {
			App struct {
				Data struct {
					GUID string `json:"guid"`
				} `json:"data"`
			} `json:"app"`
		} `json:"relationships"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if err := a.checkApp(ctx, body.Relationships.App.Data.GUID, needWrite); err != nil {
		return err
	}
	app, err := a.getAppByGUID(ctx, body.Relationships.App.Data.GUID)
	if err != nil {
		if pando.IsNotFound(err) {
			return invalid("App must exist")
		}
		return err
	}
	now := a.now()
	pkg := pando.Package{GUID: a.newGUID(), AppGUID: app.GUID, Type: body.Type, CreatedAt: now, UpdatedAt: now}
	switch body.Type {
	case "bits":
		if app.LifecycleType == pando.LifecycleDocker {
			return invalid("Cannot create bits package for a Docker app.")
		}
		pkg.State = pando.PackageAwaitingUpload
	case "docker":
		if !a.cfg.DockerEnabled {
			return errDockerDisabled
		}
		if err := a.requireFeature(ctx, identityFrom(ctx), FlagDiegoDocker); err != nil {
			return err
		}
		if app.LifecycleType != pando.LifecycleDocker {
			return invalid("Cannot create Docker package for a buildpack app.")
		}
		if strings.TrimSpace(body.Data.Image) == "" {
			return invalid("Data Image required")
		}
		pkg.State = pando.PackageReady
		pkg.DockerImage = body.Data.Image
		pkg.DockerUsername = body.Data.Username
		if body.Data.Password != "" {
			if a.cfg.Secrets == nil {
				return fmt.Errorf("create docker package: no secrets key to seal the registry password with")
			}
			sealed, err := a.cfg.Secrets.Seal(body.Data.Password, dockerPasswordPurpose(pkg.GUID))
			if err != nil {
				return fmt.Errorf("create docker package: %w", err)
			}
			pkg.DockerPassword = sealed
		}
	default:
		return invalid("Type must be one of 'bits', 'docker'")
	}
	if err := a.store.CreatePackage(ctx, pkg); err != nil {
		return fmt.Errorf("create package: %w", err)
	}
	a.recordAppEvent(ctx, identityFrom(ctx), "audit.app.package.create", app, map[string]any{"package_guid": pkg.GUID, "request": map[string]any{"type": pkg.Type}})
	a.prunePackagesOf(ctx, app.GUID)
	writeJSON(w, http.StatusCreated, a.presentPackage(pkg))
	return nil
}

// uploadPackage takes the multipart upload (`resources` JSON + `bits` zip),
// assembles the full package from the zip and the resource cache, and
// stores it. It answers READY: the work is done before the response.
func (a *API) uploadPackage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	pkg, err := a.getPackageByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	if pkg.Type != "bits" {
		return invalid("Package type must be bits.")
	}
	if err := a.requireFeature(ctx, identityFrom(ctx), FlagAppBitsUpload); err != nil {
		return err
	}
	// A package's bits never change once READY: stagings may be reading
	// them. Upload new bits as a new package.
	if pkg.State != pando.PackageAwaitingUpload && pkg.State != pando.PackageFailed {
		return invalid("Package has already been uploaded (state %s): create a new package for new bits", pkg.State)
	}
	if r.ContentLength > a.cfg.MaxUploadBytes {
		return tooLarge(a.cfg.MaxUploadBytes)
	}
	release, err := a.uploads.acquire(identityFrom(ctx).UserGUID)
	if err != nil {
		return err
	}
	defer release()
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxUploadBytes+1<<20)
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return pando.Errorf(pando.EBadRequest, "Upload must be multipart/form-data with a 'bits' file")
	}
	work, err := os.MkdirTemp(a.tempDir(), "upload-")
	if err != nil {
		return fmt.Errorf("upload package %s: %w", pkg.GUID, err)
	}
	defer os.RemoveAll(work)

	var resources []resourceEntry
	zipPath := ""
	var zipSize int64
	mr, err := r.MultipartReader()
	if err != nil {
		return pando.Errorf(pando.EBadRequest, "Upload must be multipart/form-data: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooLarge(a.cfg.MaxUploadBytes)
			}
			return pando.Errorf(pando.EBadRequest, "Upload is not valid multipart data: %v", err)
		}
		switch part.FormName() {
		case "resources":
			if resources, err = readResourcesPart(part); err != nil {
				return err
			}
		case "bits":
			zipPath = filepath.Join(work, "bits.zip")
			f, err := os.Create(zipPath)
			if err != nil {
				return fmt.Errorf("upload package %s: %w", pkg.GUID, err)
			}
			n, err := io.Copy(f, io.LimitReader(part, a.cfg.MaxUploadBytes+1))
			cerr := f.Close()
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return tooLarge(a.cfg.MaxUploadBytes)
				}
				return pando.Errorf(pando.EBadRequest, "Reading bits: %v", err)
			}
			if cerr != nil {
				return fmt.Errorf("upload package %s: %w", pkg.GUID, cerr)
			}
			if n > a.cfg.MaxUploadBytes {
				return tooLarge(a.cfg.MaxUploadBytes)
			}
			zipSize = n
		}
		part.Close()
	}
	if zipPath == "" && len(resources) == 0 {
		return invalid("Upload must include either resources or bits")
	}

	appDir := filepath.Join(work, "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		return fmt.Errorf("upload package %s: %w", pkg.GUID, err)
	}
	lim := archive.Limits{MaxTotalBytes: a.cfg.MaxPackageBytes, MaxFileBytes: a.cfg.MaxPackageBytes, MaxRatio: 200, UID: -1, GID: -1}
	if zipPath != "" && zipSize > 0 {
		f, err := os.Open(zipPath)
		if err != nil {
			return fmt.Errorf("upload package %s: %w", pkg.GUID, err)
		}
		err = archive.ExtractZip(ctx, f, zipSize, appDir, lim)
		f.Close()
		if err != nil {
			return uploadError(err)
		}
	}
	fromCache, err := a.placeCachedResources(ctx, appDir, resources, lim.MaxTotalBytes)
	if err != nil {
		return err
	}
	if err := a.cacheResources(ctx, appDir, fromCache); err != nil {
		a.log.Warn("fill resource cache", "package_guid", pkg.GUID, "err", err)
	}

	// Write the assembled package, then store it.
	out := filepath.Join(work, "package.zip")
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("upload package %s: %w", pkg.GUID, err)
	}
	filesSum, err := archive.WriteZipDigest(ctx, f, appDir, "")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("upload package %s: write zip: %w", pkg.GUID, err)
	}
	f, err = os.Open(out)
	if err != nil {
		return fmt.Errorf("upload package %s: %w", pkg.GUID, err)
	}
	info, err := a.blobs.Put(ctx, pando.PackageBlobKey(pkg.GUID), f)
	f.Close()
	if err != nil {
		return fmt.Errorf("upload package %s: store: %w", pkg.GUID, err)
	}
	// Re-read in the write's transaction: only the upload's fields change.
	err = a.store.InTx(ctx, func(tx pando.Store) error {
		cur, err := tx.GetPackage(ctx, pkg.GUID)
		if err != nil {
			return asNotFound(err, "Package")
		}
		pkg = cur
		pkg.State = pando.PackageReady
		pkg.SHA1, pkg.SHA256, pkg.Size = info.SHA1, info.SHA256, info.Size
		pkg.FilesSHA256 = filesSum
		pkg.Error = ""
		pkg.UpdatedAt = a.now()
		return tx.UpdatePackage(ctx, pkg)
	})
	if err != nil {
		return fmt.Errorf("upload package %s: %w", pkg.GUID, err)
	}
	if app, err := a.store.GetApp(ctx, pkg.AppGUID); err == nil {
		a.recordAppEvent(ctx, identityFrom(ctx), "audit.app.upload-bits", app, map[string]any{"package_guid": pkg.GUID})
	}
	a.prunePackagesOf(ctx, pkg.AppGUID)
	writeJSON(w, http.StatusOK, a.presentPackage(pkg))
	return nil
}

func tooLarge(limit int64) error {
	return pando.Errorf(pando.ETooLarge, "Request entity too large: uploads are limited to %s", humanBytes(limit))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// uploadError turns an archive error into CF's 422 for bad bits.
func uploadError(err error) error {
	var pe *pando.Error
	if errors.As(err, &pe) {
		if pe.Kind == pando.ETooLarge {
			return &pando.Error{Kind: pando.EBadZip, Message: "The uploaded package is invalid: " + pe.Message}
		}
		return &pando.Error{Kind: pando.EBadZip, Message: "The uploaded package is invalid: " + pe.Error()}
	}
	return &pando.Error{Kind: pando.EBadZip, Message: "The uploaded package is invalid: " + err.Error()}
}

// safeRelPath validates a path from a client's resource list.
func safeRelPath(p string) (string, error) {
	p = strings.ReplaceAll(p, "\\", "/")
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", invalid("Resource path %q must be relative", p)
	}
	clean := path.Clean(p)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", invalid("Resource path %q points outside the app", p)
	}
	return clean, nil
}

// placeCachedResources copies matched files from the resource cache into
// dir and returns the paths it placed.
func (a *API) placeCachedResources(ctx context.Context, dir string, resources []resourceEntry, maxTotal int64) (map[string]bool, error) {
	placed := map[string]bool{}
	var total int64
	for _, e := range resources {
		rel, err := safeRelPath(e.path())
		if err != nil {
			return nil, err
		}
		sha := e.sha()
		if !sha1Pattern.MatchString(sha) {
			return nil, invalid("Resource %q has an invalid sha1 checksum", rel)
		}
		mode, err := e.fileMode()
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		// Refuse to write through a symlink placed by the zip.
		if err := ensureInside(dir, filepath.Dir(dst)); err != nil {
			return nil, invalid("Resource %q points outside the app", rel)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return nil, invalid("Resource %q conflicts with a file of the upload: a file cannot also be a directory", rel)
			}
			return nil, fmt.Errorf("place resource %s: %w", rel, err)
		}
		if err := ensureInside(dir, filepath.Dir(dst)); err != nil {
			return nil, invalid("Resource %q points outside the app", rel)
		}
		rc, err := a.blobs.Get(ctx, pando.ResourceBlobKey(sha))
		if err != nil {
			if pando.IsNotFound(err) {
				return nil, invalid("Resource %q (sha1 %s) is not in the resource cache; upload it in bits", rel, sha)
			}
			return nil, fmt.Errorf("place resource %s: %w", rel, err)
		}
		os.Remove(dst) // replace a file (or link) the zip may have put there
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			rc.Close()
			if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
				return nil, invalid("Resource %q conflicts with a directory of the upload: a directory cannot also be a file", rel)
			}
			return nil, fmt.Errorf("place resource %s: %w", rel, err)
		}
		n, err := io.Copy(f, io.LimitReader(rc, maxTotal-total+1))
		rc.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("place resource %s: %w", rel, err)
		}
		total += n
		if total > maxTotal {
			return nil, &pando.Error{Kind: pando.EBadZip, Message: "The uploaded package is invalid: it expands past " + humanBytes(maxTotal)}
		}
		if err := os.Chmod(dst, mode); err != nil {
			return nil, fmt.Errorf("place resource %s: %w", rel, err)
		}
		placed[filepath.FromSlash(rel)] = true
	}
	return placed, nil
}

// ensureInside checks that p, with symlinks resolved, is inside root.
func ensureInside(root, p string) error {
	rr, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	// Walk up to the deepest existing ancestor.
	q := p
	for {
		if _, err := os.Lstat(q); err == nil {
			break
		}
		parent := filepath.Dir(q)
		if parent == q {
			break
		}
		q = parent
	}
	rq, err := filepath.EvalSymlinks(q)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(rr, rq)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is outside %s", p, root)
	}
	return nil
}

// cacheResources adds every regular, non-empty file under dir to the
// resource cache so later pushes can skip uploading it; the files that
// came from the cache (skip, by path relative to dir) are already there.
func (a *API) cacheResources(ctx context.Context, dir string, skip map[string]bool) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if rel, err := filepath.Rel(dir, p); err == nil && skip[rel] {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha1.New()
		n, err := io.Copy(h, f)
		if err != nil || n == 0 {
			return err
		}
		key := pando.ResourceBlobKey(hex.EncodeToString(h.Sum(nil)))
		if ok, err := a.blobs.Exists(ctx, key); err != nil || ok {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err = a.blobs.Put(ctx, key, f)
		return err
	})
}

func (a *API) tempDir() string {
	if a.cfg.TempDir != "" {
		return a.cfg.TempDir
	}
	return os.TempDir()
}

func (a *API) downloadPackage(w http.ResponseWriter, r *http.Request) error {
	pkg, err := a.getPackageByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	if pkg.Type != "bits" || pkg.State != pando.PackageReady {
		return invalid("Package is not ready to download")
	}
	if app, err := a.store.GetApp(r.Context(), pkg.AppGUID); err == nil {
		a.recordAppEvent(r.Context(), identityFrom(r.Context()), "audit.app.package.download", app, map[string]any{"package_guid": pkg.GUID})
	}
	return a.streamBlob(w, r, pando.PackageBlobKey(pkg.GUID), "application/zip", pkg.GUID+".zip")
}

func (a *API) streamBlob(w http.ResponseWriter, r *http.Request, key, contentType, filename string) error {
	rc, err := a.blobs.Get(r.Context(), key)
	if err != nil {
		return asNotFound(err, "Blob")
	}
	defer rc.Close()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filename))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
	return nil
}

func (a *API) listPackageDroplets(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	pkg, err := a.getPackageByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	drops, err := a.store.ListDroplets(ctx, []string{pkg.AppGUID}, splitList(r.URL.Query(), "states"))
	if err != nil {
		return err
	}
	keep := drops[:0]
	for _, d := range drops {
		if d.PackageGUID == pkg.GUID {
			keep = append(keep, d)
		}
	}
	a.paginateDroplets(w, r, keep)
	return nil
}

// dockerPasswordPurpose binds a package's sealed registry password to it.
func dockerPasswordPurpose(packageGUID string) string {
	return "package/" + packageGUID + "/docker-password"
}
