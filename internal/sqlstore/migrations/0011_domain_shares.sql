-- 0011_domain_shares: private domains shared with other orgs (cf
-- share-private-domain). Deleting the domain or the org ends the share.
CREATE TABLE domain_shares (
    domain_guid TEXT NOT NULL REFERENCES domains (guid) ON DELETE CASCADE,
    org_guid    TEXT NOT NULL REFERENCES orgs (guid) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (domain_guid, org_guid)
);
CREATE INDEX domain_shares_org ON domain_shares (org_guid);
