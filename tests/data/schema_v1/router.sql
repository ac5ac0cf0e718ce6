BEGIN TRANSACTION;
CREATE TABLE federations (
    scid INTEGER PRIMARY KEY AUTOINCREMENT, federation_id TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
    invite_code TEXT NOT NULL, api_url TEXT NOT NULL, program TEXT NOT NULL, state TEXT NOT NULL,
    created INTEGER NOT NULL, updated INTEGER NOT NULL);
INSERT INTO "federations" VALUES(1,'abababababababababababababababababababababababababababababababab','alpha','fed11invite','ws://x','gateway-actor-ab','running',1796538091,1796538091);
CREATE TABLE outgoing_hashes (
    payment_hash TEXT PRIMARY KEY, federation_id TEXT NOT NULL, contract_id TEXT NOT NULL,
    state TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);
INSERT INTO "outgoing_hashes" VALUES('efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef','abababababababababababababababababababababababababababababababab','1212121212121212121212121212121212121212121212121212121212121212','held',1796538091,1796538091);
CREATE TABLE payment_hashes (
    payment_hash TEXT PRIMARY KEY, federation_id TEXT NOT NULL, created INTEGER NOT NULL);
INSERT INTO "payment_hashes" VALUES('cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd','abababababababababababababababababababababababababababababababab',1796538091);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('federations',1);
COMMIT;
