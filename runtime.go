package pando

import (
	"context"
	"time"
)

// EnvVar is one environment variable, in order.
type EnvVar struct {
	Name  string
	Value string
}

// HealthCheck says how a cell decides an instance is healthy.
type HealthCheck struct {
	Type              string        // HealthCheckPort, HealthCheckHTTP, HealthCheckProcess
	Endpoint          string        // for http
	StartTimeout      time.Duration // default 60s
	Interval          time.Duration // startup check interval, default 2s
	InvocationTimeout time.Duration // default 1s
}

// DesiredLRP is a long-running process the runtime keeps running with
// Instances copies. ProcessGUID equals the CC process GUID; Revision changes
// when the app restarts so instances of an older revision are replaced.
type DesiredLRP struct {
	ProcessGUID string
	Revision    int
	AppGUID     string
	AppName     string
	SpaceGUID   string
	SpaceName   string
	OrgGUID     string
	OrgName     string
	ProcessType string
	Instances   int
	MemoryMB    int
	DiskMB      int
	// LogRateLimitBytes per second, as CF: -1 unlimited (up to the cell's
	// ceiling), 0 no logs at all.
	LogRateLimitBytes int
	Stack             string
	// DropletKey is the blobstore key of the droplet tgz (buildpack apps).
	DropletKey    string
	DropletSHA256 string
	// Image is the OCI image (docker apps), pinned by digest when known.
	Image string
	// Docker is the image's execution metadata (docker apps): the cell
	// runs its ENTRYPOINT+CMD as its USER in its WORKDIR with its ENV
	// under the app's, unless StartCommand is set.
	Docker *ExecutionMetadata
	// ImageCredentials, for a private image, authenticate the layer
	// pulls; nil pulls anonymously.
	ImageCredentials *ImageCredentials
	User             string // user to run as; empty means vcap
	// StartCommand runs under sh -c in /home/vcap/app (buildpack apps).
	// For a docker app it is the user's own command (-c), run under sh -c
	// instead of ENTRYPOINT+CMD; empty runs those.
	StartCommand string
	Env          []EnvVar
	// BindingFiles is how the app receives its service bindings as files
	// (an AppFeature* name; empty: only in VCAP_SERVICES).
	BindingFiles string
	Ports        []int // container ports; default [8080]
	HealthCheck  HealthCheck
	Routes       []string // hostnames (host.domain[/path]) routed to this LRP
	// RoutePorts names the container port of each route in Routes that
	// goes to another port than Ports[0]; the router sends it there.
	RoutePorts map[string]int
	UpdatedAt  time.Time
}

// ActualLRP states (Diego's).
const (
	ActualUnclaimed = "UNCLAIMED"
	ActualClaimed   = "CLAIMED"
	ActualRunning   = "RUNNING"
	ActualCrashed   = "CRASHED"
)

// ActualLRP is one instance of a DesiredLRP as the runtime sees it.
type ActualLRP struct {
	ProcessGUID  string
	Revision     int
	Index        int
	InstanceGUID string
	CellID       string
	State        string
	// Address and Port are where the router reaches the first container port
	// (on the cell's host address). Ports lists every mapping.
	Address    string
	Port       int
	Ports      []PortMapping
	CrashCount int
	// Crash is why the instance last crashed, as the cell reports it (the
	// API words it). CrashReason is the same in words, as a cell before
	// Crash existed reported it; read only when Crash is nil.
	Crash          *Failure
	CrashReason    string
	PlacementError string
	// Details is what the cell says of an instance it holds back on purpose
	// while CLAIMED: it waits for one of the cell's start slots. The API
	// shows it as the instance's details; the BBS does not count the wait
	// as the start being stuck. Empty otherwise.
	Details   string
	Since     time.Time // when it entered State
	StartedAt time.Time // when the current container started (uptime)
}

// HealthCheckTimedOut begins the crash reason of an instance that never
// became healthy within its start timeout (FailureHealthCheckTimeout in
// words). The BBS restarts such an instance only after the crash backoff,
// not at once: it reads CRASHED meanwhile, so a client waiting for the
// start (cf push) fails with the reason instead of waiting out the same
// timeout again and again.
const HealthCheckTimedOut = "health check timed out"

