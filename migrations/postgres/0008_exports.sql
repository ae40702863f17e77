-- Exports in matrix-media-repo's archive format: each export's parts are
-- blobs of a datastore taking archives, listed here so that the orphan
-- sweep keeps them and a delete finds them.
CREATE TABLE exports (
	export_id  TEXT   NOT NULL PRIMARY KEY,
	entity     TEXT   NOT NULL,
	task_id    BIGINT NOT NULL,
	created_ts BIGINT NOT NULL
);

CREATE TABLE export_parts (
	export_id    TEXT    NOT NULL,
	part_index   INTEGER NOT NULL,
	name         TEXT    NOT NULL,
	size_bytes   BIGINT  NOT NULL,
	sha256       TEXT    NOT NULL,
	datastore_id TEXT    NOT NULL,
	PRIMARY KEY (export_id, part_index)
);
CREATE INDEX export_parts_blob_idx ON export_parts (datastore_id, sha256);
