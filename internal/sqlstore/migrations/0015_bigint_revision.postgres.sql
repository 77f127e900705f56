-- An app's revision grows by one at every restart or restage, without
-- bound: BIGINT, like seq, sizes and task sequence ids. PostgreSQL only:
-- SQLite's INTEGER is already 64-bit. The other INTEGER columns hold what
-- the API bounds: instances (1,000), memory and disk (65,536 MB), health
-- check timeouts (180 and 60 s), a route destination's port (65,535), a
-- buildpack's position (the number of buildpacks) and a 0/1 flag.
ALTER TABLE apps ALTER COLUMN revision TYPE BIGINT;
