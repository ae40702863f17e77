-- Cached URL previews, successes and failures, per URL, hour and language.
CREATE TABLE url_previews (
	url        TEXT    NOT NULL,
	bucket     BIGINT  NOT NULL,
	lang       TEXT    NOT NULL,
	status     INTEGER NOT NULL,
	errcode    TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	created_ts BIGINT  NOT NULL,
	PRIMARY KEY (url, bucket, lang)
);
