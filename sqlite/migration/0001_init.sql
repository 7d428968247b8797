-- The guide's table, column for column, so any SQLite client reads our files.
CREATE TABLE IF NOT EXISTS telemetry (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  sessionId   TEXT,
  eventType   TEXT,
  agentType   TEXT,
  mode        TEXT,
  prompt      TEXT,
  streamData  TEXT,
  sandboxId   TEXT,
  repoUrl     TEXT,
  metadata    TEXT,
  timestamp   INTEGER
);

-- Inputs the pipe has read: stdin, followed files, FIFOs. offset is the byte
-- position after the last committed line; dev, ino and fingerprint identify a
-- followed file across restarts.
CREATE TABLE IF NOT EXISTS vk_sources (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  kind        TEXT NOT NULL,
  dev         INTEGER,
  ino         INTEGER,
  fingerprint BLOB,
  offset      INTEGER NOT NULL DEFAULT 0,
  line        INTEGER NOT NULL DEFAULT 0,
  size        INTEGER,
  updated     INTEGER
);

-- Which source the telemetry rows first_id..last_id were read from.
CREATE TABLE IF NOT EXISTS vk_spans (
  source_id   INTEGER NOT NULL,
  first_id    INTEGER NOT NULL,
  last_id     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS vk_spans_source ON vk_spans(source_id, first_id);

-- Lines that were records with a field that could not be coerced, and lines
-- over the length limit. raw holds the line (its start, for an overlong one).
CREATE TABLE IF NOT EXISTS vk_rejects (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  source      TEXT,
  line        INTEGER,
  offset      INTEGER,
  length      INTEGER,
  reason      TEXT NOT NULL,
  raw         TEXT,
  timestamp   INTEGER NOT NULL
);

-- One row per vibekit-pipe run, updated with each commit, so a separate
-- process can report ingest figures (stats --performance).
CREATE TABLE IF NOT EXISTS vk_runs (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  pid            INTEGER,
  started        INTEGER NOT NULL,
  updated        INTEGER NOT NULL,
  lines          INTEGER NOT NULL DEFAULT 0,
  bytes          INTEGER NOT NULL DEFAULT 0,
  rows           INTEGER NOT NULL DEFAULT 0,
  rejects        INTEGER NOT NULL DEFAULT 0,
  skipped        INTEGER NOT NULL DEFAULT 0,
  flushes        INTEGER NOT NULL DEFAULT 0,
  flush_ms_total REAL NOT NULL DEFAULT 0,
  flush_ms_last  REAL NOT NULL DEFAULT 0
);
