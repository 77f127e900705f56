package api

import "time"

// Org is a CF organization.
type Org struct {
	GUID string `json:"guid"`
	Name string `json:"name"`
}

// Space is a CF space.
type Space struct {
	GUID string `json:"guid"`
	Name string `json:"name"`
}

// App is a CF v3 app.
type App struct {
	GUID      string    `json:"guid"`
	Name      string    `json:"name"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Lifecycle struct {
		Type string `json:"type"`
		Data struct {
			Buildpacks []string `json:"buildpacks"`
			Stack      string   `json:"stack"`
		} `json:"data"`
	} `json:"lifecycle"`
}

// HealthCheck is a process's health check.
type HealthCheck struct {
	Type string `json:"type"`
	Data struct {
		Timeout           *int   `json:"timeout"`
		InvocationTimeout *int   `json:"invocation_timeout"`
		Endpoint          string `json:"endpoint,omitempty"`
	} `json:"data"`
}

// Process is one process type of an app.
type Process struct {
	GUID          string      `json:"guid"`
	Type          string      `json:"type"`
	Command       *string     `json:"command"`
	Instances     int         `json:"instances"`
	MemoryInMB    int         `json:"memory_in_mb"`
	DiskInMB      int         `json:"disk_in_mb"`
	LogRateLimit  int         `json:"log_rate_limit_in_bytes_per_second"` // -1 unlimited
	HealthCheck   HealthCheck `json:"health_check"`
	Relationships struct {
		App struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"app"`
	} `json:"relationships"`
}

// AppGUID returns the GUID of the process's app.
func (p Process) AppGUID() string { return p.Relationships.App.Data.GUID }

// InstanceStats is one entry of /v3/processes/:guid/stats.
type InstanceStats struct {
	Type   string `json:"type"`
	Index  int    `json:"index"`
	State  string `json:"state"`
	Uptime int64  `json:"uptime"`
	// StartedAt is when a RUNNING instance started (Pando's
	// pando_started_at; zero from servers without it).
	StartedAt time.Time `json:"pando_started_at"`
	MemQuota  *int64    `json:"mem_quota"`
	DiskQuota *int64    `json:"disk_quota"`
	Details   *string   `json:"details"`
	Routable  *bool     `json:"routable"`
	Usage     struct {
		CPU  float64 `json:"cpu"`
		Mem  int64   `json:"mem"`
		Disk int64   `json:"disk"`
	} `json:"usage"`
}

// DetailsText returns details or "".
func (s InstanceStats) DetailsText() string {
	if s.Details == nil {
		return ""
	}
	return *s.Details
}

// Stats is the stats document of a process; StateHash is Pando's long-poll
// cursor (empty from plain CF servers).
type Stats struct {
	Resources []InstanceStats `json:"resources"`
	StateHash string          `json:"pando_state_hash"`
}

// Route is a CF route.
type Route struct {
	GUID         string        `json:"guid"`
	Host         string        `json:"host"`
	Path         string        `json:"path"`
	URL          string        `json:"url"`
	Destinations []Destination `json:"destinations"`
}

// Destination maps a route to one process of an app.
type Destination struct {
	GUID string `json:"guid"`
	App  struct {
		GUID    string `json:"guid"`
		Process struct {
			Type string `json:"type"`
		} `json:"process"`
	} `json:"app"`
}

// Package is a CF package.
type Package struct {
	GUID  string `json:"guid"`
	Type  string `json:"type"`
	State string `json:"state"`
	Data  struct {
		Error *string `json:"error"`
		Image string  `json:"image,omitempty"`
	} `json:"data"`
	CreatedAt time.Time `json:"created_at"`
}

// Build is a CF build.
type Build struct {
	GUID    string  `json:"guid"`
	State   string  `json:"state"`
	Error   *string `json:"error"`
	Droplet *struct {
		GUID string `json:"guid"`
	} `json:"droplet"`
	Package struct {
		GUID string `json:"guid"`
	} `json:"package"`
	Lifecycle struct {
		Type string `json:"type"`
		Data struct {
			Buildpacks []string `json:"buildpacks"`
			Stack      string   `json:"stack"`
		} `json:"data"`
	} `json:"lifecycle"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ErrorText returns the build's error or "".
func (b *Build) ErrorText() string {
	if b.Error == nil {
		return ""
	}
	return *b.Error
}

// DropletGUID returns the droplet's GUID or "".
func (b *Build) DropletGUID() string {
	if b.Droplet == nil {
		return ""
	}
	return b.Droplet.GUID
}

// Droplet is a CF droplet.
type Droplet struct {
	GUID       string  `json:"guid"`
	State      string  `json:"state"`
	Stack      string  `json:"stack"`
	Image      *string `json:"image"`
	Buildpacks []struct {
		Name          string `json:"name"`
		Version       string `json:"version"`
		DetectOutput  string `json:"detect_output"`
		BuildpackName string `json:"buildpack_name"`
	} `json:"buildpacks"`
	ProcessTypes map[string]string `json:"process_types"`
	CreatedAt    time.Time         `json:"created_at"`
}

// Resource is a file entry for resource matching and package upload.
type Resource struct {
	Checksum struct {
		Value string `json:"value"`
	} `json:"checksum"`
	SizeInBytes int64  `json:"size_in_bytes"`
	Path        string `json:"path"`
	Mode        string `json:"mode"`
}

// AuditEvent is a CF audit event.
type AuditEvent struct {
	GUID      string    `json:"guid"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Actor     struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"actor"`
	Data map[string]any `json:"data"`
}

// AppEnv is /v3/apps/:guid/env.
type AppEnv struct {
	EnvironmentVariables map[string]any `json:"environment_variables"`
	StagingEnvJSON       map[string]any `json:"staging_env_json"`
	RunningEnvJSON       map[string]any `json:"running_env_json"`
	SystemEnvJSON        map[string]any `json:"system_env_json"`
	ApplicationEnvJSON   map[string]any `json:"application_env_json"`
}

// Buildpack is an admin buildpack.
type Buildpack struct {
	GUID      string  `json:"guid"`
	Name      string  `json:"name"`
	Position  int     `json:"position"`
	Stack     *string `json:"stack"`
	Enabled   bool    `json:"enabled"`
	Locked    bool    `json:"locked"`
	State     string  `json:"state"`
	Filename  *string `json:"filename"`
	Lifecycle string  `json:"lifecycle"`
}

// Stack is a CF stack, with Pando's list of the language runtimes it
// offers: nil when the server does not know them (JSON null: an API
// without a local cell whose cells report none), empty when it looked and
// found none; CellRuntimes are each cell's (servers before 2026-12-07
// send none).
type Stack struct {
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Runtimes     []Runtime `json:"runtimes"`
	CellRuntimes []struct {
		CellID   string    `json:"cell_id"`
		Runtimes []Runtime `json:"runtimes"`
	} `json:"cell_runtimes"`
}

// Runtime is a language runtime a stack offers, and its version.
type Runtime struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}
