"""The warehouse's tables, as a new warehouse is created.

Columns added since the first release are also filled in older warehouses by
`lookup.ingest.upgrades`, which runs after this on every open for writing.
"""

from __future__ import annotations

from typing import Final

SCHEMA: Final = """
CREATE SEQUENCE IF NOT EXISTS batch_ids START 1;
CREATE TABLE IF NOT EXISTS batches (
    id BIGINT PRIMARY KEY,
    file VARCHAR NOT NULL,
    operator VARCHAR,
    kind VARCHAR,
    produced_at TIMESTAMP,
    digest VARCHAR,
    status VARCHAR NOT NULL,          -- applied | held | rejected | duplicate
    reason VARCHAR,
    detail VARCHAR,
    rows_total INTEGER NOT NULL DEFAULT 0,
    rows_accepted INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    rows_superseded INTEGER NOT NULL DEFAULT 0,
    added INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    forced BOOLEAN NOT NULL DEFAULT false,
    ingested_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    batch_id BIGINT NOT NULL,
    file VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    reason VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    raw VARCHAR NOT NULL,
    reservation_applied BOOLEAN NOT NULL,
    number VARCHAR  -- when it parsed: a reservation applied later withholds its rejects too
);
CREATE TABLE IF NOT EXISTS records (
    operator VARCHAR NOT NULL,
    number VARCHAR NOT NULL,
    number_type VARCHAR NOT NULL,
    reservation VARCHAR NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    kind VARCHAR,
    first_name VARCHAR,
    last_name VARCHAR,
    business_name VARCHAR,
    org_number VARCHAR,
    street VARCHAR,
    postcode VARCHAR,
    city VARCHAR,
    marketing_reserved BOOLEAN NOT NULL,
    birth_date DATE,
    batch_id BIGINT NOT NULL,
    dated_by_file BOOLEAN DEFAULT false,  -- valid_from is the file's time (a broken row's)
    -- The privacy rank of another operator's later statement that took its personal data
    -- (2 reserved: all of it, never served again; 1 address hidden: its address).
    veiled TINYINT DEFAULT 0,
    PRIMARY KEY (operator, number)
);
CREATE TABLE IF NOT EXISTS withdrawals (
    -- A reserved or address-hidden record its operator removed: the statement stays,
    -- so that another operator's older record of the number does not bring back what
    -- the subscriber withdrew (number, operator, valid_from, reservation: nothing else).
    number VARCHAR NOT NULL,
    operator VARCHAR NOT NULL,
    reservation VARCHAR NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    batch_id BIGINT NOT NULL,
    dated_by_file BOOLEAN DEFAULT false
);
CREATE TABLE IF NOT EXISTS changes (
    batch_id BIGINT NOT NULL,
    operator VARCHAR NOT NULL,
    number VARCHAR NOT NULL,
    change VARCHAR NOT NULL           -- added | updated | removed
);
CREATE TABLE IF NOT EXISTS publishes (
    id BIGINT PRIMARY KEY,
    snapshot VARCHAR NOT NULL,
    last_batch BIGINT NOT NULL,
    listings BIGINT NOT NULL,
    published_at TIMESTAMP NOT NULL
);
"""
