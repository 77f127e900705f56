-- 0010_app_features: the app features a user enabled (a JSON array of
-- names: file-based-vcap-services, service-binding-k8s).
ALTER TABLE apps ADD COLUMN features TEXT NOT NULL DEFAULT '[]';
