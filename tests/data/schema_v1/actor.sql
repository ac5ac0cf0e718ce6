BEGIN TRANSACTION;
CREATE TABLE incoming (
    htlc_key TEXT PRIMARY KEY, payment_hash TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
INSERT INTO "incoming" VALUES('h1','eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee','settled','{"payment_hash": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "amount_msat": 2000}',1.79653809164556455607e+09,1.79653809164556455607e+09);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "meta" VALUES('gateway_key','1111111111111111111111111111111111111111111111111111111111111111');
CREATE TABLE outgoing (
    contract_id TEXT PRIMARY KEY, state TEXT NOT NULL, data TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
INSERT INTO "outgoing" VALUES('c1','paid','{"amount_msat": 1000}',1.79653809164506578447e+09,1.79653809164506578447e+09);
CREATE INDEX outgoing_updated ON outgoing (updated);
CREATE INDEX incoming_updated ON incoming (updated);
CREATE INDEX outgoing_created ON outgoing (created);
CREATE INDEX incoming_created ON incoming (created);
COMMIT;
