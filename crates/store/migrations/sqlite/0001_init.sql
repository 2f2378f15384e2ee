CREATE TABLE realms (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE environments (
    realm TEXT NOT NULL REFERENCES realms(name),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (realm, name)
);

CREATE TABLE versions (
    realm TEXT NOT NULL REFERENCES realms(name),
    name TEXT NOT NULL,
    major INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    definition TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (realm, name, major, minor)
);

CREATE TABLE deployments (
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    major INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (realm, environment, pipeline, major),
    FOREIGN KEY (realm, environment) REFERENCES environments(realm, name)
);

CREATE TABLE deployment_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX deployment_history_by_pipeline ON deployment_history (realm, environment, pipeline, id);

CREATE TABLE globals (
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (realm, environment, name),
    FOREIGN KEY (realm, environment) REFERENCES environments(realm, name)
);

CREATE TABLE accounts (
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    sealed BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (realm, environment, name),
    FOREIGN KEY (realm, environment) REFERENCES environments(realm, name)
);

CREATE TABLE consumers (
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (realm, environment, name),
    FOREIGN KEY (realm, environment) REFERENCES environments(realm, name)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    consumer TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (realm, environment, consumer) REFERENCES consumers(realm, environment, name) ON DELETE CASCADE
);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    realm TEXT,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_by_realm ON audit (realm, id);

CREATE TABLE executions (
    key TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    major INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    input TEXT,
    output TEXT,
    error TEXT,
    trace TEXT
);
CREATE INDEX executions_by_realm ON executions (realm, started_at);
CREATE INDEX executions_by_environment ON executions (environment, started_at);

CREATE TABLE execution_logs (
    key TEXT NOT NULL REFERENCES executions(key) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    level TEXT NOT NULL,
    step TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (key, seq)
);

CREATE TABLE sessions (
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (realm, environment, key)
);

CREATE TABLE session_locks (
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (realm, environment, key)
);

CREATE TABLE objects (
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (realm, environment, collection, id)
);
CREATE INDEX objects_in_order ON objects (realm, environment, collection, seq);

CREATE TABLE event_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    major INTEGER NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_deliveries INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0,
    leased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX event_queue_due ON event_queue (dead, next_at);

CREATE TABLE schedule_ticks (
    schedule TEXT PRIMARY KEY,
    tick INTEGER NOT NULL
);
