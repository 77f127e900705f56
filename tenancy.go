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