// PortMapping maps a container port to a host port on the cell.
type PortMapping struct {
	ContainerPort int
	HostPort      int
}

// Task states.
const (
	TaskPending   = "PENDING"
	TaskRunning   = "RUNNING"
	TaskCompleted = "COMPLETED"
)

// Task kinds.
const (
	TaskStaging = "staging"
	TaskRun     = "run"
)

// BuildpackRef is a buildpack given to a staging task.
type BuildpackRef struct {
	Name   string
	Key    string // blobstore key of the zip
	SHA256 string
}

// StagingLogRateLimit bounds a staging's output in bytes per second,
// apart from the app's own limit: a build can be verbose, and an
// instance's default limit would cut its log short.
const StagingLogRateLimit = 1 << 20

// StagingRequest is everything a cell needs to stage a package.
type StagingRequest struct {
	AppGUID   string
	BuildGUID string
	// DropletGUID is where the droplet is stored: DropletBlobKey(DropletGUID).
	DropletGUID string
	PackageKey  string
	// Buildpacks in detect order; SkipDetect when the user named them.
	Buildpacks []BuildpackRef
	SkipDetect bool
	Stack      string
	Env        []EnvVar
	// BindingFiles is as DesiredLRP's: the staging gets its service
	// bindings as files too.
	BindingFiles  string
	MemoryMB      int
	DiskMB        int
	Timeout       time.Duration
	BuildCacheKey string
	// DockerImage is set for docker staging (no buildpacks run).
	DockerImage    string
	DockerUsername string
	DockerPassword string
}

// StagedBuildpack is one buildpack that took part in staging.
type StagedBuildpack struct {
	Name         string `json:"name"`
	Version      string `json:"version,omitempty"`
	DetectOutput string `json:"detect_output,omitempty"`
}

// StagingResult is what a successful staging returns.
type StagingResult struct {
	DetectedBuildpack string `json:"detected_buildpack"`
	BuildpackName     string `json:"buildpack_name"`
	BuildpackVersion  string `json:"buildpack_version,omitempty"`
	// Buildpacks are all that ran, in order (supply ones, then the final).
	Buildpacks   []StagedBuildpack `json:"buildpacks,omitempty"`
	StartCommand string            `json:"start_command"`
	ProcessTypes map[string]string `json:"process_types"`
	// Filled by the cell after uploading the droplet.
	DropletSHA1   string `json:"droplet_sha1,omitempty"`
	DropletSHA256 string `json:"droplet_sha256,omitempty"`
	DropletSize   int64  `json:"droplet_size,omitempty"`
	// Docker staging.
	ExecutionMetadata string `json:"execution_metadata,omitempty"`
	Image             string `json:"image,omitempty"`
}

// RunRequest is a CF task: a command run once in a container made from the
// app's droplet, with the app's environment, until it exits.
type RunRequest struct {
	AppGUID   string
	AppName   string
	SpaceGUID string
	SpaceName string
	OrgGUID   string
	OrgName   string
	// Name is the task's name; its log lines are tagged APP/TASK/<Name>.
	Name          string
	DropletKey    string
	DropletSHA256 string
	Stack         string
	// Image, Docker and ImageCredentials: a docker app's task runs in its
	// image instead of a droplet (as DesiredLRP's).
	Image            string
	Docker           *ExecutionMetadata
	ImageCredentials *ImageCredentials
	// Command runs under the launcher like an app's start command (under
	// sh -c in a docker image).
	Command string
	Env     []EnvVar
	// BindingFiles is as DesiredLRP's (the app's feature when the task
	// was created).
	BindingFiles      string
	MemoryMB          int
	DiskMB            int
	LogRateLimitBytes int // as DesiredLRP's
}

