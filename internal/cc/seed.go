package cc

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/pandoplatform/pando"
)

// Seed names: `cf login` targets the org and space by itself when there is
// exactly one of each.
const (
	SeedOrgName   = "pando"
	SeedSpaceName = "dev"
	// HostStack is the embedded stack: the host's directories, read-only.
	HostStack            = "host"
	hostStackDescription = "The host's root filesystem, read-only (zero downloads)"
)

// BuiltinBuildpack is a buildpack shipped inside the pando binary. Zip
// writes its zip; Position is where it goes when first created.
type BuiltinBuildpack struct {
	Name     string
	Position int
	Zip      func(io.Writer) error
}

// Seed makes sure the fixed furniture exists: the default org and space,
// the shared app domain, the host stack and the builtin buildpacks. It runs
// on every server start and is idempotent. A builtin buildpack whose zip
// changed (a new Pando version) gets the new bits; its position, enabled
// and locked flags stay as the admin left them.
//
// The default org and space are made only while there is no org at all
// (a new platform): an admin who deleted them does not get them back.
func (a *API) Seed(ctx context.Context, builtins []BuiltinBuildpack) error {
	orgs, err := a.store.ListOrgs(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("seed org: %w", err)
	}
	if len(orgs) == 0 {
		org, err := a.seedOrg(ctx)
		if err != nil {
			return err
		}
		if err := a.seedSpace(ctx, org); err != nil {
			return err
		}
	}
	if err := a.seedDefaultQuota(ctx); err != nil {
		return err
	}
	if err := a.seedDomain(ctx); err != nil {
		return err
	}
	if err := a.seedStack(ctx, HostStack, hostStackDescription); err != nil {
		return err
	}
	for _, st := range a.cfg.Stacks {
		if err := a.seedStack(ctx, st.Name, st.Description); err != nil {
			return err
		}
	}
	// Lower positions first, so each lands where it asks to be.
	ordered := slices.Clone(builtins)
	slices.SortStableFunc(ordered, func(x, y BuiltinBuildpack) int { return cmp.Compare(x.Position, y.Position) })
	for _, b := range ordered {
		if err := a.seedBuildpack(ctx, b); err != nil {
			return fmt.Errorf("seed buildpack %s: %w", b.Name, err)
		}
	}
	return nil
}

// DefaultQuotaName names the org quota new orgs get, as CF's
// default_quota_definition. Seed makes it when missing, with the limits
// CF installs it with: 10 GiB of memory, 1000 routes, 100 (managed)
// service instances, paid plans allowed, the rest unlimited.
const DefaultQuotaName = "default"

func (a *API) seedDefaultQuota(ctx context.Context) error {
	qs, err := a.store.ListQuotas(ctx, pando.QuotaOrg, nil, []string{DefaultQuotaName}, nil)
	if err != nil {
		return fmt.Errorf("seed quota: %w", err)
	}
	if len(qs) > 0 {
		return nil
	}
	n := func(v int64) *int64 { return &v }
	now := a.now()
	q := pando.Quota{GUID: a.newGUID(), Kind: pando.QuotaOrg, Name: DefaultQuotaName, CreatedAt: now, UpdatedAt: now,
		Limits: pando.QuotaLimits{TotalMemoryMB: n(10240), TotalRoutes: n(1000), TotalServiceInstances: n(100), PaidServicesAllowed: true}}
	if err := ignoreConflict(a.store.CreateQuota(ctx, q)); err != nil {
		return fmt.Errorf("seed quota: %w", err)
	}
	return nil
}

// defaultQuotaGUID is the GUID of the org quota new orgs get ("" when an
// admin deleted it since the last start).
func (a *API) defaultQuotaGUID(ctx context.Context) (string, error) {
	qs, err := a.store.ListQuotas(ctx, pando.QuotaOrg, nil, []string{DefaultQuotaName}, nil)
	if err != nil || len(qs) == 0 {
		return "", err
	}
	return qs[0].GUID, nil
}

// ignoreConflict treats "already exists" as success: another replica (or
// an earlier start) seeded it.
func ignoreConflict(err error) error {
	if pando.ErrorKindOf(err) == pando.EConflict {
		return nil
	}
	return err
}

