-- The audit trail of user-data deletions (the guide's compliance section):
-- who asked, why and how many rows went. The user's id itself is not kept,
-- which is the point of deleting.
CREATE TABLE IF NOT EXISTS vk_deletions (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  key         TEXT NOT NULL,     -- the metadata field the rows were matched by
  reason      TEXT,
  request_id  TEXT,
  requested   INTEGER,           -- when the request was made, Unix ms
  deleted     INTEGER NOT NULL,  -- when the rows were deleted, Unix ms
  events      INTEGER NOT NULL   -- how many rows were deleted
);
