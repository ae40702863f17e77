-- Generated thumbnails, stored once per media and requested size.
CREATE TABLE thumbnails (
	origin       TEXT    NOT NULL,
	media_id     TEXT    NOT NULL,
	width        INTEGER NOT NULL,
	height       INTEGER NOT NULL,
	method       TEXT    NOT NULL,
	animated     BOOLEAN NOT NULL,
	content_type TEXT    NOT NULL,
	sha256       TEXT    NOT NULL,
	size_bytes   BIGINT  NOT NULL,
	datastore_id TEXT    NOT NULL,
	created_ts   BIGINT  NOT NULL,
	PRIMARY KEY (origin, media_id, width, height, method, animated, content_type)
);
CREATE INDEX thumbnails_sha256_idx ON thumbnails (sha256);
