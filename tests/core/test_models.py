"""trusted_memory builds the same model as validation would, for stored (already valid) values."""

from __future__ import annotations

from datetime import UTC, datetime

from memtrace_core.models import Memory, trusted_memory


def test_trusted_memory_equals_a_validated_memory() -> None:
    values = {
        "id": "mem_01M87JES0EADQ5MDH4XND756J1",
        "time": datetime(2026, 2, 7, 20, 15, tzinfo=UTC),
        "recorded_at": datetime(2026, 2, 7, 20, 15, 1, tzinfo=UTC),
        "org_id": "org_default",
        "agent_id": "crawler",
        "session_id": None,
        "memory_type": "decision",
        "event_type": "decision",
        "content": "Skip pagination",
        "metadata": {"reasoning": "cost"},
        "tags": ["web"],
        "dedup_key": "k",
        "importance": 0.5,
        "parent_id": None,
        "score": None,
        "expires_at": datetime(2026, 3, 7, tzinfo=UTC),
        "supersedes": "mem_01M87JES0EADQ5MDH4XND756J0",
        "superseded_by": None,
        "superseded_at": None,
        "namespace": ["users", "u1"],
        "key": "k1",
        "key_created_at": datetime(2026, 2, 1, tzinfo=UTC),
        "payload": {"items": [1, "two", None, {"x": 3.5}]},
    }
    fast = trusted_memory(dict(values))
    checked = Memory.model_validate(values)
    assert fast == checked
    assert fast.model_dump_json() == checked.model_dump_json()
    assert fast.model_fields_set == checked.model_fields_set
    assert fast.model_copy(update={"score": 2.0}).score == 2.0
