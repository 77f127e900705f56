package pando

import (
	"context"
	"time"
)

// FeatureFlag is an admin's setting of one of CF's feature flags. Only
// flags an admin changed are stored; the API knows every flag's default.
type FeatureFlag struct {
	Name    string
	Enabled bool
	// CustomErrorMessage replaces "Feature Disabled: NAME" in the error a
	// disabled flag answers; empty for none.
	CustomErrorMessage string
	UpdatedAt          time.Time
}

// Environment variable group names.
const (
	EnvGroupRunning = "running"
	EnvGroupStaging = "staging"
)

// EnvGroup is a platform-wide environment variable group: the running
// group is in every app instance's and task's environment, the staging
// group in every staging's, each under the app's own variables.
type EnvGroup struct {
	Name      string // EnvGroupRunning or EnvGroupStaging
	Vars      map[string]string
	UpdatedAt time.Time
}

// App usage event states (CF's).
const (
	UsageStarted      = "STARTED"
	UsageStopped      = "STOPPED"
	UsageBuildpackSet = "BUILDPACK_SET"
	UsageTaskStarted  = "TASK_STARTED"
	UsageTaskStopped  = "TASK_STOPPED"
)

// AppUsageEvent records a change in what an app consumes, for billing and
// reporting: a process started or stopped (with its instances and memory
// before and after), a buildpack set by staging, a task started or
// stopped. Fields that do not apply are empty or zero.
type AppUsageEvent struct {
	GUID                  string    `json:"guid"`
	State                 string    `json:"state"`
	PreviousState         string    `json:"previous_state,omitempty"`
	AppGUID               string    `json:"app_guid"`
	AppName               string    `json:"app_name"`
	ProcessGUID           string    `json:"process_guid,omitempty"`
	ProcessType           string    `json:"process_type,omitempty"`
	SpaceGUID             string    `json:"space_guid"`
	SpaceName             string    `json:"space_name"`
	OrgGUID               string    `json:"org_guid"`
	BuildpackGUID         string    `json:"buildpack_guid,omitempty"`
	BuildpackName         string    `json:"buildpack_name,omitempty"`
	TaskGUID              string    `json:"task_guid,omitempty"`
	TaskName              string    `json:"task_name,omitempty"`
	InstanceCount         int       `json:"instance_count"`
	PreviousInstanceCount int       `json:"previous_instance_count"`
	MemoryMB              int       `json:"memory_mb"`
	PreviousMemoryMB      int       `json:"previous_memory_mb"`
	CreatedAt             time.Time `json:"-"`
}

// AppUsageFilter selects app usage events, oldest first unless
// Descending. Empty fields match everything.
type AppUsageFilter struct {
	GUIDs []string
	// AfterGUID keeps only events recorded after that one.
	AfterGUID  string
	Descending bool
}

// SettingsStore is the part of the CCDB holding platform settings and
// usage records: feature flags, environment variable groups and app usage
// events.
type SettingsStore interface {
	// ListFeatureFlags returns the flags an admin set, by name.
	ListFeatureFlags(ctx context.Context) ([]FeatureFlag, error)
	// PutFeatureFlag creates or replaces a flag's setting.
	PutFeatureFlag(ctx context.Context, f FeatureFlag) error

	// GetEnvGroup returns a group; ENotFound when it was never set.
	GetEnvGroup(ctx context.Context, name string) (EnvGroup, error)
	// PutEnvGroup creates or replaces a group.
	PutEnvGroup(ctx context.Context, g EnvGroup) error

	CreateAppUsageEvent(ctx context.Context, e AppUsageEvent) error
	GetAppUsageEvent(ctx context.Context, guid string) (AppUsageEvent, error)
	ListAppUsageEvents(ctx context.Context, f AppUsageFilter) ([]AppUsageEvent, error)
	// DeleteAppUsageEventsBefore deletes the events created before t; a
	// zero t deletes them all.
	DeleteAppUsageEventsBefore(ctx context.Context, t time.Time) error
}
