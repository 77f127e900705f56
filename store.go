package pando

import (
	"context"
	"io"
	"time"
)

// AppFilter selects apps. Empty slices match everything.
type AppFilter struct {
	GUIDs      []string
	Names      []string
	SpaceGUIDs []string
}

// RouteFilter selects routes. Empty slices match everything.
type RouteFilter struct {
	GUIDs       []string
	Hosts       []string
	Paths       []string
	DomainGUIDs []string
	SpaceGUIDs  []string
	AppGUIDs    []string // routes with a destination to one of these apps
}

// EventFilter selects audit events. Results are ordered newest first when
// Descending is set, else oldest first.
type EventFilter struct {
	TargetGUIDs []string
	Types       []string
	SpaceGUIDs  []string
	Descending  bool
	Limit       int // 0: no limit
}

// Store is the CCDB: the API's durable record of orgs, spaces, apps and
// everything hanging off them. Implementations return *Error with ENotFound
// for missing rows and EConflict for uniqueness violations. Lists are ordered
// by creation time (oldest first) unless the filter says otherwise.
type Store interface {
	// InTx runs fn in one transaction: all of its writes land, or none.
	InTx(ctx context.Context, fn func(Store) error) error

	CreateOrg(ctx context.Context, o Org) error
	GetOrg(ctx context.Context, guid string) (Org, error)
	ListOrgs(ctx context.Context, guids, names []string) ([]Org, error)
	// UpdateOrg renames an org and sets its quota.
	UpdateOrg(ctx context.Context, o Org) error
	// DeleteOrg deletes an org without spaces (and its org roles).
	DeleteOrg(ctx context.Context, guid string) error

	CreateSpace(ctx context.Context, s Space) error
	GetSpace(ctx context.Context, guid string) (Space, error)
	ListSpaces(ctx context.Context, guids, names, orgGUIDs []string) ([]Space, error)
	// UpdateSpace renames a space and sets its quota.
	UpdateSpace(ctx context.Context, s Space) error
	// DeleteSpace deletes a space without apps or routes (and its roles).
	DeleteSpace(ctx context.Context, guid string) error

	// CreateApp fails with EConflict when the space already has an app of
	// that name.
	CreateApp(ctx context.Context, a App) error
	GetApp(ctx context.Context, guid string) (App, error)
	UpdateApp(ctx context.Context, a App) error
	DeleteApp(ctx context.Context, guid string) error
	ListApps(ctx context.Context, f AppFilter) ([]App, error)

	CreateProcess(ctx context.Context, p Process) error
	GetProcess(ctx context.Context, guid string) (Process, error)
	UpdateProcess(ctx context.Context, p Process) error
	DeleteProcess(ctx context.Context, guid string) error
	ListProcesses(ctx context.Context, guids, appGUIDs []string) ([]Process, error)

	CreatePackage(ctx context.Context, p Package) error
	GetPackage(ctx context.Context, guid string) (Package, error)
	UpdatePackage(ctx context.Context, p Package) error
	DeletePackage(ctx context.Context, guid string) error
	ListPackages(ctx context.Context, appGUIDs []string) ([]Package, error)

	CreateBuild(ctx context.Context, b Build) error
	GetBuild(ctx context.Context, guid string) (Build, error)
	UpdateBuild(ctx context.Context, b Build) error
	ListBuilds(ctx context.Context, appGUIDs, states []string) ([]Build, error)

	CreateDroplet(ctx context.Context, d Droplet) error
	GetDroplet(ctx context.Context, guid string) (Droplet, error)
	UpdateDroplet(ctx context.Context, d Droplet) error
	DeleteDroplet(ctx context.Context, guid string) error
	ListDroplets(ctx context.Context, appGUIDs, states []string) ([]Droplet, error)

	CreateDomain(ctx context.Context, d Domain) error
	GetDomain(ctx context.Context, guid string) (Domain, error)
	ListDomains(ctx context.Context, guids, names []string) ([]Domain, error)
	// DeleteDomain deletes a domain that no route uses.
	DeleteDomain(ctx context.Context, guid string) error
	// ShareDomain shares a private domain with another org (again: no
	// change); UnshareDomain ends that (ENotFound when it was not shared).
	ShareDomain(ctx context.Context, domainGUID, orgGUID string) error
	UnshareDomain(ctx context.Context, domainGUID, orgGUID string) error

	// CreateRoute fails with EConflict when host+domain+path exists.
	CreateRoute(ctx context.Context, r Route) error
	GetRoute(ctx context.Context, guid string) (Route, error)
	DeleteRoute(ctx context.Context, guid string) error
	ListRoutes(ctx context.Context, f RouteFilter) ([]Route, error)

	// CreateRouteDestination fails with EConflict for a duplicate
	// route+app+process type.
	CreateRouteDestination(ctx context.Context, d RouteDestination) error
	DeleteRouteDestination(ctx context.Context, guid string) error
	ListRouteDestinations(ctx context.Context, routeGUIDs, appGUIDs []string) ([]RouteDestination, error)

	// Buildpacks are listed by position, then name.
	CreateBuildpack(ctx context.Context, b Buildpack) error
	GetBuildpack(ctx context.Context, guid string) (Buildpack, error)
	UpdateBuildpack(ctx context.Context, b Buildpack) error
	DeleteBuildpack(ctx context.Context, guid string) error
	ListBuildpacks(ctx context.Context, names []string) ([]Buildpack, error)

	CreateStack(ctx context.Context, s Stack) error
	ListStacks(ctx context.Context, names []string) ([]Stack, error)

	CreateEvent(ctx context.Context, e Event) error
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// DeleteEventsBefore deletes the audit events created before t.
	DeleteEventsBefore(ctx context.Context, t time.Time) error

	CreateUser(ctx context.Context, u User) error
	// UpdateUser replaces the user's password hash and admin flag.
	UpdateUser(ctx context.Context, u User) error
	GetUserByName(ctx context.Context, name string) (User, error)
	GetUser(ctx context.Context, guid string) (User, error)
	// ListUsers returns users matching any of guids and any of names.
	ListUsers(ctx context.Context, guids, names []string) ([]User, error)
	// DeleteUser deletes a user and their roles.
	DeleteUser(ctx context.Context, guid string) error

	// CreateRole fails with EConflict when the user has the role there
	// already, EInvalid when the user, org or space does not exist.
	CreateRole(ctx context.Context, r Role) error
	GetRole(ctx context.Context, guid string) (Role, error)
	DeleteRole(ctx context.Context, guid string) error
	ListRoles(ctx context.Context, f RoleFilter) ([]Role, error)

	// CreateQuota fails with EConflict for a taken name (per kind, and per
	// org for space quotas).
	CreateQuota(ctx context.Context, q Quota) error
	GetQuota(ctx context.Context, guid string) (Quota, error)
	// UpdateQuota replaces the name and limits.
	UpdateQuota(ctx context.Context, q Quota) error
	DeleteQuota(ctx context.Context, guid string) error
	ListQuotas(ctx context.Context, kind string, guids, names, orgGUIDs []string) ([]Quota, error)

	// CreateAppTask assigns t.SequenceID (the app's next, from 1) and
	// returns the task as stored.
	CreateAppTask(ctx context.Context, t AppTask) (AppTask, error)
	GetAppTask(ctx context.Context, guid string) (AppTask, error)
	UpdateAppTask(ctx context.Context, t AppTask) error
	DeleteAppTask(ctx context.Context, guid string) error // no error if missing
	// ListAppTasks lists tasks by app and state, oldest first.
	ListAppTasks(ctx context.Context, appGUIDs, states []string) ([]AppTask, error)

	CreateJob(ctx context.Context, j Job) error
	GetJob(ctx context.Context, guid string) (Job, error)
	UpdateJob(ctx context.Context, j Job) error
	// DeleteFinishedJobsBefore deletes the jobs created before t that
	// are COMPLETE or FAILED.
	DeleteFinishedJobsBefore(ctx context.Context, t time.Time) error

	SettingsStore
	ServiceStore

	Close() error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Size   int64
	SHA1   string
	SHA256 string
}

// Blobstore stores packages, droplets, buildpacks, build caches and the
// resource cache under slash-separated keys such as "droplets/<guid>".
// Put is atomic: readers see the old blob or the whole new one.
type Blobstore interface {
	Put(ctx context.Context, key string, r io.Reader) (BlobInfo, error)
	Get(ctx context.Context, key string) (io.ReadCloser, error) // ENotFound if missing
	Exists(ctx context.Context, key string) (bool, error)
	Delete(ctx context.Context, key string) error // no error if missing
}

// Blob key helpers keep the layout in one place.
func PackageBlobKey(guid string) string   { return "packages/" + guid }
func DropletBlobKey(guid string) string   { return "droplets/" + guid }
func BuildpackBlobKey(guid string) string { return "buildpacks/" + guid }
func BuildCacheBlobKey(app string) string { return "buildcache/" + app }
func ResourceBlobKey(sha1 string) string  { return "resources/" + sha1 }
