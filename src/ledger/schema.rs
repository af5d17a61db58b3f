//! The ledger's schema: an append-only list of migrations keyed on `PRAGMA user_version`.
//!
//! Never edit a published migration; add a new one. A ledger whose `user_version` is
//! higher than the length of this list was written by a newer tgploy and is refused.

use rusqlite::{Connection, TransactionBehavior};

/// Where a ledger's schema stands after [`migrate`].
pub(crate) enum Version {
    /// Up to date (migrated now, or already).
    Current,
    /// Written by a newer tgploy: left untouched.
    TooNew(usize),
}

/// Applies the migrations this ledger lacks, in one exclusive transaction.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Version> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        return Ok(Version::TooNew(version));
    }
    for migration in &MIGRATIONS[version..] {
        tx.execute_batch(migration)?;
    }
    if version < MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    }
    tx.commit()?;
    Ok(Version::Current)
}

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: buckets, deliveries and their parts, the ETag cache, runs.
    r#"
    CREATE TABLE buckets (
        name          TEXT PRIMARY KEY,
        enabled       INTEGER NOT NULL,
        discovered_at INTEGER NOT NULL,
        last_listed_at INTEGER,
        last_error    TEXT
    ) STRICT;

    -- One row per object version to deliver: identity (bucket, key, etag).
    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY,
        bucket          TEXT NOT NULL,
        key             TEXT NOT NULL,
        etag            TEXT NOT NULL,
        size            INTEGER NOT NULL,
        last_modified_ms INTEGER,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'dead', 'skipped')),
        -- The part size fixed by the first attempt, so a resumed delivery splits the same way.
        part_size       INTEGER,
        owner           TEXT,
        lease_until     INTEGER,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        next_attempt_at INTEGER,
        sha256          TEXT,
        manifest_message_id INTEGER,
        manifest_file_id TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        sent_at         INTEGER,
        UNIQUE (bucket, key, etag)
    ) STRICT;
    CREATE INDEX deliveries_state ON deliveries (state, next_attempt_at);
    CREATE INDEX deliveries_sent_at ON deliveries (sent_at);

    -- Each part Telegram accepted, committed as soon as it did. `hash_state` is the
    -- SHA-256 midstate of the whole stream after this part, so a resumed delivery can
    -- go on hashing without reading the earlier parts again.
    CREATE TABLE parts (
        delivery_id     INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        idx             INTEGER NOT NULL,
        offset          INTEGER NOT NULL,
        size            INTEGER NOT NULL,
        sha256          TEXT NOT NULL,
        hash_state      BLOB,
        file_name       TEXT NOT NULL,
        message_id      INTEGER NOT NULL,
        file_id         TEXT,
        file_unique_id  TEXT,
        sent_at         INTEGER NOT NULL,
        PRIMARY KEY (delivery_id, idx)
    ) STRICT;

    -- What HEAD requests taught us, for servers whose listings carry no ETag.
    CREATE TABLE etag_cache (
        bucket           TEXT NOT NULL,
        key              TEXT NOT NULL,
        size             INTEGER NOT NULL,
        last_modified_ms INTEGER NOT NULL,
        etag             TEXT NOT NULL,
        PRIMARY KEY (bucket, key)
    ) STRICT;

    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        sent        INTEGER NOT NULL,
        failed      INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        error       TEXT
    ) STRICT;
    CREATE INDEX runs_kind ON runs (kind, finished_at);
    "#,
    // 2: admin alerts: an outbox that survives Telegram being down, and per-subject
    // rate limiting with a count of what was held back.
    r#"
    CREATE TABLE alerts (
        id          INTEGER PRIMARY KEY,
        subject     TEXT NOT NULL,
        text        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        sent_at     INTEGER,
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT
    ) STRICT;
    CREATE INDEX alerts_unsent ON alerts (sent_at, id);

    CREATE TABLE alert_subjects (
        subject        TEXT PRIMARY KEY,
        last_raised_at INTEGER NOT NULL,
        suppressed     INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    "#,
    // 3: the second factor (TOTP) and its recovery codes; encrypted deliveries, whose
    // restarted attempts set earlier parts aside.
    r#"
    CREATE TABLE totp (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        secret          TEXT NOT NULL,
        enrolled_at     INTEGER NOT NULL,
        -- The last time step a code was accepted for: a code works once.
        last_step       INTEGER NOT NULL DEFAULT 0,
        failures        INTEGER NOT NULL DEFAULT 0,
        locked_until    INTEGER NOT NULL DEFAULT 0
    ) STRICT;

    CREATE TABLE recovery_codes (
        hash     TEXT PRIMARY KEY,
        used_at  INTEGER
    ) STRICT;

    ALTER TABLE deliveries ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;

    -- Parts of an encrypted delivery whose attempt was restarted from the first part:
    -- kept for the record, left out of the manifest.
    CREATE TABLE superseded_parts (
        delivery_id     INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        idx             INTEGER NOT NULL,
        offset          INTEGER NOT NULL,
        size            INTEGER NOT NULL,
        sha256          TEXT NOT NULL,
        file_name       TEXT NOT NULL,
        message_id      INTEGER NOT NULL,
        file_id         TEXT,
        file_unique_id  TEXT,
        sent_at         INTEGER NOT NULL,
        superseded_at   INTEGER NOT NULL
    ) STRICT;
    "#,
    // 4: the web dashboard: its password (an argon2id hash) and its sessions (only
    // SHA-256 hashes of their ids); indexes for its pages.
    r#"
    CREATE TABLE dashboard_password (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        hash    TEXT NOT NULL,
        set_at  INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE dashboard_sessions (
        id_hash      TEXT PRIMARY KEY,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        user_agent   TEXT
    ) STRICT;

    -- Counts per bucket and state (with bytes) from the index alone.
    CREATE INDEX deliveries_bucket_state ON deliveries (bucket, state, size);
    -- Delivered objects newest first, all of them or one bucket's, a page at a time
    -- (the row id ends every index, so `ORDER BY sent_at DESC, id DESC` needs no sort).
    -- The first replaces the index on sent_at alone.
    DROP INDEX deliveries_sent_at;
    CREATE INDEX deliveries_state_sent_at ON deliveries (state, sent_at);
    CREATE INDEX deliveries_bucket_state_sent_at ON deliveries (bucket, state, sent_at);
    "#,
    // 5: the original's SHA-256 of an encrypted delivery (its parts and `sha256` describe
    // the age file), so a restore into S3 can label the decrypted object before it has
    // read it; an index for `restore --all`, which picks one version per key.
    r#"
    ALTER TABLE deliveries ADD COLUMN plaintext_sha256 TEXT;
    CREATE INDEX deliveries_state_bucket_key ON deliveries (state, bucket, key);
    "#,
    // 6: several bots and a destination per bucket. Every part (and superseded part)
    // records the bot that sent it (file ids belong to their bot), the chat and the forum
    // topic; a delivery records its destination (fixed once a part is accepted) and the
    // bot of its manifest. Rows from before are filled in with the bot and chat configured
    // when this migration ran (`Ledger::backfill_destinations`), which this table asks for.
    r#"
    ALTER TABLE parts ADD COLUMN bot_id INTEGER;
    ALTER TABLE parts ADD COLUMN chat_id TEXT;
    ALTER TABLE parts ADD COLUMN topic_id INTEGER;
    ALTER TABLE superseded_parts ADD COLUMN bot_id INTEGER;
    ALTER TABLE superseded_parts ADD COLUMN chat_id TEXT;
    ALTER TABLE superseded_parts ADD COLUMN topic_id INTEGER;
    ALTER TABLE deliveries ADD COLUMN chat_id TEXT;
    ALTER TABLE deliveries ADD COLUMN topic_id INTEGER;
    ALTER TABLE deliveries ADD COLUMN manifest_bot_id INTEGER;
    CREATE TABLE backfill (what TEXT PRIMARY KEY) STRICT;
    INSERT INTO backfill (what) SELECT 'destinations' WHERE EXISTS (SELECT 1 FROM parts);
    "#,
    // 7: freshness and metrics. The newest version of a bucket (under a prefix) by its
    // S3 last-modified time, from an index; the watches overdue now (a recovery note goes
    // out when one is not any more); counters of what runs and servers did (Telegram's
    // answers, webhook requests, ...), summed here by every process so that any of them
    // shows the same figures. `labels` is a JSON array of [name, value] pairs.
    r#"
    CREATE INDEX deliveries_bucket_modified ON deliveries (bucket, last_modified_ms);
    CREATE TABLE overdue_watches (
        bucket     TEXT NOT NULL,
        prefix     TEXT NOT NULL,
        since      INTEGER NOT NULL,
        PRIMARY KEY (bucket, prefix)
    ) STRICT;
    CREATE TABLE counters (
        name   TEXT NOT NULL,
        labels TEXT NOT NULL,
        value  REAL NOT NULL,
        PRIMARY KEY (name, labels)
    ) STRICT;
    "#,
    // 8: the live dashboard. Runs under way (a row from a run's start until its record in
    // `runs` replaces it, in the same transaction; `owner` tells a run that died on this
    // host), and deliveries by creation time, for the backlog hour by hour.
    r#"
    CREATE TABLE runs_under_way (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        owner       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX deliveries_created_at ON deliveries (created_at);
    "#,
    // 9: packs. Small objects due together for one destination travel as one tar
    // document; the pack records the document (an age file when encrypted), each member
    // delivery names its pack, and its one part row holds where its bytes lie in the tar
    // (`offset`, `size`, `sha256`) with the document's message, file id, bot and place.
    r#"
    CREATE TABLE packs (
        id              INTEGER PRIMARY KEY,
        file_name       TEXT NOT NULL,
        size            INTEGER NOT NULL,
        sha256          TEXT NOT NULL,
        tar_size        INTEGER NOT NULL,
        encrypted       INTEGER NOT NULL,
        members         INTEGER NOT NULL,
        message_id      INTEGER NOT NULL,
        file_id         TEXT NOT NULL,
        file_unique_id  TEXT,
        bot_id          INTEGER,
        chat_id         TEXT,
        topic_id        INTEGER,
        sent_at         INTEGER NOT NULL
    ) STRICT;
    ALTER TABLE deliveries ADD COLUMN pack_id INTEGER REFERENCES packs (id);
    CREATE INDEX deliveries_pack ON deliveries (pack_id) WHERE pack_id IS NOT NULL;
    "#,
];
