-- One row per piece of media, local or remote. Rows are immutable.
CREATE TABLE media (
	origin        TEXT    NOT NULL,
	media_id      TEXT    NOT NULL,
	upload_name   TEXT    NOT NULL DEFAULT '',
	content_type  TEXT    NOT NULL,
	user_id       TEXT    NOT NULL DEFAULT '',
	sha256        TEXT    NOT NULL,
	size_bytes    INTEGER NOT NULL,
	datastore_id  TEXT    NOT NULL,
	created_ts    INTEGER NOT NULL,
	authenticated INTEGER NOT NULL,
	PRIMARY KEY (origin, media_id)
);
CREATE INDEX media_sha256_idx ON media (sha256);
CREATE INDEX media_user_id_idx ON media (user_id, created_ts);
