-- What an app's current revision runs: its droplet and env at (re)start.
ALTER TABLE apps ADD COLUMN running_droplet_guid TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN running_env_vars TEXT NOT NULL DEFAULT 'null';
