-- 0016_server_state: what the API replicas sharing one database agree on
-- (by name): who holds the claim, the fingerprint of the data-dir secrets
-- every replica must share, the joined cells a new leader waits for.
CREATE TABLE server_state (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
