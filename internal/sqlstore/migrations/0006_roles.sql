-- 0005_roles: users' roles in orgs and spaces (CF's organization_* and
-- space_* role types). scope_guid is the org's GUID for an org role and the
-- space's for a space role, so one user has each role once per org or space.
CREATE TABLE roles (
    guid       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    type       TEXT NOT NULL,
    user_guid  TEXT NOT NULL REFERENCES users (guid) ON DELETE CASCADE,
    org_guid   TEXT REFERENCES orgs (guid) ON DELETE CASCADE,
    space_guid TEXT REFERENCES spaces (guid) ON DELETE CASCADE,
    scope_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (type, user_guid, scope_guid)
);
CREATE INDEX roles_seq ON roles (seq);
CREATE INDEX roles_user ON roles (user_guid);
CREATE INDEX roles_scope ON roles (scope_guid);
