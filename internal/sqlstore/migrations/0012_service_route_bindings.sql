-- 0012_service_route_bindings: a route bound to a user-provided service
-- instance with a route_service_url (cf bind-route-service). A route has
-- at most one; deleting the route or the instance deletes the binding.
CREATE TABLE service_route_bindings (
    guid          TEXT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    route_guid    TEXT NOT NULL UNIQUE REFERENCES routes (guid) ON DELETE CASCADE,
    instance_guid TEXT NOT NULL REFERENCES service_instances (guid) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX service_route_bindings_seq ON service_route_bindings (seq);
CREATE INDEX service_route_bindings_instance ON service_route_bindings (instance_guid);
