-- Cached URL previews, successes and failures, per URL, hour and language.
CREATE TABLE url_previews (
	url        TEXT    NOT NULL,
	bucket     INTEGER NOT NULL,
	lang       TEXT    NOT NULL,
	status     INTEGER NOT NULL,
	errcode    TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	created_ts INTEGER NOT NULL,
	PRIMARY KEY (url, bucket, lang)
);
