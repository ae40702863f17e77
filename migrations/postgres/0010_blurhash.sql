-- MSC2448: the blurhash of an image, computed at upload when featureSupport.MSC2448 is on.
ALTER TABLE media ADD COLUMN blurhash TEXT NOT NULL DEFAULT '';