func (a *API) seedOrg(ctx context.Context) (pando.Org, error) {
	for range 2 {
		orgs, err := a.store.ListOrgs(ctx, nil, []string{SeedOrgName})
		if err != nil {
			return pando.Org{}, fmt.Errorf("seed org: %w", err)
		}
		if len(orgs) > 0 {
			return orgs[0], nil
		}
		now := a.now()
		o := pando.Org{GUID: a.newGUID(), Name: SeedOrgName, CreatedAt: now, UpdatedAt: now}
		if err := ignoreConflict(a.store.CreateOrg(ctx, o)); err != nil {
			return pando.Org{}, fmt.Errorf("seed org: %w", err)
		}
	}
	return pando.Org{}, fmt.Errorf("seed org: %q vanished while being created", SeedOrgName)
}

func (a *API) seedSpace(ctx context.Context, org pando.Org) error {
	spaces, err := a.store.ListSpaces(ctx, nil, []string{SeedSpaceName}, []string{org.GUID})
	if err != nil {
		return fmt.Errorf("seed space: %w", err)
	}
	if len(spaces) > 0 {
		return nil
	}
	now := a.now()
	s := pando.Space{GUID: a.newGUID(), Name: SeedSpaceName, OrgGUID: org.GUID, CreatedAt: now, UpdatedAt: now}
	if err := ignoreConflict(a.store.CreateSpace(ctx, s)); err != nil {
		return fmt.Errorf("seed space: %w", err)
	}
	return nil
}

func (a *API) seedDomain(ctx context.Context) error {
	ds, err := a.store.ListDomains(ctx, nil, []string{a.cfg.Domain})
	if err != nil {
		return fmt.Errorf("seed domain: %w", err)
	}
	if len(ds) > 0 {
		return nil
	}
	now := a.now()
	d := pando.Domain{GUID: a.newGUID(), Name: a.cfg.Domain, CreatedAt: now, UpdatedAt: now}
	if err := ignoreConflict(a.store.CreateDomain(ctx, d)); err != nil {
		return fmt.Errorf("seed domain %s: %w", a.cfg.Domain, err)
	}
	return nil
}

func (a *API) seedStack(ctx context.Context, name, description string) error {
	stacks, err := a.store.ListStacks(ctx, []string{name})
	if err != nil {
		return fmt.Errorf("seed stack: %w", err)
	}
	if len(stacks) > 0 {
		return nil
	}
	now := a.now()
	s := pando.Stack{
		GUID: a.newGUID(), Name: name, Description: description,
		Default: a.cfg.DefaultStack == name, CreatedAt: now, UpdatedAt: now,
	}
	if err := ignoreConflict(a.store.CreateStack(ctx, s)); err != nil {
		return fmt.Errorf("seed stack: %w", err)
	}
	return nil
}

// seedBuildpack creates the builtin if missing and refreshes its bits when
// the zip differs from what the blobstore holds.
func (a *API) seedBuildpack(ctx context.Context, b BuiltinBuildpack) error {
	f, err := os.CreateTemp(a.tempDir(), "pando-builtin-*.zip")
	if err != nil {
		return fmt.Errorf("buffer zip: %w", err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := b.Zip(cw); err != nil {
		return fmt.Errorf("build zip: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))

	var bp pando.Buildpack
	found := false
	existing, err := a.store.ListBuildpacks(ctx, []string{b.Name})
	if err != nil {
		return fmt.Errorf("list buildpacks: %w", err)
	}
	for _, e := range existing {
		if e.Stack == "" {
			bp, found = e, true
			break
		}
	}
	if !found {
		pos := b.Position
		if pos <= 0 {
			pos = 1 << 30
		}
		bp, err = a.createBuildpack(ctx, buildpackCreate{Name: b.Name, Position: pos, Enabled: true})
		if err != nil {
			if pando.ErrorKindOf(err) == pando.EConflict {
				return nil // created concurrently by another replica
			}
			return err
		}
	}
	if bp.State == pando.BuildpackReady && bp.SHA256 == sum {
		ok, err := a.blobs.Exists(ctx, pando.BuildpackBlobKey(bp.GUID))
		if err != nil {
			return fmt.Errorf("check blob: %w", err)
		}
		if ok {
			return nil
		}
	}
	if _, err := a.storeBuildpackBits(ctx, bp, f, cw.n, b.Name+".zip"); err != nil {
		return err
	}
	a.log.Info("seeded buildpack", "name", b.Name, "sha256", sum)
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