// Task is a one-off unit of work on a cell: staging, or a CF task.
type Task struct {
	GUID          string
	Kind          string // TaskStaging or TaskRun
	CellID        string
	State         string
	Failed        bool
	FailureReason string
	// Failure is why a CF task (TaskRun) or a staging failed, as its cell
	// reports it (the API words it); FailureReason then is empty. The
	// runtime's own verdicts (a lost cell, a cancel) use FailureReason, as
	// do cells that predate Failure for stagings.
	Failure *Failure
	// FailureCode is the lifecycle exit code of a staging failure (222 no
	// buildpack, 223 finalize/compile, 224 release, 225 supply) from a
	// cell that predates Failure, or 0; newer cells put it in Failure.
	FailureCode int
	Staging     *StagingRequest
	// Run is set for TaskRun: a one-off command in an app's droplet
	// (cf run-task).
	Run       *RunRequest
	Result    *StagingResult
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CellState is a cell's capacity and usage as it reports them.
type CellState struct {
	ID              string
	Zone            string
	Stacks          []string
	TotalMemoryMB   int
	TotalDiskMB     int
	TotalContainers int
	UsedMemoryMB    int
	// UsedDiskMB includes LayerCacheMB, the disk the cell's image layer
	// cache holds (shared by its docker containers, not theirs).
	UsedDiskMB         int
	LayerCacheMB       int
	UsedContainers     int
	StartingContainers int
	Draining           bool
	// State is the runtime's view of the cell: CellHealthy, CellDraining
	// or CellLost (registered but not answering). Cells report their
	// capacity without it; the runtime fills it in.
	State               string
	InstancesPerProcess map[string]int
	// Images are the digests ("sha256:...") of the images whose layers
	// the cell holds or is pulling, most recently used first, at most
	// MaxCellImages: the auction prefers such a cell for their instances.
	Images []string `json:",omitempty"`
	// Runtimes are the language runtimes each of the cell's stacks
	// offers, by stack name, for the stacks the cell has probed so far
	// (an empty list: probed, none found). Absent from older cells.
	Runtimes map[string][]StackRuntime `json:",omitempty"`
}

// StackRuntime is a language runtime a stack offers on a cell: node, npm,
// yarn, python3, pip, ruby, bundler, java or go, and its upstream version
// (internal/stackprobe).
type StackRuntime struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// MaxCellImages bounds CellState.Images (the rest is ignored).
const MaxCellImages = 32

// Cell states as the runtime reports them.
const (
	CellHealthy  = "healthy"
	CellDraining = "draining"
	CellLost     = "lost"
)

// InstanceStats are one container's resource figures, from its cgroups.
type InstanceStats struct {
	InstanceGUID string
	CPUPercent   float64 // 0-100 per core
	MemoryBytes  uint64
	MemoryQuota  uint64
	DiskBytes    uint64
	DiskQuota    uint64
	// LogRate is the bytes per second of log lines the instance emitted
	// since the previous reading (CF's usage.log_rate).
	LogRate uint64
}

// Cell is what the auctioneer and the BBS ask of a cell's rep. Start and
// run calls return once the work is accepted; progress is reported to the
// cell's CellReporter.
type Cell interface {
	ID() string
	State(ctx context.Context) (CellState, error)
	StartLRP(ctx context.Context, lrp DesiredLRP, index int, instanceGUID string) error
	StopLRP(ctx context.Context, processGUID, instanceGUID string) error
	RunTask(ctx context.Context, t Task) error
	CancelTask(ctx context.Context, guid string) error
	Stats(ctx context.Context, instanceGUID string) (InstanceStats, error)
}

// CellInventory is everything a cell runs, as it reports it when it
// (re)registers with a server that did not know it (after a server
// restart, or a partition): its CLAIMED and RUNNING instances, and its
// tasks, running ones and completed ones whose completion the server has
// not acknowledged yet. The runtime adopts what it still wants and stops
// the rest.
//
// A periodic sync (CellSyncAnswer) also carries Ending, the instances
// the cell is tearing down and whose end (crash or removal) it has not
// finished reporting, and Epoch, the mark of the last sync answer the cell
// received before it took the inventory: with it the runtime knows which
// of the instances and tasks it placed on the cell the inventory must
// list, and treats those it does not list as lost.
type CellInventory struct {
	Actuals []ActualLRP
	Tasks   []Task
	Ending  []string `json:",omitempty"` // instance guids
	Epoch   string   `json:",omitempty"`
}

// CellSyncAnswer is the runtime's answer to a cell's periodic sync (the
// cell sends its CellInventory every sync period, as Diego's rep does its
// bulk sync): what it wants done with the instances and tasks it lists.
// Only the items to act on are named; every other one is kept. The cell
// stops (or cancels) the items marked SyncStop itself.
//
// Epoch is an opaque mark the cell sends back with its next inventory
// (CellInventory.Epoch): the runtime orders its placements against it.
type CellSyncAnswer struct {
	Actuals []SyncVerdict `json:"actuals,omitempty"` // by InstanceGUID
	Tasks   []SyncVerdict `json:"tasks,omitempty"`   // by task GUID
	Epoch   string        `json:"epoch,omitempty"`
}

// SyncVerdict is what the runtime wants of one item of a cell's sync.
type SyncVerdict struct {
	GUID   string     `json:"guid"`
	Action SyncAction `json:"action"`
	// Reason says why, for the app's CELL log line.
	Reason string `json:"reason,omitempty"`
}

// SyncAction is a verdict of a cell's sync.
type SyncAction string

const (
	// SyncKeep: the runtime wants the item (never listed: the default).
	SyncKeep SyncAction = "keep"
	// SyncStop: the runtime does not want the item: the cell stops the
	// instance or cancels the task.
	SyncStop SyncAction = "stop"
	// SyncAdopt: the runtime had lost track of the instance and now
	// counts it as its index's instance.
	SyncAdopt SyncAction = "adopt"
)

// CellReporter receives a cell's reports: instance state changes and task
// completions. The BBS implements it.
type CellReporter interface {
	ActualLRPChanged(ctx context.Context, a ActualLRP) error
	ActualLRPRemoved(ctx context.Context, processGUID, instanceGUID string) error
	TaskCompleted(ctx context.Context, t Task) error
}

// Log source types (log-cache tags.source_type).
const (
	LogSourceStaging = "STG"
	LogSourceApp     = "APP/PROC/WEB"
	LogSourceAPI     = "API"
	LogSourceCell    = "CELL"
	LogSourceRouter  = "RTR"
)

// LogSourceSelected reports whether a line of source type t is selected by
// the filter a log reader gives: t equals an entry or is under it on a "/"
// boundary ("APP" selects "APP/PROC/WEB", not "APPX"); no entries select
// every line. The server's log store and the CLI apply this one rule.
func LogSourceSelected(filter []string, t string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if t == f || (len(t) > len(f) && t[:len(f)] == f && t[len(f)] == '/') {
			return true
		}
	}
	return false
}

