-- What operators need to run a repository for years: moderation, purges,
-- retention by last access, background tasks and single-instance jobs.

-- protected media (matrix-media-repo's purpose "pinned", Synapse's
-- safe_from_quarantine) is never quarantined, nor purged by age. The last
-- access is written in batches, never per download; 0 means never.
ALTER TABLE media ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN last_access_ts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX media_origin_created_idx ON media (origin, created_ts);
CREATE INDEX thumbnails_created_idx ON thumbnails (created_ts);

-- Quarantine is of bytes: media with quarantined bytes is never served, and
-- uploads of those bytes are refused, whatever their media ID. A repository
-- admin's quarantine (scope '') covers every origin; a homeserver admin's
-- only that homeserver's media (scope = its server name), so one tenant
-- cannot take down another's.
CREATE TABLE quarantined_hashes (
	sha256         TEXT   NOT NULL,
	scope          TEXT   NOT NULL,
	quarantined_by TEXT   NOT NULL,
	created_ts     INTEGER NOT NULL,
	PRIMARY KEY (sha256, scope)
);

-- Local media IDs that were purged: never handed out or uploaded to again.
CREATE TABLE purged_media (
	origin    TEXT   NOT NULL,
	media_id  TEXT   NOT NULL,
	purged_ts INTEGER NOT NULL,
	PRIMARY KEY (origin, media_id)
);

-- Long jobs started through the admin API (matrix-media-repo's tasks).
CREATE TABLE tasks (
	task_id  INTEGER PRIMARY KEY AUTOINCREMENT,
	name     TEXT   NOT NULL,
	params   TEXT   NOT NULL,
	start_ts INTEGER NOT NULL,
	end_ts   INTEGER NOT NULL DEFAULT 0,
	error    TEXT   NOT NULL DEFAULT ''
);

-- Leases make one instance at a time run each periodic job.
CREATE TABLE leases (
	name       TEXT   NOT NULL PRIMARY KEY,
	holder     TEXT   NOT NULL,
	expires_ts INTEGER NOT NULL
);
