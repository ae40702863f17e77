-- Media IDs reserved by /_matrix/media/v1/create (MSC2246) and not uploaded yet.
CREATE TABLE pending_media (
	origin     TEXT   NOT NULL,
	media_id   TEXT   NOT NULL,
	user_id    TEXT   NOT NULL,
	created_ts INTEGER NOT NULL,
	expires_ts INTEGER NOT NULL,
	PRIMARY KEY (origin, media_id)
);
CREATE INDEX pending_media_user_idx ON pending_media (user_id, expires_ts);
CREATE INDEX pending_media_expires_idx ON pending_media (expires_ts);
