-- URL previews are kept per homeserver: the image of a preview is media of the
-- homeserver whose user asked, and one tenant must not learn what another's
-- users preview. The old cache, keyed without it, is dropped (it refills).
DROP TABLE url_previews;
CREATE TABLE url_previews (
	server_name TEXT    NOT NULL,
	url         TEXT    NOT NULL,
	bucket      BIGINT  NOT NULL,
	lang        TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	errcode     TEXT    NOT NULL,
	body        TEXT    NOT NULL,
	created_ts  BIGINT  NOT NULL,
	PRIMARY KEY (server_name, url, bucket, lang)
);
CREATE INDEX url_previews_created_idx ON url_previews (created_ts);
