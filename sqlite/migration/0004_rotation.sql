-- Seals: each row is one rotation of this database into archives/. A seal is
-- recorded 'pending' before its archive is renamed into place, and becomes
-- 'done' in the same transaction that deletes the sealed rows (the switch),
-- so a crash leaves a state that the next start can finish or roll back.
-- max_id and max_reject_id bound what the archive holds: telemetry rows with
-- id <= max_id and rejects with id <= max_reject_id.
CREATE TABLE IF NOT EXISTS vk_seals (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  archive       TEXT NOT NULL UNIQUE,
  state         TEXT NOT NULL CHECK (state IN ('pending', 'done')),
  max_id        INTEGER NOT NULL,
  max_reject_id INTEGER NOT NULL,
  rows          INTEGER NOT NULL,
  rejects       INTEGER NOT NULL,
  min_ts        INTEGER,
  max_ts        INTEGER,
  bytes         INTEGER NOT NULL,
  started       INTEGER NOT NULL,
  finished      INTEGER,
  pid           INTEGER
);

-- Retention (pruneDays): one row per pass that deleted something, from the
-- live database or archives/.
CREATE TABLE IF NOT EXISTS vk_prunes (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  time      INTEGER NOT NULL,
  before    INTEGER NOT NULL,
  rows      INTEGER NOT NULL,
  rejects   INTEGER NOT NULL,
  archives  INTEGER NOT NULL,
  archive_rows INTEGER NOT NULL,
  names     TEXT
);
