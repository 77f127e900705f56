-- 0008_private_domains: a private domain belongs to an org ('' for a
-- shared domain).
ALTER TABLE domains ADD COLUMN org_guid TEXT NOT NULL DEFAULT '';
