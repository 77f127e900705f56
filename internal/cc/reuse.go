package cc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/stackprobe"
)

// An unchanged push reuses its droplet, as Heroku and Dokku refuse to
// rebuild one: when a new package holds the same files as a staged
// droplet's and everything else staging reads is the same, the build is
// STAGED at once with that droplet. Staging a package a second time
// (restage) always stages, so a user who wants a fresh build has one.

// stagingInputsVersion changes whenever what stagingInputs covers changes,
// so droplets staged under the old rules are not reused.
const stagingInputsVersion = 1

type stagedBuildpackInput struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// stagingInputs is the digest of everything a buildpack staging of req
// reads: the package's files, the lifecycle, the stack and the runtimes
// it offers, the buildpacks (by content) and whether detection runs, the
// environment (the app's variables, the staging environment group,
// VCAP_APPLICATION, VCAP_SERVICES, the start command), how bindings are
// given, and the staging memory and disk. It is empty when the staging
// may not be reused: a docker package, a package from before files were
// digested, a buildpack without a checksum, or a stack whose runtimes
// cannot be read. Not covered: the cell operator's --staging-env (the
// cell's own, unknown to the API) and the build cache (a cache).
func (a *API) stagingInputs(ctx context.Context, pkg pando.Package, lifecycle string, req *pando.StagingRequest) string {
	if pkg.Type == "docker" || pkg.FilesSHA256 == "" || req.DockerImage != "" || len(req.Buildpacks) == 0 {
		return ""
	}
	in := struct {
		Version      int                    `json:"version"`
		Files        string                 `json:"files"`
		Lifecycle    string                 `json:"lifecycle"`
		Stack        string                 `json:"stack"`
		Runtimes     []stackprobe.Runtime   `json:"runtimes"`
		Buildpacks   []stagedBuildpackInput `json:"buildpacks"`
		SkipDetect   bool                   `json:"skip_detect"`
		Env          []pando.EnvVar         `json:"env"`
		BindingFiles string                 `json:"binding_files"`
		MemoryMB     int                    `json:"memory_mb"`
		DiskMB       int                    `json:"disk_mb"`
	}{
		Version: stagingInputsVersion, Files: pkg.FilesSHA256, Lifecycle: lifecycle, Stack: req.Stack,
		SkipDetect: req.SkipDetect, Env: req.Env, BindingFiles: req.BindingFiles,
		MemoryMB: req.MemoryMB, DiskMB: req.DiskMB,
	}
	for _, bp := range req.Buildpacks {
		if bp.SHA256 == "" {
			return ""
		}
		in.Buildpacks = append(in.Buildpacks, stagedBuildpackInput{Name: bp.Name, SHA256: bp.SHA256})
	}
	if a.cfg.StackRuntimes != nil {
		rts, err := a.cfg.StackRuntimes.Runtimes(ctx, req.Stack)
		if err != nil {
			a.log.Warn("staging inputs: probe stack runtimes; staging without reuse", "stack", req.Stack, "err", err)
			return ""
		}
		in.Runtimes = rts
	}
	b, err := json.Marshal(in)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// reusableDroplet finds the newest staged droplet of the app made from
// the same staging inputs whose bits are still stored. A package already
// built once (a restage) never reuses.
func (a *API) reusableDroplet(ctx context.Context, appGUID, pkgGUID, inputs string) (pando.Droplet, bool, error) {
	builds, err := a.store.ListBuilds(ctx, []string{appGUID}, nil)
	if err != nil {
		return pando.Droplet{}, false, fmt.Errorf("list builds: %w", err)
	}
	for _, b := range builds {
		if b.PackageGUID == pkgGUID {
			return pando.Droplet{}, false, nil
		}
	}
	drops, err := a.store.ListDroplets(ctx, []string{appGUID}, []string{pando.DropletStaged})
	if err != nil {
		return pando.Droplet{}, false, fmt.Errorf("list droplets: %w", err)
	}
	for i := len(drops) - 1; i >= 0; i-- {
		d := drops[i]
		if d.StagingInputs != inputs || d.LifecycleType != pando.LifecycleBuildpack {
			continue
		}
		ok, err := a.blobs.Exists(ctx, pando.DropletBlobKey(d.GUID))
		if err != nil {
			return pando.Droplet{}, false, fmt.Errorf("droplet %s: %w", d.GUID, err)
		}
		if ok {
			return d, true, nil
		}
	}
	return pando.Droplet{}, false, nil
}

// reuseDroplet records b as STAGED with droplet d and says so in the
// staging log, which the CLI is already reading.
func (a *API) reuseDroplet(ctx context.Context, id Identity, app pando.App, b pando.Build, d pando.Droplet) (pando.Build, error) {
	b.State = pando.BuildStaged
	b.DropletGUID = d.GUID
	if err := a.store.CreateBuild(ctx, b); err != nil {
		return pando.Build{}, fmt.Errorf("create build for package %s: %w", b.PackageGUID, err)
	}
	a.recordAppEvent(ctx, id, "audit.app.build.create", app, map[string]any{"build_guid": b.GUID, "package_guid": b.PackageGUID, "reused_droplet_guid": d.GUID})
	if a.cfg.Logs != nil {
		for _, line := range []string{
			fmt.Sprintf("Reusing droplet %s (staged %s by %s): staging inputs unchanged", d.GUID, d.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"), d.BuildpackName),
			"Same files, buildpacks, stack, environment, services and staging limits; restage to stage again",
		} {
			a.cfg.Logs.Emit(pando.LogEnvelope{Timestamp: a.now(), SourceID: app.GUID, InstanceID: "0", SourceType: pando.LogSourceStaging, Type: "OUT", Payload: []byte(line)})
		}
	}
	a.log.Info("build reused droplet", "build_guid", b.GUID, "droplet_guid", d.GUID, "app_guid", app.GUID)
	// The new package is kept (it is the app's newest); older ones go.
	a.pruneApp(ctx, app.GUID)
	return b, nil
}
