BEGIN TRANSACTION;
CREATE TABLE bus_replies (
    message_id   TEXT PRIMARY KEY,
    method       TEXT NOT NULL,
    is_error     INTEGER NOT NULL,
    payload      BLOB NOT NULL,      -- Reply.payload, or utf-8 error message
    error_code   TEXT NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL
);
INSERT INTO "bus_replies" VALUES('m1','actor.pay',0,X'7B2278223A317D','',1796538091653);
CREATE INDEX bus_replies_created ON bus_replies(created_ms);
COMMIT;
