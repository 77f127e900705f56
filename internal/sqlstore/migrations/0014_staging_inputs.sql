-- 0014_staging_inputs: what lets an unchanged push reuse its droplet. A
-- package's files_sha256 is the digest of its files (paths, modes,
-- contents; not times); a droplet's staging_inputs is the digest of
-- everything its staging read. Rows from before have neither and are
-- never reused.
ALTER TABLE packages ADD COLUMN files_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE droplets ADD COLUMN staging_inputs TEXT NOT NULL DEFAULT '';
