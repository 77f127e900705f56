-- 0010_app_features: the app features a user enabled (a JSON array of
-- names: file-based-vcap-services, service-binding-k8s) and the one the
-- running revision uses.
ALTER TABLE apps ADD COLUMN features TEXT NOT NULL DEFAULT '[]';
-- The binding-file feature the running revision was started with.
ALTER TABLE apps ADD COLUMN running_binding_files TEXT NOT NULL DEFAULT '';