// LogEnvelope is one log line.
type LogEnvelope struct {
	Timestamp  time.Time
	SourceID   string // app guid
	InstanceID string // instance index, "0" for staging
	SourceType string // LogSource*
	Type       string // "OUT" or "ERR"
	Payload    []byte
}

// LogSink takes log lines. Emit never blocks for long; a sink that must drop
// counts what it dropped.
type LogSink interface {
	Emit(e LogEnvelope)
}

// Runtime is the runtime contract (Diego's BBS API): what the API, the
// route emitter and the cells view ask of the runtime, whether it runs in
// the same process (internal/bbs) or behind HTTP (internal/runtimeapi).
// Every call takes a context and returns an error; an unknown GUID is an
// ENotFound error. Progress is not reported through callbacks but through
// the event stream: task and staging completions are TaskCompleted events,
// sent again until the consumer resolves the task.
type Runtime interface {
	// DesireLRP creates a desired LRP, or updates it: a new Revision
	// replaces every instance, a new Instances count starts or stops
	// instances, other changes apply to instances started from then on.
	DesireLRP(ctx context.Context, lrp DesiredLRP) error
	// UpdateDesiredLRP changes the instance count and routes of an
	// existing desired LRP.
	UpdateDesiredLRP(ctx context.Context, processGUID string, u DesiredLRPUpdate) error
	RemoveDesiredLRP(ctx context.Context, processGUID string) error
	DesiredLRP(ctx context.Context, processGUID string) (DesiredLRP, error)
	// DesiredLRPs returns every desired LRP, sorted by process GUID.
	DesiredLRPs(ctx context.Context) ([]DesiredLRP, error)
	// ActualLRPs returns one instance per index of a process, sorted by
	// index; an empty processGUID returns every process's instances.
	ActualLRPs(ctx context.Context, processGUID string) ([]ActualLRP, error)
	// RetireActualLRP stops one instance; the runtime starts a new one for
	// its index (a restart of that instance).
	RetireActualLRP(ctx context.Context, processGUID, instanceGUID string) error

	// DesireTask accepts a task; it completes, at once if it fits on no
	// cell, with a TaskCompleted event.
	DesireTask(ctx context.Context, t Task) error
	// CancelTask stops a task and completes it as failed; cancelling a
	// completed task does nothing.
	CancelTask(ctx context.Context, guid string) error
	Task(ctx context.Context, guid string) (Task, error)
	// Tasks returns every task the runtime holds, oldest first, completed
	// ones that are not resolved yet included.
	Tasks(ctx context.Context) ([]Task, error)
	// ResolveTask says the consumer has recorded a completed task: the
	// runtime stops sending its completion and forgets it. Resolving a task
	// that is not completed is an EConflict error.
	ResolveTask(ctx context.Context, guid string) error

	// Cells returns every registered cell with its capacity, usage and
	// State, sorted by ID.
	Cells(ctx context.Context) ([]CellState, error)
	// DrainCell evacuates a registered cell: the runtime places no new
	// work on it and moves each of its instances elsewhere, stopping one
	// only once its replacement is RUNNING (or after the evacuation
	// timeout). The cell is listed CellDraining from then on. An unknown
	// cell is an ENotFound error; draining a draining cell does nothing.
	DrainCell(ctx context.Context, cellID string) error
	// UndrainCell ends an operator's drain: the runtime places work on the
	// cell again and moves nothing more off it (moves under way finish).
	// A cell that drains itself (SIGTERM, SIGUSR1 on its machine) stays
	// listed draining. An unknown cell is an ENotFound error; undraining a cell
	// that is not draining does nothing.
	UndrainCell(ctx context.Context, cellID string) error

	// Subscribe streams events after sequence number after. When after is
	// 0, older than the events the runtime still holds, or not one of its
	// own (a cursor from before a restart), the stream starts with an
	// EventResync: the consumer re-reads the state it follows, then
	// applies the events after it. The channel closes only when ctx ends;
	// a subscriber that falls too far behind gets an EventResync instead
	// of the events it missed.
	Subscribe(ctx context.Context, after uint64) (<-chan RuntimeEvent, error)
}

