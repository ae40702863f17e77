-- What each uploader's media adds up to, kept in the transaction that adds or
-- removes media, so a quota check reads one row instead of summing them all.
CREATE TABLE user_usage (
	user_id TEXT   NOT NULL PRIMARY KEY,
	bytes   INTEGER NOT NULL DEFAULT 0,
	files   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO user_usage (user_id, bytes, files)
	SELECT user_id, SUM(size_bytes), COUNT(*) FROM media WHERE user_id <> '' GROUP BY user_id;
