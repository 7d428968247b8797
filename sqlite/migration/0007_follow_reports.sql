-- A file's birth time (statx, Unix ns; NULL where the file system keeps
-- none) tells a new file at a reused inode from the old one when their first
-- bytes are the same. gone marks a file that can no longer be found and
-- whose loss was reported, so it is reported once.
ALTER TABLE vk_sources ADD COLUMN birth INTEGER;
ALTER TABLE vk_sources ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;

-- What following could not keep exactly once, reported instead: bytes never
-- read (gap), bytes read again (reread), a file another process holds
-- (claim). Written in the transaction of the checkpoint it concerns.
-- bytes is NULL when the amount is not known.
CREATE TABLE IF NOT EXISTS vk_warnings (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  time    INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  source  TEXT,
  offset  INTEGER,
  bytes   INTEGER,
  detail  TEXT NOT NULL,
  pid     INTEGER
);
CREATE INDEX IF NOT EXISTS vk_warnings_time ON vk_warnings(time);

-- A followed file (by device and inode) is read by one vibekit-pipe at a
-- time: the process that holds its claim. A claim whose process is gone (on
-- this host), or whose heartbeat is older than the lease, is taken over.
CREATE TABLE IF NOT EXISTS vk_claims (
  file      TEXT PRIMARY KEY,  -- dev:ino
  path      TEXT NOT NULL,
  owner     TEXT NOT NULL,     -- the run's random id
  pid       INTEGER NOT NULL,
  host      TEXT NOT NULL,
  since     INTEGER NOT NULL,  -- Unix ms
  heartbeat INTEGER NOT NULL   -- Unix ms
);

-- Checkpoints deleted (by hand: the program never deletes one), kept so
-- that reading such a file again from 0 is reported, not silent. A report
-- removes its row.
CREATE TABLE IF NOT EXISTS vk_forgotten (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  key         TEXT NOT NULL,
  name        TEXT NOT NULL,
  kind        TEXT NOT NULL,
  dev         INTEGER,
  ino         INTEGER,
  fingerprint BLOB,
  offset      INTEGER NOT NULL,
  line        INTEGER NOT NULL,
  size        INTEGER,
  birth       INTEGER,
  deleted     INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS vk_sources_forget AFTER DELETE ON vk_sources
WHEN old.kind = 'file' AND old.offset > 0 BEGIN
  INSERT INTO vk_forgotten (key, name, kind, dev, ino, fingerprint, offset, line, size, birth, deleted)
  VALUES (old.key, old.name, old.kind, old.dev, old.ino, old.fingerprint, old.offset, old.line, old.size, old.birth,
    CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