// DesiredLRPUpdate is a change to a desired LRP; nil fields stay as they
// are.
type DesiredLRPUpdate struct {
	Instances *int
	Routes    *[]string
}

// EventType says what a RuntimeEvent is about.
type EventType string

// Event types.
const (
	EventDesiredLRPChanged EventType = "desired_lrp_changed"
	EventDesiredLRPRemoved EventType = "desired_lrp_removed"
	EventActualLRPChanged  EventType = "actual_lrp_changed"
	EventActualLRPRemoved  EventType = "actual_lrp_removed"
	// EventTaskChanged is a task that was accepted or started (PENDING,
	// RUNNING).
	EventTaskChanged EventType = "task_changed"
	// EventTaskCompleted is a COMPLETED task with its outcome (Failed,
	// FailureReason, Result). It is sent at least once: again after a
	// while until the task is resolved (Runtime.ResolveTask).
	EventTaskCompleted EventType = "task_completed"
	// EventCellChanged is a cell that registered or started draining;
	// EventCellRemoved one that unregistered or whose presence expired.
	EventCellChanged EventType = "cell_changed"
	EventCellRemoved EventType = "cell_removed"
	// EventResync means the consumer must re-read the state it follows
	// (desired and actual LRPs, tasks, cells): events were not kept for it.
	EventResync EventType = "resync"
)

// RuntimeEvent is one change in the runtime. Seq increases by one per event of a
// runtime instance; resume a stream with the last Seq seen. Desired,
// Actual, Task and Cell may be shared between subscribers: read them, do
// not modify them.
type RuntimeEvent struct {
	Seq         uint64
	Type        EventType
	ProcessGUID string      `json:",omitempty"`
	Desired     *DesiredLRP `json:",omitempty"`
	Actual      *ActualLRP  `json:",omitempty"`
	Task        *Task       `json:",omitempty"`
	// Cell carries the cell's ID and State (not its usage).
	Cell *CellState `json:",omitempty"`
}
