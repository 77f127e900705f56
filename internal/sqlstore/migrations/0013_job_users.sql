-- 0013_job_users: who started a job; only they and admins read it. Jobs
-- from before have none and are read by admins only.
ALTER TABLE jobs ADD COLUMN user_guid TEXT NOT NULL DEFAULT '';
