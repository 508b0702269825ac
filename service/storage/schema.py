"""Every table neckcheck stores, in one place; Alembic migrations (storage/migrations) create them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

cards = Table(
    "cds_card",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("rules", String(255), nullable=False),  # comma-separated rule ids; "" when none fired
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

feedback = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("card_uuid", String(100), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("override_system", String(255)),
    Column("override_code", String(100)),
    Column("has_comment", Boolean, nullable=False, default=False),
    Column("accepted_suggestions", Integer, nullable=False, default=0),
    Column("outcome_at", String(40), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # the record's own id (uuid), so a record replayed from the spool is inserted once; NULL on rows
    # stored before it existed (revision 0003)
    Column("uuid", String(36)),
    Index("ux_cds_feedback_uuid", "uuid", unique=True),
)

audit = Table(
    "audit_event",
    metadata,
    # the event's own id (uuid), so a record replayed from the spool is inserted once
    Column("id", String(36), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("channel", String(8), nullable=False),  # http | cds | cli
    Column("caller", String(255), nullable=False),  # token iss|sub, or "dev" / "cli"
    Column("rule_set", String(64), nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("input_ids", Text, nullable=False),  # JSON list of "Type/id" of the input resources
    Column("output_ids", Text, nullable=False),  # JSON list of output identifier values
    Column("status", String(16), nullable=False),  # final | preliminary | no-facts | not-assessed
    Column("risk", String(16), nullable=False),
)

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("iss", String(255), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("exp", Float, nullable=False, index=True),  # seconds since the epoch; the row may go after it
)

# Shadow mode (NECKCHECK_SHADOW_RULES): a live call whose result a candidate rule table would change. No
# patient data beyond the ids: the patient reference, the input's hash, and the two results' fields.
shadow_difference = Table(
    "shadow_difference",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("channel", String(8), nullable=False),  # http | cds
    Column("live_rule_set", String(64), nullable=False),
    Column("shadow_rule_set", String(64), nullable=False),
    Column("subject", String(255), nullable=False),  # Patient/<id> (or the identifier's system|value)
    Column("input_hash", String(64), nullable=False),
    Column("before", Text, nullable=False),  # JSON: status, risk, rules, orders under the live table
    Column("after", Text, nullable=False),  # the same under the candidate
    Column("transitions", Text, nullable=False),  # JSON list of "kind: transition"
)
