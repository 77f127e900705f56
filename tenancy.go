package pando

import "time"

// Role types, as CF names them.
const (
	RoleOrgUser           = "organization_user"
	RoleOrgManager        = "organization_manager"
	RoleOrgAuditor        = "organization_auditor"
	RoleOrgBillingManager = "organization_billing_manager"
	RoleSpaceDeveloper    = "space_developer"
	RoleSpaceManager      = "space_manager"
	RoleSpaceAuditor      = "space_auditor"
	RoleSpaceSupporter    = "space_supporter"
)

// IsOrgRole reports whether typ is one of the organization_* role types.
func IsOrgRole(typ string) bool {
	switch typ {
	case RoleOrgUser, RoleOrgManager, RoleOrgAuditor, RoleOrgBillingManager:
		return true
	}
	return false
}

// IsSpaceRole reports whether typ is one of the space_* role types.
func IsSpaceRole(typ string) bool {
	switch typ {
	case RoleSpaceDeveloper, RoleSpaceManager, RoleSpaceAuditor, RoleSpaceSupporter:
		return true
	}
	return false
}

// Role gives a user a role in an org (OrgGUID set) or a space (SpaceGUID
// set), never both.
type Role struct {
	GUID      string
	Type      string
	UserGUID  string
	OrgGUID   string
	SpaceGUID string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RoleFilter selects roles. Empty slices match everything.
type RoleFilter struct {
	GUIDs      []string
	Types      []string
	UserGUIDs  []string
	OrgGUIDs   []string
	SpaceGUIDs []string
}

// Quota kinds.
const (
	QuotaOrg   = "organization"
	QuotaSpace = "space"
)

// Quota is an org quota (Kind QuotaOrg) or a space quota of one org (Kind
// QuotaSpace, OrgGUID set). A nil limit is unlimited.
type Quota struct {
	GUID      string
	Kind      string
	Name      string
	OrgGUID   string
	Limits    QuotaLimits
	CreatedAt time.Time
	UpdatedAt time.Time
}

// QuotaLimits are CF's quota fields; nil is unlimited.
type QuotaLimits struct {
	TotalMemoryMB         *int64 `json:"total_memory_in_mb"`
	PerProcessMemoryMB    *int64 `json:"per_process_memory_in_mb"`
	TotalInstances        *int64 `json:"total_instances"`
	PerAppTasks           *int64 `json:"per_app_tasks"`
	LogRateLimit          *int64 `json:"log_rate_limit_in_bytes_per_second"`
	TotalRoutes           *int64 `json:"total_routes"`
	TotalReservedPorts    *int64 `json:"total_reserved_ports"`
	TotalServiceInstances *int64 `json:"total_service_instances"`
	TotalServiceKeys      *int64 `json:"total_service_keys"`
	PaidServicesAllowed   bool   `json:"paid_services_allowed"`
	TotalDomains          *int64 `json:"total_domains"`
}
