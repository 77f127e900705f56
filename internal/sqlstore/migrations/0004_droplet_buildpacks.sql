-- Every buildpack that staged a droplet (multi-buildpack pushes), as JSON.
ALTER TABLE droplets ADD COLUMN buildpacks TEXT NOT NULL DEFAULT 'null';
