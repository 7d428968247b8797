-- A followed path is read as a series of files: after a rotation the old file
-- is drained under its own checkpoint while the new one starts at 0. So a
-- checkpoint is keyed by the file's identity (key), and name, which rows and
-- `dump --source` use, may repeat. Ids are kept, so vk_spans stay valid.
CREATE TABLE vk_sources_new (
  id          INTEGER PRIMARY KEY,
  key         TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  kind        TEXT NOT NULL,
  dev         INTEGER,
  ino         INTEGER,
  fingerprint BLOB,
  offset      INTEGER NOT NULL DEFAULT 0,
  line        INTEGER NOT NULL DEFAULT 0,
  size        INTEGER,
  updated     INTEGER
);
INSERT INTO vk_sources_new (id, key, name, kind, dev, ino, fingerprint, offset, line, size, updated)
  SELECT id, name, name, kind, dev, ino, fingerprint, offset, line, size, updated FROM vk_sources;
DROP TABLE vk_sources;
ALTER TABLE vk_sources_new RENAME TO vk_sources;
CREATE INDEX vk_sources_name ON vk_sources(name);
