-- The database's identity: a random id made once, when the schema is created
-- (or first brought to this version), and never changed. Every archive the
-- database seals carries it, in its metadata and in this table of the sealed
-- copy, so that an archive is read, pruned and recovered only by the
-- database that sealed it: a database deleted and created again, or another
-- one beside it, has another identity. One row (one = 1). IF NOT EXISTS
-- and OR IGNORE: two processes creating one file may both run this, and the
-- first identity stays.
CREATE TABLE IF NOT EXISTS vk_identity (
  one     INTEGER PRIMARY KEY CHECK (one = 1),
  id      TEXT NOT NULL CHECK (length(id) = 32),
  created INTEGER NOT NULL
);
INSERT OR IGNORE INTO vk_identity (one, id, created)
  VALUES (1, lower(hex(randomblob(16))), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
