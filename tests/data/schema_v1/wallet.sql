BEGIN TRANSACTION;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE notes (
    nonce TEXT PRIMARY KEY, amount INTEGER NOT NULL, spend_key TEXT NOT NULL, signature TEXT NOT NULL,
    state TEXT NOT NULL, op_id TEXT, created REAL NOT NULL);
CREATE TABLE operations (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE pending_outputs (
    op_id TEXT NOT NULL, txid TEXT NOT NULL, idx INTEGER NOT NULL, amount INTEGER NOT NULL, spend_key TEXT NOT NULL,
    blinding TEXT NOT NULL, PRIMARY KEY (txid, idx));
COMMIT;
