-- 0006_quotas: org and space quotas (CF's organization_quotas and
-- space_quotas). limits is JSON; a missing or null limit is unlimited.
-- An org or space has at most one quota ('' for none).
CREATE TABLE quotas (
    guid       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    org_guid   TEXT NOT NULL,
    limits     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (kind, org_guid, name)
);
CREATE INDEX quotas_seq ON quotas (seq);
ALTER TABLE orgs ADD COLUMN quota_guid TEXT NOT NULL DEFAULT '';
ALTER TABLE spaces ADD COLUMN quota_guid TEXT NOT NULL DEFAULT '';
