-- A running task's progress (a JSON object, or empty), for the admin API's task routes.
ALTER TABLE tasks ADD COLUMN progress TEXT NOT NULL DEFAULT '';
