package pando

import "time"

// Org is a CF organization.
type Org struct {
	GUID      string
	Name      string
	QuotaGUID string // "" for none
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Space is a CF space inside an org.
type Space struct {
	GUID      string
	Name      string
	OrgGUID   string
	QuotaGUID string // "" for none
	CreatedAt time.Time
	UpdatedAt time.Time
}

// App states.
const (
	AppStopped = "STOPPED"
	AppStarted = "STARTED"
)

// Lifecycle types.
const (
	LifecycleBuildpack = "buildpack"
	LifecycleDocker    = "docker"
)

// App is a CF app: desired state plus the current droplet.
type App struct {
	GUID          string
	Name          string
	SpaceGUID     string
	State         string // AppStopped or AppStarted
	LifecycleType string // LifecycleBuildpack or LifecycleDocker
	Buildpacks    []string
	Stack         string
	EnvVars       map[string]string
	DropletGUID   string // current droplet; empty if never staged
	// Revision increases on every restart so the runtime replaces instances.
	Revision int
	// RunningDropletGUID and RunningEnvVars are what the current revision
	// was started with: a new droplet or env reaches the instances only
	// when the app restarts, even across a server restart.
	RunningDropletGUID string
	RunningEnvVars     map[string]string
	// Features are the app features the user enabled (AppFeature*);
	// RunningBindingFiles is the binding-file one the current revision was
	// started with.
	Features            []string
	RunningBindingFiles string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// App features a user may enable (PATCH /v3/apps/:guid/features/:name).
const (
	// AppFeatureFileVCAPServices writes VCAP_SERVICES to a file named by
	// $VCAP_SERVICES_FILE_PATH instead of the variable.
	AppFeatureFileVCAPServices = "file-based-vcap-services"
	// AppFeatureServiceBindingK8s writes each binding as files under
	// $SERVICE_BINDING_ROOT (the servicebinding.io layout).
	AppFeatureServiceBindingK8s = "service-binding-k8s"
)

// Health check types.
const (
	HealthCheckPort    = "port"
	HealthCheckHTTP    = "http"
	HealthCheckProcess = "process"
)

// Process is one process type (web, worker...) of an app.
type Process struct {
	GUID                         string
	AppGUID                      string
	Type                         string
	Command                      string // user-set command; empty means the droplet's
	Instances                    int
	MemoryMB                     int
	DiskMB                       int
	LogRateLimitBytes            int // per second; -1 unlimited, 0 no logs
	HealthCheckType              string
	HealthCheckEndpoint          string
	HealthCheckTimeout           int // seconds, 0 = default
	HealthCheckInvocationTimeout int // seconds, 0 = default
	CreatedAt                    time.Time
	UpdatedAt                    time.Time
}

// Package states, as CF names them.
const (
	PackageAwaitingUpload   = "AWAITING_UPLOAD"
	PackageProcessingUpload = "PROCESSING_UPLOAD"
	PackageReady            = "READY"
	PackageFailed           = "FAILED"
	PackageExpired          = "EXPIRED"
)

// Package is an app's source bits (type bits) or a Docker image reference
// (type docker).
type Package struct {
	GUID           string
	AppGUID        string
	Type           string // "bits" or "docker"
	State          string
	SHA1           string
	SHA256         string
	Size           int64
	Error          string
	DockerImage    string
	DockerUsername string
	DockerPassword string
	// FilesSHA256 is the digest of the package's files (paths, modes,
	// contents and link targets, not times): two uploads of the same
	// files have the same one even though their zips differ.
	FilesSHA256 string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Build states.
const (
	BuildStaging = "STAGING"
	BuildStaged  = "STAGED"
	BuildFailed  = "FAILED"
)

// Build is one staging of a package into a droplet.
type Build struct {
	GUID            string
	AppGUID         string
	PackageGUID     string
	State           string
	Error           string
	DropletGUID     string
	LifecycleType   string
	Buildpacks      []string
	Stack           string
	StagingMemoryMB int
	StagingDiskMB   int
	CreatedByGUID   string
	CreatedByName   string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Droplet states.
const (
	DropletAwaitingUpload   = "AWAITING_UPLOAD"
	DropletProcessingUpload = "PROCESSING_UPLOAD"
	DropletStaged           = "STAGED"
	DropletFailed           = "FAILED"
	DropletCopying          = "COPYING"
	DropletExpired          = "EXPIRED"
)

// Droplet is the result of staging: a tgz in the blobstore (buildpack apps) or
// execution metadata (docker apps).
type Droplet struct {
	GUID              string
	AppGUID           string
	PackageGUID       string
	State             string
	Error             string
	LifecycleType     string
	ProcessTypes      map[string]string
	ExecutionMetadata string
	DetectedBuildpack string
	BuildpackName     string
	BuildpackVersion  string
	// Buildpacks are every buildpack that staged it, final last.
	Buildpacks []StagedBuildpack
	Stack      string
	Image      string // docker image pinned by digest
	SHA1       string
	SHA256     string
	Size       int64
	// StagingInputs is the digest of everything the staging that made
	// it read (package files, buildpacks, stack, environment, limits);
	// empty when it may not be reused.
	StagingInputs string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Domain is a shared app domain (e.g. "localhost").
type Domain struct {
	GUID     string
	Name     string
	Internal bool
	// OrgGUID owns a private domain; empty for a shared one.
	OrgGUID string
	// SharedOrgGUIDs are the other orgs a private domain is shared with,
	// in the order they were shared.
	SharedOrgGUIDs []string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Route is host.domain/path in a space.
type Route struct {
	GUID       string
	Host       string
	Path       string
	DomainGUID string
	SpaceGUID  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// RouteDestination maps a route to an app's process type.
type RouteDestination struct {
	GUID        string
	RouteGUID   string
	AppGUID     string
	ProcessType string
	Port        int
	CreatedAt   time.Time
}

// Buildpack states.
const (
	BuildpackAwaitingUpload = "AWAITING_UPLOAD"
	BuildpackReady          = "READY"
)

// Buildpack is an admin buildpack: a zip in the blobstore with a position in
// the detect order.
type Buildpack struct {
	GUID      string
	Name      string
	Stack     string // empty: any stack
	Position  int
	Enabled   bool
	Locked    bool
	State     string
	Filename  string
	SHA256    string
	Size      int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Stack is a root filesystem apps run on.
type Stack struct {
	GUID        string
	Name        string
	Description string
	Default     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Event is an audit event (cf events).
type Event struct {
	GUID       string
	Type       string // e.g. "audit.app.create"
	ActorGUID  string
	ActorType  string // "user"
	ActorName  string
	TargetGUID string
	TargetType string // "app"
	TargetName string
	SpaceGUID  string
	OrgGUID    string
	Data       map[string]any
	CreatedAt  time.Time
}

// User is a UAA user.
type User struct {
	GUID         string
	Name         string
	PasswordHash string
	Admin        bool
	CreatedAt    time.Time
}

// AppTask states, as CF names them.
const (
	AppTaskPending   = "PENDING"
	AppTaskRunning   = "RUNNING"
	AppTaskSucceeded = "SUCCEEDED"
	AppTaskFailed    = "FAILED"
	AppTaskCanceling = "CANCELING"
)

// AppTask is a CF task of an app (cf run-task): a command run once.
type AppTask struct {
	GUID    string
	AppGUID string
	Name    string
	Command string
	State   string
	// SequenceID numbers an app's tasks from 1 (`cf tasks` shows it as id).
	SequenceID    int
	MemoryMB      int
	DiskMB        int
	DropletGUID   string
	FailureReason string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Job states.
const (
	JobProcessing = "PROCESSING"
	JobComplete   = "COMPLETE"
	JobFailed     = "FAILED"
	JobPolling    = "POLLING"
)

// JobError is one error recorded on a failed job.
type JobError struct {
	Code   int
	Title  string
	Detail string
}

// Job is an asynchronous API operation (/v3/jobs/:guid).
type Job struct {
	GUID         string
	Operation    string // e.g. "app.apply_manifest"
	State        string
	Errors       []JobError
	ResourceType string
	ResourceGUID string
	// UserGUID is who started the job: only they (and admins) read it.
	UserGUID  string
	CreatedAt time.Time
	UpdatedAt time.Time
}
